package provision

import (
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/features"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// reservations follow the pods reserved on NodeClaims until they bind: they activate a
// claim's pods when its node registers, retry them when their grace ends, and say which
// claims still hold room for pods pending (awaitedClaims, pendingReserved). What is reserved
// where is the ledger's; reservations keep only what they did.
type reservations struct {
	*deps
	mu sync.Mutex
	// activated are the NodeClaims whose pods were activated when their node registered.
	activated map[string]bool
	// graceTimers are the NodeClaims with a retryWhenGraceEnds pending; readyTimers those
	// whose node registered and whose pods wait for it to take them (activateWhenReady).
	graceTimers, readyTimers map[string]bool
	// onSettle, if set, runs when a claim settles: its node takes other pods now.
	onSettle func()
}

func newReservations(d *deps) *reservations {
	return &reservations{deps: d, activated: map[string]bool{}, graceTimers: map[string]bool{}, readyTimers: map[string]bool{}}
}

// NodeReadyWait is how long the pods reserved on a NodeClaim whose node has registered wait
// for the node to lose the taints that come off a new node by themselves
// (node.kubernetes.io/not-ready and the other node.kubernetes.io/ and
// node.cloudprovider.kubernetes.io/ taints, the claim's startup taints) before they are
// activated anyway, for the scheduler to say what keeps them off it.
const NodeReadyWait = 30 * time.Second

// activateWhenReady activates nc's pods once node, its node (nil: not in the scheduler's
// cache yet), may take them: at once unless a NoSchedule or NoExecute taint that comes off
// by itself (see NodeReadyWait) turns a pending one away, else at the node update that
// lifts it (onNode), or NodeReadyWait after the first call at the latest. A taint that does
// not come off by itself (one the node's user data set, say) does not delay them: the
// scheduler tells at once that the node rejects them, and the pods strand (strandRelease).
// A pod activated while its node still has a not-ready taint fails its scheduling cycle: on
// a scale-up, 41 pods did, each writing its status from the scheduler's only scheduling
// goroutine and waiting out a backoff while the nodes of the others became ready.
func (r *reservations) activateWhenReady(ctx context.Context, nc *v1alpha1.NodeClaim, node *v1.Node) {
	if r.isActivated(nc.Name) {
		return
	}
	if node != nil && !r.settling(klog.FromContext(ctx), node, nc, r.waitingOn(nc.Name)) {
		r.activateOnce(ctx, nc)
		return
	}
	if r.mark(r.readyTimers, nc.Name) {
		return
	}
	logger := klog.FromContext(ctx)
	logger.V(4).Info("Node of nodeclaim registered; its pods wait for it to take them", "nodeClaim", klog.KObj(nc), "node", nc.Status.NodeName)
	name := nc.Name
	r.afterFunc(NodeReadyWait, func() {
		r.mu.Lock()
		delete(r.readyTimers, name)
		r.mu.Unlock()
		if current, ok := r.ledger.Claim(name); ok && !r.isActivated(name) {
			logger.V(2).Info("Node of nodeclaim has not taken its pods yet; activating them anyway", "nodeClaim", klog.KObj(current),
				"node", current.Status.NodeName, "waited", NodeReadyWait)
			r.activateOnce(ctx, current)
		}
	})
}

// settling reports whether node, nc's, keeps one of pods off with a NoSchedule or NoExecute
// taint that comes off a new node by itself (settles), and with no other: a taint that
// stays turns the pod away anyway.
func (r *reservations) settling(logger klog.Logger, node *v1.Node, nc *v1alpha1.NodeClaim, pods []*v1.Pod) bool {
	settling := false
	for _, pod := range pods {
		for i := range node.Spec.Taints {
			t := &node.Spec.Taints[i]
			if t.Effect != v1.TaintEffectNoSchedule && t.Effect != v1.TaintEffectNoExecute ||
				v1helper.TolerationsTolerateTaint(logger, pod.Spec.Tolerations, t, taintComparisonOperators()) {
				continue
			}
			if !settles(t, nc) {
				return false
			}
			settling = true
		}
	}
	return settling
}

// settles reports whether taint comes off nc's new node by itself: one the node controller
// or the cloud controller manager sets until the node is ready or initialized, or one of
// nc's startup taints.
func settles(taint *v1.Taint, nc *v1alpha1.NodeClaim) bool {
	if strings.HasPrefix(taint.Key, "node.kubernetes.io/") || strings.HasPrefix(taint.Key, "node.cloudprovider.kubernetes.io/") {
		return true
	}
	return slices.ContainsFunc(nc.Spec.StartupTaints, func(s v1alpha1.Taint) bool { return s.Key == taint.Key && s.Effect == taint.Effect })
}

// taintComparisonOperators reports whether tolerations may compare taint values (Gt, Lt).
func taintComparisonOperators() bool {
	return utilfeature.DefaultFeatureGate.Enabled(features.TaintTolerationComparisonOperators)
}

// mark sets claim in m, one of r's sets, and reports whether it was set already.
func (r *reservations) mark(m map[string]bool, claim string) (already bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	already = m[claim]
	m[claim] = true
	return already
}

// activateOnce activates nc's pods the first time its node shows up.
func (r *reservations) activateOnce(ctx context.Context, nc *v1alpha1.NodeClaim) {
	if r.mark(r.activated, nc.Name) {
		return
	}
	var ready, waiting []*v1.Pod
	for _, pod := range r.pendingOf(r.ledger.Pods(nc.Name)) {
		if r.spread == nil || r.spread.ready(pod) {
			ready = append(ready, pod)
		} else {
			waiting = append(waiting, pod)
		}
	}
	n := r.activatePods(klog.FromContext(ctx), ready)
	if len(waiting) > 0 {
		r.letAfter(ctx, nc.Name, waiting)
	}
	klog.FromContext(ctx).V(2).Info("Node of nodeclaim registered; activating its pods", "nodeClaim", klog.KObj(nc),
		"node", nc.Status.NodeName, "pods", n, "waitingForSpread", len(waiting))
}

// activate moves the pending pods among refs to the scheduler's active queue, and returns
// how many there were.
func (r *reservations) activate(ctx context.Context, refs []v1alpha1.PodReference) int {
	return r.activatePods(klog.FromContext(ctx), r.pendingOf(refs))
}

// activateClaims activates the pending pods reserved on the NodeClaims named claims, and
// returns how many there were.
func (r *reservations) activateClaims(ctx context.Context, claims []string) int {
	var refs []v1alpha1.PodReference
	for _, name := range claims {
		refs = append(refs, r.ledger.Pods(name)...)
	}
	return r.activate(ctx, refs)
}

// forget drops what reservations keep of the NodeClaim named claim, which is gone.
func (r *reservations) forget(claim string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.activated, claim)
	delete(r.readyTimers, claim)
}

