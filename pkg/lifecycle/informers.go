package lifecycle

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// resyncPeriod is how often, while leading, every cached object is handed to its event
// handler again, as an informer's resync would: a safety net for a change that no event of
// the object a controller is keyed by reports (a Provisioner given ttlSecondsAfterEmpty once
// its nodes are empty: emptiness is keyed by Node), every TTL and timeout being requeued
// explicitly. The Manager resyncs itself because an informer shared with kube-scheduler does
// not: the scheduler's factory has no resync period, and a handler cannot resync more often
// than its informer.
const resyncPeriod = 10 * time.Minute

// providerIDIndex indexes NodeClaims by status.providerID, to map a Node without labels yet
// to its NodeClaim.
const providerIDIndex = "nodewright.dev/providerID"

// caches are the informers that drive the controllers and that they read from.
type caches struct {
	claims, provisioners, nodeClasses, nodes, pods cache.SharedIndexInformer
	// handlers are the event handlers registered on them.
	handlers []registration
	// owned are the factories the Manager built for want of given ones, which start starts
	// and stops. A given factory is its owner's to start and stop.
	owned []factory
}

// registration is an event handler and the informer it is registered on.
type registration struct {
	informer cache.SharedIndexInformer
	handler  func(obj any)
}

// factory is what the caches do with an informer factory they own.
type factory interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// watch registers the controllers' informers, indexers and event handlers on the factories
// of Options.Informers and Options.DynamicInformers, or on factories of the Manager's own
// where they are nil. It runs in New: an informer takes indexers only until it starts, and
// kube-scheduler starts its factory once every plugin is built.
func (m *Manager) watch() error {
	var c caches
	kube := m.opts.Informers
	if kube == nil {
		kube = informers.NewSharedInformerFactory(m.opts.Client, 0)
		c.owned = append(c.owned, kube)
	}
	dyn := m.opts.DynamicInformers
	if dyn == nil {
		dyn = dynamicinformer.NewDynamicSharedInformerFactory(m.opts.Dynamic, 0)
		c.owned = append(c.owned, dyn)
	}
	c.claims = dyn.ForResource(v1alpha1.NodeClaimGVR).Informer()
	c.provisioners = dyn.ForResource(v1alpha1.ProvisionerGVR).Informer()
	c.nodeClasses = dyn.ForResource(v1alpha1.EC2NodeClassGVR).Informer()
	c.nodes = kube.Core().V1().Nodes().Informer()
	c.pods = kube.Core().V1().Pods().Informer()
	if err := addIndex(c.claims, providerIDIndex, indexByProviderID); err != nil {
		return fmt.Errorf("indexing nodeclaims: %w", err)
	}
	if err := addIndex(c.pods, podNodeIndex, indexPodByNode); err != nil {
		return fmt.Errorf("indexing pods: %w", err)
	}
	h := handlers{m: m, claims: c.claims.GetIndexer()}
	c.handlers = []registration{
		{c.claims, h.onNodeClaim},
		{c.provisioners, h.onProvisioner},
		{c.nodes, h.onNode},
		{c.pods, h.onPod},
	}
	for _, reg := range c.handlers {
		if _, err := reg.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    reg.handler,
			UpdateFunc: func(_, obj any) { reg.handler(obj) },
			DeleteFunc: reg.handler,
		}); err != nil {
			return fmt.Errorf("adding event handler: %w", err)
		}
	}
	m.caches = c
	return nil
}

// addIndex adds the index name to informer unless it has it: another Manager of the process
// (one per scheduler profile) may have added it to an informer they share. The index names
// are nodewright's, so that another component's index is not taken for ours.
func addIndex(informer cache.SharedIndexInformer, name string, index cache.IndexFunc) error {
	if _, ok := informer.GetIndexer().GetIndexers()[name]; ok {
		return nil
	}
	return informer.AddIndexers(cache.Indexers{name: index})
}

// start starts the factories the caches own, until ctx is done or stop is called; stop
// waits for their informers to end. Run may end before ctx does (the Lease lost), and
// a factory's Shutdown waits for informers that only their stop channel ends.
func (c caches) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	for _, f := range c.owned {
		f.Start(ctx.Done())
	}
	return func() {
		cancel()
		for _, f := range c.owned {
			f.Shutdown()
		}
	}
}

// waitForSync waits until every cache has synced, and reports whether they have (false once
// ctx is done).
func (c caches) waitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), c.claims.HasSynced, c.provisioners.HasSynced, c.nodeClasses.HasSynced, c.nodes.HasSynced, c.pods.HasSynced)
}

// resyncEvery hands every cached object to its event handler again every period, the first
// time one period from now, until ctx is done.
func (c caches) resyncEvery(ctx context.Context, clk clock.Clock, period time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-clk.After(period):
		}
		for _, reg := range c.handlers {
			for _, obj := range reg.informer.GetStore().List() {
				reg.handler(obj)
			}
		}
	}
}

// handlers map informer events to the keys of the controllers they concern.
type handlers struct {
	m      *Manager
	claims cache.Indexer
}

func (h handlers) onNodeClaim(obj any) {
	u, ok := unwrap[*unstructured.Unstructured](obj)
	if !ok {
		return
	}
	h.m.launch.enqueue(u.GetName())
	h.m.register.enqueue(u.GetName())
	h.m.claimTermination.enqueue(u.GetName())
	provisioner, _, _ := unstructured.NestedString(u.Object, "spec", "provisioner")
	h.m.expire.enqueue(provisioner)
	h.m.orphan.enqueue(provisioner)
	nodeName, _, _ := unstructured.NestedString(u.Object, "status", "nodeName")
	h.m.empty.enqueue(nodeName)
}

func (h handlers) onProvisioner(obj any) {
	if u, ok := unwrap[*unstructured.Unstructured](obj); ok {
		h.m.expire.enqueue(u.GetName())
		h.m.orphan.enqueue(u.GetName())
	}
}

func (h handlers) onNode(obj any) {
	node, ok := unwrap[*corev1.Node](obj)
	if !ok {
		return
	}
	h.m.empty.enqueue(node.Name)
	h.m.nodeTermination.enqueue(node.Name)
	claim := node.Labels[v1alpha1.LabelNodeClaim]
	if claim == "" && node.Spec.ProviderID != "" {
		if objs, err := h.claims.ByIndex(providerIDIndex, node.Spec.ProviderID); err == nil && len(objs) > 0 {
			if u, ok := objs[0].(*unstructured.Unstructured); ok {
				claim = u.GetName()
			}
		}
	}
	h.m.register.enqueue(claim)
	h.m.claimTermination.enqueue(claim)
}

func (h handlers) onPod(obj any) {
	if pod, ok := unwrap[*corev1.Pod](obj); ok && pod.Spec.NodeName != "" {
		h.m.empty.enqueue(pod.Spec.NodeName)
		h.m.nodeTermination.enqueue(pod.Spec.NodeName)
	}
}

// unwrap returns obj, or the last state of a deleted object, as a T.
func unwrap[T any](obj any) (T, bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	t, ok := obj.(T)
	return t, ok
}

func indexByProviderID(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	id, _, _ := unstructured.NestedString(u.Object, "status", "providerID")
	if id == "" {
		return nil, nil
	}
	return []string{id}, nil
}
