package provision

import (
	"context"
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/lifecycle"
)

// startLifecycle runs the lifecycle's controllers (launch, registration, termination, GC),
// which turn the NodeClaims the rounds write into nodes, until ctx ends. They act only while
// this replica holds the lifecycle's Lease.
//
// The lifecycle shares the process's caches: it registers on the scheduler's informer
// factory, which the scheduler starts once every plugin is built, and on claimInformers,
// which start starts. Both run whether this replica leads or not (unless the scheduler's
// delayCacheUntilActive holds its informers back until it leads; the lifecycle then waits
// for them before it competes for its own Lease).
func (p *Provision) startLifecycle(ctx context.Context, queue cloud.InterruptionQueue, claimInformers dynamicinformer.DynamicSharedInformerFactory) error {
	mgr, err := lifecycle.New(lifecycle.Options{
		Client:           p.handle.ClientSet(),
		Dynamic:          p.opts.Dynamic,
		Informers:        p.handle.SharedInformerFactory(),
		DynamicInformers: claimInformers,
		Cloud:            p.opts.Cloud,
		Queue:            queue,
		Clock:            p.opts.Clock,
		// Launches that keep failing end with the claim deleted: onNodeClaimDeleted then
		// releases its pods to the next round.
		LaunchTimeout: p.args.LaunchTimeout.Duration,
	})
	if err != nil {
		return fmt.Errorf("building the lifecycle manager: %w", err)
	}
	go func() {
		if err := mgr.Run(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Lifecycle manager stopped")
		}
	}()
	return nil
}

// start follows NodeClaims (the ledger) and Nodes (nomination), rebuilds the ledger from
// the NodeClaims that exist, and only then runs the rounds, so that a restarted scheduler
// does not plan again for pods already reserved. It starts claimInformers, once the
// lifecycle has registered on it too.
func (p *Provision) start(ctx context.Context, claimInformers dynamicinformer.DynamicSharedInformerFactory) error {
	claims := claimInformers.ForResource(v1alpha1.NodeClaimGVR).Informer()
	if _, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.onNodeClaim(ctx, obj) },
		UpdateFunc: func(_, obj any) { p.onNodeClaim(ctx, obj) },
		DeleteFunc: func(obj any) { p.onNodeClaimDeleted(ctx, obj) },
	}); err != nil {
		return fmt.Errorf("watching nodeclaims: %w", err)
	}
	informers := p.handle.SharedInformerFactory()
	if _, err := informers.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.onNode(ctx, obj) },
		UpdateFunc: func(_, obj any) { p.onNode(ctx, obj) },
	}); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	// PostFilter is not called when the cluster has no node at all (the scheduler fails such
	// a pod before filtering), so pods the scheduler marks unschedulable trigger rounds too.
	if _, err := informers.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { p.onPod(obj) },
		UpdateFunc: func(old, obj any) {
			p.observeBound(old, obj)
			p.onPod(obj)
		},
		DeleteFunc: p.forgetPod,
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	// Registered now so that the scheduler starts it with its own informers.
	informers.Apps().V1().DaemonSets().Informer()
	claimInformers.Start(ctx.Done())
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), claims.HasSynced) {
			return
		}
		var existing []*v1alpha1.NodeClaim
		for _, obj := range claims.GetStore().List() {
			if nc, ok := toNodeClaim(obj); ok {
				existing = append(existing, nc)
			}
		}
		p.ledger.Rebuild(existing)
		klog.FromContext(ctx).V(2).Info("Rebuilt the nodeclaim ledger", "nodeClaims", len(existing))
		p.batcher.Run(ctx)
	}()
	return nil
}

// onNodeClaim records a new or updated NodeClaim, and activates its pods once its node has
// registered, so that PostFilter nominates them onto it at once. A claim being deleted
// (one that will never launch, say) releases its pods as soon as it is marked: the ledger
// forgets it then, so its final deletion, once the lifecycle removes its finalizer, finds
// nothing left to release.
func (p *Provision) onNodeClaim(ctx context.Context, obj any) {
	nc, ok := toNodeClaim(obj)
	if !ok {
		return
	}
	if nc.DeletionTimestamp != nil {
		p.release(ctx, nc)
		return
	}
	p.ledger.Set(nc)
	if nc.IsTrue(v1alpha1.ConditionRegistered) {
		p.activateOnce(ctx, nc)
	}
}

// onNodeClaimDeleted releases the pods of a deleted NodeClaim to be planned again.
func (p *Provision) onNodeClaimDeleted(ctx context.Context, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if nc, ok := toNodeClaim(obj); ok {
		p.release(ctx, nc)
	}
}

// release forgets nc, deleted or being deleted, and has its pods still pending planned again:
// they go back to the scheduler's active queue, and a round is triggered for them (without
// nodes in the cluster, the scheduler never calls PostFilter).
func (p *Provision) release(ctx context.Context, nc *v1alpha1.NodeClaim) {
	p.mu.Lock()
	delete(p.activated, nc.Name)
	p.mu.Unlock()
	released := p.ledger.Delete(nc.Name)
	pending := p.activate(ctx, released)
	if pending > 0 {
		klog.FromContext(ctx).V(2).Info("Nodeclaim deleted; planning its pods again", "nodeClaim", klog.KObj(nc), "pods", pending)
		p.batcher.Trigger()
	}
}