// isActivated reports whether the pods of the NodeClaim named claim were activated: its node
// has shown up.
func (r *reservations) isActivated(claim string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.activated[claim]
}

// waitsForActivation reports whether pod is reserved on a NodeClaim whose node has not
// registered yet, or waits for its topology spread (spreadGate): only the plugin's
// activation (or the claim's deletion) moves it.
func (r *reservations) waitsForActivation(pod *v1.Pod) bool {
	claim, _, ok := r.ledger.Reservation(pod.UID)
	return ok && r.holdsBack(pod.UID, claim)
}

// holdsBack reports whether the pod with uid, reserved on the NodeClaim named claim, is kept
// from the scheduler: its node has not registered, or its topology spread keeps it waiting.
func (r *reservations) holdsBack(uid types.UID, claim string) bool {
	return !r.isActivated(claim) || r.spread.waiting(uid)
}

// registeredSince returns when the node of the NodeClaim named claim registered, if it has.
func (r *reservations) registeredSince(claim string) (time.Time, bool) {
	nc, ok := r.ledger.Claim(claim)
	if !ok || nc.Status.NodeName == "" {
		return time.Time{}, false
	}
	return nc.TrueSince(v1alpha1.ConditionRegistered)
}

// retryWhenGraceEnds moves the pods of the NodeClaim named claim that are still pending to
// the scheduler's active queue just after end, once per claim: a pod is released (see
// PostFilter) only when it is tried, and one waiting for a sibling that never comes may see
// no cluster event that retries it (the scheduler's own flush comes after 5 minutes).
func (r *reservations) retryWhenGraceEnds(logger klog.Logger, claim string, end time.Time) {
	if r.mark(r.graceTimers, claim) {
		return
	}
	fire := func() {
		r.mu.Lock()
		delete(r.graceTimers, claim)
		r.mu.Unlock()
		if n := r.activatePods(logger, r.waitingOn(claim)); n > 0 {
			logger.V(2).Info("Reservation grace over; trying the nodeclaim's pending pods again", "nodeClaim", claim, "pods", n)
		}
	}
	r.afterFunc(end.Sub(r.opts.Clock.Now())+time.Second, fire)
}

