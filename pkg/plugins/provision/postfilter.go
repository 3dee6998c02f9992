package provision

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// ReservationGrace is the default of Args.ReservationGrace: how long a pod reserved on a
// NodeClaim waits to fit on the claim's node once it has registered; then the pod is
// released to be planned again.
const ReservationGrace = 2 * time.Minute

// reservationGrace returns the args' ReservationGrace, or the default without args.
func (p *Provision) reservationGrace() time.Duration {
	if p.args == nil || p.args.ReservationGrace == nil {
		return ReservationGrace
	}
	return p.args.ReservationGrace.Duration
}

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
	if claim, nodeName, ok := p.ledger.Reservation(pod.UID); ok {
		since, registered := p.registeredSince(claim)
		if !registered {
			if p.isActivated(claim) {
				// Its node is there and turned the pod away, but the claim's registration is
				// not recorded yet: no event may retry the pod once it is.
				p.retryWhenGraceEnds(logger, claim, p.opts.Clock.Now().Add(p.reservationGrace()))
			}
			logger.V(4).Info("Pod waits for the node of its nodeclaim", "pod", klog.KObj(pod), "nodeClaim", claim)
			return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting for node of nodeclaim %s", Name, claim))
		}
		if waited := p.opts.Clock.Since(since); waited > p.reservationGrace() {
			p.strandRelease(logger, pod, claim, nodeName, statuses)
			p.ledger.Release(pod.UID)
			podsReleased.Inc()
			logger.Info("Pod did not fit on the node of its nodeclaim; planning it again", "pod", klog.KObj(pod),
				"nodeClaim", claim, "node", nodeName, "waited", waited.Round(time.Second))
			if why, held := p.strandHold(pod, nil); held {
				return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: released from nodeclaim %s: %s", Name, claim, why))
			}
			p.batcher.Trigger()
			return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: released from nodeclaim %s; a node is being planned", Name, claim))
		}
		logger.V(4).Info("Pod waits to fit on the node of its nodeclaim", "pod", klog.KObj(pod), "nodeClaim", claim, "node", nodeName)
		p.retryWhenGraceEnds(logger, claim, since.Add(p.reservationGrace()))
		return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting to fit on node %s of nodeclaim %s", Name, nodeName, claim))
	}
	if why, held := p.strandHold(pod, nil); held {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: %s", Name, why))
	}
	if u, ok := p.unplanned(pod); ok && !u.Resolvable {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: %s", Name, u.Message()))
	}
	logger.V(4).Info("Pod triggers a provisioning round", "pod", klog.KObj(pod))
	p.batcher.Trigger()
	return nil, fwk.NewStatus(fwk.Unschedulable, Name+": a node is being planned")
}

// retryWhenGraceEnds moves the pods of the NodeClaim named claim that are still pending to
// the scheduler's active queue just after end, once per claim: a pod is released (above) only
// when it is tried, and one waiting for a sibling that never comes may see no cluster event
// that retries it (the scheduler's own flush comes after 5 minutes).
func (p *Provision) retryWhenGraceEnds(logger klog.Logger, claim string, end time.Time) {
	p.mu.Lock()
	if p.graceTimers == nil {
		p.graceTimers = map[string]bool{}
	}
	pending := p.graceTimers[claim]
	p.graceTimers[claim] = true
	p.mu.Unlock()
	if pending {
		return
	}
	fire := func() {
		p.mu.Lock()
		delete(p.graceTimers, claim)
		p.mu.Unlock()
		if n := p.activatePods(logger, p.waitingOn(claim)); n > 0 {
			logger.V(2).Info("Reservation grace over; trying the nodeclaim's pending pods again", "nodeClaim", claim, "pods", n)
		}
	}
	p.afterFunc(end.Sub(p.opts.Clock.Now())+time.Second, fire)
}

// isActivated reports whether the pods of the NodeClaim named claim were activated: its node
// has shown up.
func (p *Provision) isActivated(claim string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.activated[claim]
}

// registeredSince returns when the node of the NodeClaim named claim registered, if it has.
func (p *Provision) registeredSince(claim string) (time.Time, bool) {
	nc, ok := p.ledger.Claim(claim)
	if !ok || nc.Status.NodeName == "" {
		return time.Time{}, false
	}
	return nc.TrueSince(v1alpha1.ConditionRegistered)
}

// unplanned returns what the last round said about pod, if it could not plan it and the pod
// has not changed since.
func (p *Provision) unplanned(pod *v1.Pod) (*plan.Unplanned, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.lastUnplanned[pod.UID]
	if !ok || plan.PodSignature(u.Pod) != plan.PodSignature(pod) {
		return nil, false
	}
	return u, true
}
