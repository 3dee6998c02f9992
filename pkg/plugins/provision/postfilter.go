package provision

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// PostFilter is called when pod fits no node it may go on. It makes no cloud or API call:
// it answers from the ledger and hands the rest to a provisioning round.
//
//   - A pod reserved on a NodeClaim waits for the claim's node: to register, and then to
//     accept it (PreFilter keeps it to that node, Filter keeps the node's room for it). A pod
//     still not placed there Args.ReservationGrace after the node registered is released and
//     planned again: the plan and the node disagree, which the scheduler's filters prevent
//     but a change in the cluster (a new DaemonSet, a taint) can bring about. Such a pod is
//     stranded (see strandRelease): reported, backed off and planned onto no node of the
//     shape that rejected it, and not planned at all once stranded MaxStrands times.
//   - A pod the last round could not serve for reasons waiting cannot lift is
//     UnschedulableAndUnresolvable, with the reasons.
//   - Any other pod triggers a round and waits.
//
// PostFilter nominates nothing: the scheduler's nominated-pod accounting adds a node's
// nominated pods only when it filters that node, so pods spreading over zones, nominated to
// new nodes in each zone, each see their own zone fuller than the others and none fits.
// Reserved room is kept by Filter instead.
func (p *Provision) PostFilter(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, statuses fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	logger := klog.FromContext(ctx)
	p.placing.end(pod.UID) // its cycle failed: a round may reserve it now
	if p.placing.isReserving(pod.UID) {
		// Turned away by PreFilter: a round is planning it, and tries it again if it does
		// not reserve it (placing.reserved).
		return nil, fwk.NewStatus(fwk.Unschedulable, Name+": being reserved on a new node")
	}
	if claim, nodeName, ok := p.ledger.Reservation(pod.UID); ok {
		since, registered := p.reserved.registeredSince(claim)
		if !registered {
			if p.reserved.isActivated(claim) {
				// Its node is there and turned the pod away, but the claim's registration is
				// not recorded yet: no event may retry the pod once it is.
				p.reserved.retryWhenGraceEnds(logger, claim, p.opts.Clock.Now().Add(p.reservationGrace()))
			}
			logger.V(4).Info("Pod waits for the node of its nodeclaim", "pod", klog.KObj(pod), "nodeClaim", claim)
			return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting for node of nodeclaim %s", Name, claim))
		}
		if waited := p.opts.Clock.Since(since); waited > p.reservationGrace() {
			p.strands.strandRelease(logger, pod, claim, nodeName, statuses)
			p.ledger.Release(pod.UID)
			p.spreadGone(ctx, v1alpha1.PodReferencesTo([]*v1.Pod{pod}))
			podsReleased.Inc()
			logger.Info("Pod did not fit on the node of its nodeclaim; planning it again", "pod", klog.KObj(pod),
				"nodeClaim", claim, "node", nodeName, "waited", waited.Round(time.Second))
			if why, held := p.strands.strandHold(pod, nil); held {
				return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: released from nodeclaim %s: %s", Name, claim, why))
			}
			p.batcher.Trigger()
			return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: released from nodeclaim %s; a node is being planned", Name, claim))
		}
		logger.V(4).Info("Pod waits to fit on the node of its nodeclaim", "pod", klog.KObj(pod), "nodeClaim", claim, "node", nodeName)
		p.reserved.retryWhenGraceEnds(logger, claim, since.Add(p.reservationGrace()))
		return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting to fit on node %s of nodeclaim %s", Name, nodeName, claim))
	}
	if why, held := p.strands.strandHold(pod, nil); held {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: %s", Name, why))
	}
	if u, ok := p.unplannedPods.get(pod); ok && !u.Resolvable {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: %s", Name, u.Message()))
	}
	logger.V(4).Info("Pod triggers a provisioning round", "pod", klog.KObj(pod))
	p.batcher.TriggerPod(pod.UID)
	return nil, fwk.NewStatus(fwk.Unschedulable, Name+": a node is being planned")
}