// waitingOn returns the pods still pending and reserved on the NodeClaim named claim.
func (r *reservations) waitingOn(claim string) []*v1.Pod {
	return r.reservedOn(claim, r.pendingOf(r.ledger.Pods(claim)))
}

// reservedOn returns those of pods still reserved on the NodeClaim named claim (not
// released from it).
func (r *reservations) reservedOn(claim string, pods []*v1.Pod) []*v1.Pod {
	var out []*v1.Pod
	for _, pod := range pods {
		if c, _, ok := r.ledger.Reservation(pod.UID); ok && c == claim {
			out = append(out, pod)
		}
	}
	return out
}

// awaitedClaims yields every unsettled NodeClaim with its pods that are still pending and
// reserved on it, for those that have any.
func (r *reservations) awaitedClaims() iter.Seq2[*v1alpha1.NodeClaim, []*v1.Pod] {
	return func(yield func(*v1alpha1.NodeClaim, []*v1.Pod) bool) {
		for _, nc := range r.ledger.Claims() {
			if r.ledger.isSettled(nc.Name) {
				continue
			}
			if pending := r.waitingOn(nc.Name); len(pending) > 0 && !yield(nc, pending) {
				return
			}
		}
	}
}

// pendingReserved returns how many pods reserved on the NodeClaim named claim are pending,
// 0 when the pod with uid is one of them (they were planned together). It reads state only:
// claims are settled by settleIfDone, on the events that end a reservation.
func (r *reservations) pendingReserved(claim string, uid types.UID) int {
	if r.ledger.isSettled(claim) {
		return 0
	}
	pending := r.pendingOf(r.ledger.Pods(claim))
	for _, pod := range pending {
		if pod.UID == uid {
			return 0
		}
	}
	return len(r.reservedOn(claim, pending))
}

// settleIfDone records the NodeClaim named claim as settled when none of the pods reserved on
// it is pending any more. It runs when a claim is seen (its events, the ledger's rebuild)
// and when one of its pods binds or is deleted. A pod is never pending again once bound or
// gone (a pod made anew has another UID); pods added to the claim's spare room unsettle it
// (Ledger.Add). A claim whose last pending pod was released settles when it is next seen.
//
// Until the scheduler's pod cache has synced, a pending pod may look absent: nothing is
// settled then.
func (r *reservations) settleIfDone(claim string) {
	if claim == "" || r.ledger.isSettled(claim) || !r.podInformer().HasSynced() {
		return
	}
	if len(r.waitingOn(claim)) == 0 {
		r.ledger.settle(claim)
		if r.onSettle != nil {
			r.onSettle()
		}
	}
}

// holdOf tells whether node is held from the pod with uid ("" for a pod reserved nowhere):
// launched by nodewright and not matched to its NodeClaim yet (unmatched), or with pending
// pods reserved on its claim other than that pod. claim is the node's NodeClaim, if any.
func (r *reservations) holdOf(node *v1.Node, uid types.UID) (claim string, pending int, unmatched bool) {
	claim = r.ledger.ClaimNameForNode(node)
	if claim == "" {
		_, ours := node.Labels[v1alpha1.LabelProvisionerName]
		return "", 0, ours
	}
	return claim, r.pendingReserved(claim, uid), false
}

// holdsNode reports whether Filter turns away from node every pod reserved nowhere (holdOf).
func (r *reservations) holdsNode(node *v1.Node) bool {
	_, pending, unmatched := r.holdOf(node, "")
	return unmatched || pending > 0
}

// settleClaimOf is settleIfDone for the claim pod is reserved on, if any.
func (r *reservations) settleClaimOf(pod *v1.Pod) {
	if claim, _, ok := r.ledger.Reservation(pod.UID); ok {
		r.settleIfDone(claim)
	}
}
