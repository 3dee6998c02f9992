package provision

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

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
		AddFunc: func(obj any) {
			p.holds.nodesChanged()
			p.onNode(ctx, obj)
		},
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*v1.Node)
			n, ok2 := obj.(*v1.Node)
			if !ok1 || !ok2 || !equality.Semantic.DeepEqual(o.Status.Allocatable, n.Status.Allocatable) || !maps.Equal(o.Labels, n.Labels) {
				p.holds.nodesChanged()
			}
			p.onNode(ctx, obj)
		},
		DeleteFunc: func(any) { p.holds.nodesChanged() },
	}); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	if err := p.followPods(informers); err != nil {
		return err
	}
	// Registered now so that the scheduler starts it with its own informers.
	informers.Apps().V1().DaemonSets().Informer()
	claimInformers.Start(ctx.Done())
	go func() {
		if p.rebuild(ctx, claims) {
			p.batcher.Run(ctx)
		}
	}()
	return nil
}

// followPods follows the pods of informers: PostFilter is not called when the cluster has no
// node at all (the scheduler fails such a pod before filtering), so pods the scheduler marks
// unschedulable trigger rounds too; and a pod that binds or goes may settle its claim.
func (p *Provision) followPods(informers informers.SharedInformerFactory) error {
	if _, err := informers.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { p.onPod(obj) },
		UpdateFunc: func(old, obj any) {
			p.observeBound(old, obj)
			if o, ok := old.(*v1.Pod); ok && o.Spec.NodeName != "" && !finished(o) {
				if n, ok := obj.(*v1.Pod); ok && finished(n) {
					p.holds.podGone(o) // a finished pod's requests no longer count
				}
			}
			p.onPod(obj)
		},
		DeleteFunc: p.forgetPod,
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	return nil
}

// rebuild waits for the caches of NodeClaims, pods, Provisioners and EC2NodeClasses (which
// rounds read), rebuilds the ledger from the claims and settles those with no pod pending.
// It reports false if ctx ended first.
func (p *Provision) rebuild(ctx context.Context, claims cache.SharedIndexInformer) bool {
	pods := p.handle.SharedInformerFactory().Core().V1().Pods().Informer()
	synced := []cache.InformerSynced{claims.HasSynced, pods.HasSynced}
	for _, informer := range p.typedInformers {
		synced = append(synced, informer.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return false
	}
	var existing []*v1alpha1.NodeClaim
	for _, obj := range claims.GetStore().List() {
		if nc, ok := toNodeClaim(obj); ok {
			existing = append(existing, nc)
		}
	}
	p.ledger.Rebuild(existing)
	klog.FromContext(ctx).V(2).Info("Rebuilt the nodeclaim ledger", "nodeClaims", len(existing))
	for _, nc := range existing {
		p.reserved.settleIfDone(nc.Name)
	}
	return true
}

// onNodeClaim records a new or updated NodeClaim, and activates its pods once its node has
// registered and takes them (activateWhenReady), so that the scheduler tries them on it at
// once. A claim being deleted (one that will never launch, say) releases its pods as soon as
// it is marked: the ledger forgets it then, so its final deletion, once the lifecycle
// removes its finalizer, finds nothing left to release.
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
	p.reserved.settleIfDone(nc.Name)
	if nc.IsTrue(v1alpha1.ConditionRegistered) && !p.reserved.isActivated(nc.Name) {
		p.reserved.activateWhenReady(ctx, nc, p.nodeNamed(nc.Status.NodeName))
	}
	p.gangNodeChanged(ctx, nc)
}

// gangNodeChanged lets the pods of nc's gang go if nc's node was the last of the gang's to
// take pods (gangs.initialized).
func (p *Provision) gangNodeChanged(ctx context.Context, nc *v1alpha1.NodeClaim) {
	if claims := p.gangs.initialized(nc); claims != nil {
		p.activateGang(ctx, claims)
	}
}

// activateGang activates the pods of the gang whose NodeClaims are claims, all initialized.
func (p *Provision) activateGang(ctx context.Context, claims []string) {
	n := p.reserved.activateClaims(ctx, claims)
	klog.FromContext(ctx).V(2).Info("Nodes of a gang all initialized; activating its pods", "nodeClaims", claims, "pods", n)
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
	p.reserved.forget(nc.Name)
	p.gangs.gone(nc.Name)
	released := p.ledger.Delete(nc.Name)
	p.spreadGone(ctx, released)
	pending := p.reserved.activate(ctx, released)
	if pending > 0 {
		klog.FromContext(ctx).V(2).Info("Nodeclaim deleted; planning its pods again", "nodeClaim", klog.KObj(nc), "pods", pending)
		p.batcher.Trigger()
	}
}

// onPod triggers a round for a pod of this profile the scheduler could not place, or has not
// tried yet: the round takes the latter only if it fits no node's free room (pendingPods).
// Each pod counts once per batch window (TriggerPod).
func (p *Provision) onPod(obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	switch {
	case p.wantsNode(pod):
		p.waits.seen(pod.UID, p.opts.Clock.Now())
	case !p.untried(pod):
		return
	}
	if _, _, reserved := p.ledger.Reservation(pod.UID); reserved {
		return
	}
	if u, ok := p.unplannedPods.get(pod); ok && !u.Resolvable {
		// The last round explained why no node can ever host the pod as it is; a change of
		// the pod asks again.
		return
	}
	p.batcher.TriggerPod(pod.UID)
}

// observeBound settles the claim a pod that binds was reserved on, if it has no other pod
// pending, and records how long the pod waited if the scheduler found it unschedulable
// (podUnschedulableToBound).
func (p *Provision) observeBound(oldObj, obj any) {
	old, ok1 := oldObj.(*v1.Pod)
	pod, ok2 := obj.(*v1.Pod)
	if !ok1 || !ok2 || old.Spec.NodeName != "" || pod.Spec.NodeName == "" {
		return
	}
	p.holds.podBound(pod)
	p.placing.end(pod.UID)
	if p.spread != nil {
		p.activateFreed(klog.Background(), p.spread.bound(pod, p.nodeNamed(pod.Spec.NodeName)))
	}
	p.reserved.settleClaimOf(pod)
	since, seen := p.waits.done(pod.UID)
	if !seen {
		return
	}
	_, _, reserved := p.ledger.Reservation(pod.UID)
	podUnschedulableToBound.WithLabelValues(strconv.FormatBool(reserved)).Observe(p.opts.Clock.Since(since).Seconds())
}

// forgetPod drops what the plugin keeps of a deleted pod, and settles the claim it was
// reserved on if it has no other pod pending.
func (p *Provision) forgetPod(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pod, ok := obj.(*v1.Pod); ok {
		p.holds.podGone(pod)
		p.placing.end(pod.UID)
		if p.spread != nil {
			p.activateFreed(klog.Background(), p.spread.gone(pod.UID))
		}
		p.waits.done(pod.UID)
		p.reserved.settleClaimOf(pod)
	}
}

// onNode activates the reserved pods of the claim whose node this is, once it takes them.
func (p *Provision) onNode(ctx context.Context, obj any) {
	node, ok := obj.(*v1.Node)
	if !ok || node.Labels[v1alpha1.LabelNodeClaim] == "" {
		return
	}
	if nc, ok := p.ledger.ClaimForNode(node); ok {
		p.reserved.activateWhenReady(ctx, nc, node)
		p.gangNodeChanged(ctx, nc) // the node controller lifted its not-ready taint, say
	}
}

// finished reports whether pod has succeeded or failed: its requests no longer hold room.
func finished(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
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
