package provision

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

var _ fwk.EnqueueExtensions = &Provision{}

// EventsToRegister tells the scheduler which cluster events can let a pod that Provision
// turned away in: a node that appears or gets matched to its NodeClaim (the
// nodewright.dev/nodeclaim label), and a pod reserved on a NodeClaim binding or going away,
// which frees the claim's node for others (see Filter).
//
// A pod waiting for the node of its NodeClaim is not retried on any of them: the plugin
// activates it when that node registers, or when the claim goes; nor is a pod PreEnqueue
// holds (see holds), which only the plugin's activations release. Each retry writes the pod's
// status ("0/N nodes are available" changes with N), through the same client rate limit as
// binding and launching, so retries that cannot succeed are not made.
//
// With PodGroups scheduled, the node events that can complete a gang (gangs.cacheSaw) are
// registered too: the scheduler calls their hint after updating its cache, so the hint learns
// when its cache shows a gang's nodes ready; it lets the gang go itself, never by its answer.
func (p *Provision) EventsToRegister(_ context.Context) ([]fwk.ClusterEventWithHint, error) {
	events := []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel}, QueueingHintFn: p.hintNodeChange},
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Add}, QueueingHintFn: p.hintReservedPodGone},
		{Event: fwk.ClusterEvent{Resource: fwk.Pod, ActionType: fwk.Delete}, QueueingHintFn: p.hintReservedPodGone},
	}
	if groupsScheduled() {
		events = append(events, fwk.ClusterEventWithHint{
			Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel | fwk.UpdateNodeTaint}, QueueingHintFn: p.hintGangNode})
	}
	return events, nil
}

// hintGangNode records a node of a NodeClaim as the scheduler's cache now holds it
// (gangs.cacheSaw) and, if that lets a gang go, activates the gang's pods, apart: the
// scheduler calls hints under its queue's lock, which activating takes. It never queues pod
// itself: the gang's pods go together, whichever pod the scheduler asked about.
func (p *Provision) hintGangNode(logger klog.Logger, _ *v1.Pod, _, newObj any) (fwk.QueueingHint, error) {
	node, ok := newObj.(*v1.Node)
	if !ok || node.Labels[v1alpha1.LabelNodeClaim] == "" {
		return fwk.QueueSkip, nil
	}
	if claims := p.gangs.cacheSaw(node); claims != nil {
		go p.activateGang(klog.NewContext(context.Background(), logger), claims)
	}
	return fwk.QueueSkip, nil
}

// hintNodeChange queues pod for a new node, or a node whose nodeclaim or provisioner label
// changed, unless pod waits for its own claim's node.
func (p *Provision) hintNodeChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (fwk.QueueingHint, error) {
	if p.reserved.waitsForActivation(pod) || p.holds.holding(pod.UID) {
		return fwk.QueueSkip, nil
	}
	newNode, ok := newObj.(*v1.Node)
	if !ok {
		return fwk.Queue, nil
	}
	oldNode, ok := oldObj.(*v1.Node)
	if !ok || oldNode == nil {
		return fwk.Queue, nil
	}
	for _, key := range []string{v1alpha1.LabelNodeClaim, v1alpha1.LabelProvisionerName} {
		if oldNode.Labels[key] != newNode.Labels[key] {
			logger.V(5).Info("Node's nodewright labels changed; retrying pod", "pod", klog.KObj(pod), "node", klog.KObj(newNode))
			return fwk.Queue, nil
		}
	}
	return fwk.QueueSkip, nil
}

// hintReservedPodGone queues pod when a pod reserved on a NodeClaim binds, or when a pending
// pod is deleted: the claim's node may take other pods once none of its own are pending. It
// queues pod as well when a pod binds whose placement and pod's constrain each other: pod
// may have waited for it (see PreFilter and reservedConflict), and whether the binding pod's
// reservation is still in the ledger when the event arrives is a race with the ledger's own
// informer.
func (p *Provision) hintReservedPodGone(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (fwk.QueueingHint, error) {
	if p.reserved.waitsForActivation(pod) || p.holds.holding(pod.UID) {
		return fwk.QueueSkip, nil
	}
	if bound, ok := newObj.(*v1.Pod); ok && bound != nil {
		if _, _, reserved := p.ledger.Reservation(bound.UID); reserved {
			return fwk.Queue, nil
		}
		if p.conflicts.mayHaveWaitedFor(pod, bound) {
			logger.V(5).Info("A pod whose placement and the pod's constrain each other bound; retrying pod", "pod", klog.KObj(pod), "boundPod", klog.KObj(bound))
			return fwk.Queue, nil
		}
		return fwk.QueueSkip, nil
	}
	// A deletion: whether the pod was reserved may already be forgotten, so any pending
	// pod counts.
	if deleted, ok := oldObj.(*v1.Pod); ok && deleted != nil && deleted.Spec.NodeName != "" {
		return fwk.QueueSkip, nil
	}
	return fwk.Queue, nil
}