// onPod triggers a round for a pod of this profile the scheduler could not place.
func (p *Provision) onPod(obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok || !p.wantsNode(pod) {
		return
	}
	p.mu.Lock()
	if _, ok := p.unschedulableSince[pod.UID]; !ok {
		p.unschedulableSince[pod.UID] = p.opts.Clock.Now()
	}
	p.mu.Unlock()
	if _, _, reserved := p.ledger.Reservation(pod.UID); reserved {
		return
	}
	if u, ok := p.unplanned(pod); ok && !u.Resolvable {
		// The last round explained why no node can ever host the pod as it is; a change of
		// the pod asks again.
		return
	}
	p.batcher.Trigger()
}

// observeBound records, when a pod the scheduler found unschedulable binds, how long it
// waited (podUnschedulableToBound).
func (p *Provision) observeBound(oldObj, obj any) {
	old, ok1 := oldObj.(*v1.Pod)
	pod, ok2 := obj.(*v1.Pod)
	if !ok1 || !ok2 || old.Spec.NodeName != "" || pod.Spec.NodeName == "" {
		return
	}
	p.mu.Lock()
	since, seen := p.unschedulableSince[pod.UID]
	delete(p.unschedulableSince, pod.UID)
	p.mu.Unlock()
	if !seen {
		return
	}
	_, _, reserved := p.ledger.Reservation(pod.UID)
	podUnschedulableToBound.WithLabelValues(strconv.FormatBool(reserved)).Observe(p.opts.Clock.Since(since).Seconds())
}

// forgetPod drops what the plugin keeps of a deleted pod.
func (p *Provision) forgetPod(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pod, ok := obj.(*v1.Pod); ok {
		p.mu.Lock()
		delete(p.unschedulableSince, pod.UID)
		p.mu.Unlock()
	}
}

// onNode activates the reserved pods of the claim whose node this is.
func (p *Provision) onNode(ctx context.Context, obj any) {
	node, ok := obj.(*v1.Node)
	if !ok || node.Labels[v1alpha1.LabelNodeClaim] == "" {
		return
	}
	if nc, ok := p.ledger.ClaimForNode(node); ok {
		p.activateOnce(ctx, nc)
	}
}

// activateOnce activates nc's pods the first time its node shows up.
func (p *Provision) activateOnce(ctx context.Context, nc *v1alpha1.NodeClaim) {
	p.mu.Lock()
	done := p.activated[nc.Name]
	p.activated[nc.Name] = true
	p.mu.Unlock()
	if done {
		return
	}
	n := p.activate(ctx, p.ledger.Pods(nc.Name))
	klog.FromContext(ctx).V(2).Info("Node of nodeclaim registered; activating its pods", "nodeClaim", klog.KObj(nc),
		"node", nc.Status.NodeName, "pods", n)
}

// activate moves the pending pods among refs to the scheduler's active queue, and returns
// how many there were.
func (p *Provision) activate(ctx context.Context, refs []v1alpha1.PodReference) int {
	return p.activatePods(klog.FromContext(ctx), p.pendingOf(refs))
}

// activatePods moves pods to the scheduler's active queue, and returns how many there were.
func (p *Provision) activatePods(logger klog.Logger, pending []*v1.Pod) int {
	pods := map[string]*v1.Pod{}
	for _, pod := range pending {
		pods[pod.Namespace+"/"+pod.Name] = pod
	}
	if len(pods) > 0 {
		p.handle.Activate(logger, pods)
	}
	return len(pods)
}

// pendingOf returns the pods of refs that exist, unbound.
func (p *Provision) pendingOf(refs []v1alpha1.PodReference) []*v1.Pod {
	var out []*v1.Pod
	for _, ref := range refs {
		if pod, ok := p.unbound(ref.Namespace, ref.Name, ref.UID); ok {
			out = append(out, pod)
		}
	}
	return out
}

// unbound returns the pod namespace/name, as the informer sees it, if it is the pod with uid
// and not bound.
func (p *Provision) unbound(namespace, name string, uid types.UID) (*v1.Pod, bool) {
	pod, err := p.handle.SharedInformerFactory().Core().V1().Pods().Lister().Pods(namespace).Get(name)
	if err != nil || pod.UID != uid || pod.Spec.NodeName != "" {
		return nil, false
	}
	return pod, true
}

// waitingOn returns the pods still pending and reserved on the NodeClaim named claim.
func (p *Provision) waitingOn(claim string) []*v1.Pod {
	return p.reservedOn(claim, p.pendingOf(p.ledger.Pods(claim)))
}

// reservedOn returns those of pods still reserved on the NodeClaim named claim (not
// released from it).
func (p *Provision) reservedOn(claim string, pods []*v1.Pod) []*v1.Pod {
	var out []*v1.Pod
	for _, pod := range pods {
		if c, _, ok := p.ledger.Reservation(pod.UID); ok && c == claim {
			out = append(out, pod)
		}
	}
	return out
}

// toNodeClaim converts an informer's object to a NodeClaim.
func toNodeClaim(obj any) (*v1alpha1.NodeClaim, bool) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, false
	}
	nc, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](u)
	return nc, err == nil
}
