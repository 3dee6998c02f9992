package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// informerResync is the informers' resync period: a safety net for a missed event, since
// every TTL and timeout is also requeued explicitly.
const informerResync = 10 * time.Minute

// providerIDIndex indexes NodeClaims by status.providerID, to map a Node without labels yet
// to its NodeClaim.
const providerIDIndex = "providerID"

// Run starts the informers, waits to hold the Lease (unless leader election is disabled),
// and runs the controllers until ctx is done or the Lease is lost. It returns an error when
// the Lease is lost: the caller should exit, as kube-scheduler does, rather than act
// without it.
func (m *Manager) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("lifecycle")
	ctx = klog.NewContext(ctx, logger)
	if m.broadcaster != nil {
		if err := m.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
			return fmt.Errorf("starting event recording: %w", err)
		}
		defer m.broadcaster.Shutdown()
	}

	kubeInformers := informers.NewSharedInformerFactory(m.opts.Client, informerResync)
	dynInformers := dynamicinformer.NewDynamicSharedInformerFactory(m.opts.Dynamic, informerResync)
	claimInformer := dynInformers.ForResource(v1alpha1.NodeClaimGVR).Informer()
	if err := claimInformer.AddIndexers(cache.Indexers{providerIDIndex: indexByProviderID}); err != nil {
		return fmt.Errorf("indexing nodeclaims: %w", err)
	}
	provisionerInformer := dynInformers.ForResource(v1alpha1.ProvisionerGVR).Informer()
	nodeInformer := kubeInformers.Core().V1().Nodes()
	podInformer := kubeInformers.Core().V1().Pods().Informer()
	if err := podInformer.AddIndexers(cache.Indexers{podNodeIndex: indexPodByNode}); err != nil {
		return fmt.Errorf("indexing pods: %w", err)
	}
	h := handlers{m: m, claims: claimInformer.GetIndexer()}
	for _, reg := range []struct {
		informer cache.SharedIndexInformer
		handler  func(obj any)
	}{
		{claimInformer, h.onNodeClaim},
		{provisionerInformer, h.onProvisioner},
		{nodeInformer.Informer(), h.onNode},
		{podInformer, h.onPod},
	} {
		if _, err := reg.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    reg.handler,
			UpdateFunc: func(_, obj any) { reg.handler(obj) },
			DeleteFunc: reg.handler,
		}); err != nil {
			return fmt.Errorf("adding event handler: %w", err)
		}
	}
	kubeInformers.Start(ctx.Done())
	dynInformers.Start(ctx.Done())
	defer kubeInformers.Shutdown()
	defer dynInformers.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), claimInformer.HasSynced, provisionerInformer.HasSynced,
		nodeInformer.Informer().HasSynced, podInformer.HasSynced) {
		return fmt.Errorf("waiting for informers: %w", ctx.Err())
	}
	// From now on the controllers read from the caches: a round of 1,000 pods made them send
	// 11,000 GETs in a minute, through the rate limit the scheduler binds with.
	m.deps.nodes, m.deps.pods = nodeInformer.Lister(), podInformer.GetIndexer()
	m.deps.objects.claims, m.deps.objects.provisioners = claimInformer.GetIndexer(), provisionerInformer.GetIndexer()

	if m.opts.LeaderElection.Disabled {
		m.runControllers(ctx)
		return nil
	}
	return m.runLeading(ctx)
}

// runLeading runs the controllers while this replica holds the Lease.
func (m *Manager) runLeading(ctx context.Context) error {
	le := m.opts.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.LeaseNamespace, le.LeaseName,
		m.opts.Client.CoreV1(), m.opts.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return fmt.Errorf("creating lease lock: %w", err)
	}
	// The elector calls OnStartedLeading on a goroutine of its own with a context it cancels
	// when the lease is lost; the controllers run here instead, so Run returns only once they
	// have stopped.
	leading := make(chan context.Context, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            le.LeaseName,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { leading <- ctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("creating leader elector: %w", err)
	}
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		elector.Run(ctx)
	}()
	select {
	case leaderCtx := <-leading:
		klog.FromContext(ctx).Info("Acquired lifecycle lease", "lease", klog.KRef(le.LeaseNamespace, le.LeaseName), "identity", le.Identity)
		m.runControllers(leaderCtx)
		<-electorDone
	case <-electorDone:
	}
	if ctx.Err() != nil {
		return nil
	}
	return errLostLease
}

// runControllers runs every controller and periodic loop until ctx is done.
func (m *Manager) runControllers(ctx context.Context) {
	var wg sync.WaitGroup
	start := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	workers := m.opts.Workers
	for _, c := range []*controller{m.launch, m.register, m.empty, m.nodeTermination, m.claimTermination, m.orphan} {
		start(func(ctx context.Context) { c.run(ctx, workers) })
	}
	// One expiry worker: it is what keeps disruption to one node per Provisioner at a time.
	start(func(ctx context.Context) { m.expire.run(ctx, 1) })
	start(func(ctx context.Context) {
		wait.UntilWithContext(ctx, func(ctx context.Context) {
			if err := m.collector.collect(ctx); err != nil {
				utilruntime.HandleErrorWithContext(ctx, err, "Garbage collection failed")
			}
		}, m.opts.GCInterval)
	})
	if m.interrupter != nil {
		// Receive long-polls, so the period only spaces out retries after an error.
		start(func(ctx context.Context) {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				if err := m.interrupter.poll(ctx); err != nil {
					utilruntime.HandleErrorWithContext(ctx, err, "Handling interruption messages failed")
				}
			}, time.Second)
		})
	}
	wg.Wait()
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
