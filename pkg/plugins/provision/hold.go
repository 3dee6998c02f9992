package provision

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
)

// HoldLimit bounds how long PreEnqueue holds a pod past the batch window's longest
// (batchMaxDuration): a round that has not ended by then (its API reads hang, say) no longer
// keeps the pod from the scheduler.
const HoldLimit = 30 * time.Second

// holdMessage is the status of a held pod, in the scheduler's log at -v=4.
const holdMessage = "a provisioning round plans a node for the pod"

// holds are the pods PreEnqueue keeps out of the scheduling queue while a provisioning round
// plans their nodes and until those nodes register. Such a pod has not been tried yet and fits
// the free room of no node, or waits for pods reserved on new nodes (roundTakes): the
// scheduler could only fail it, write its status and record an event, a thousand times in a
// burst of a thousand pods, on the apiserver and the two cores the round plans on, and again
// once the round reserved it on a NodeClaim whose node has not registered. A held pod starts
// the batch window (batcher.TriggerPod) as a pod the scheduler finds unschedulable does. The
// round that starts next takes it (pendingPods), and releases it at once if it does not; once
// the round has written its claims it releases the pods it did not reserve (unplanned, or
// whose claim failed to write). A reserved pod stays held until its claim's node registers:
// the plugin activates it then (reservations.activateOnce), or when the claim goes, and
// PreEnqueue lets it through. A pod is held once: released, it is never held again. A pod
// whose round has not ended after batchMaxDuration + HoldLimit is released whatever the round
// does.
type holds struct {
	d       *deps
	trigger func(types.UID)
	// waits reports whether the pod with uid, reserved on the NodeClaim named claim, still
	// waits for the plugin to activate it (reservations.holdsBack).
	waits func(uid types.UID, claim string) bool

	mu sync.Mutex
	// held are the pods held, by UID, with the number of the round they wait for; ended is
	// the number of the last round that ended.
	held  map[types.UID]*heldPod
	round int
	ended int
	// released are the pods released, never held again, until they bind or go.
	released map[types.UID]*v1.Pod
	// room is the free room of the nodes, nil when a node or a pod's going may have made more.
	room *freeRoom
	// watchdog is true while a timer to release pods held too long is set.
	watchdog bool
}

type heldPod struct {
	pod   *v1.Pod
	round int
	since time.Time
}

func newHolds(d *deps, trigger func(types.UID), waits func(uid types.UID, claim string) bool) *holds {
	return &holds{d: d, trigger: trigger, waits: waits, held: map[types.UID]*heldPod{}, released: map[types.UID]*v1.Pod{}, ended: -1}
}

// PreEnqueue holds a pod a provisioning round will plan a node for (see holds).
func (p *Provision) PreEnqueue(ctx context.Context, pod *v1.Pod) *fwk.Status {
	if p.holds != nil && p.holds.hold(klog.FromContext(ctx), pod) {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, holdMessage)
	}
	if why := p.gangs.unready(pod); why != "" {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, why)
	}
	return nil
}

// hold reports whether pod is to be held, and holds it if it is not yet.
func (h *holds) hold(logger klog.Logger, pod *v1.Pod) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.released[pod.UID]; ok {
		return false
	}
	claim, _, reserved := h.d.ledger.Reservation(pod.UID)
	if held, ok := h.held[pod.UID]; ok {
		if h.stillHeld(held, claim, reserved) {
			return true
		}
		h.releaseLocked(held)
		return false
	}
	if reserved || !h.d.untried(pod) || pod.Status.NominatedNodeName != "" || h.d.opts.Cloud == nil {
		return false
	}
	if h.room == nil {
		h.room = h.d.freeRoom(logger)
	}
	if h.room == nil || !h.d.roundTakes(h.room, pod) {
		return false
	}
	h.held[pod.UID] = &heldPod{pod: pod, round: h.round, since: h.d.opts.Clock.Now()}
	podsHeld.Inc()
	h.armWatchdog(logger)
	// The batcher's lock is taken under the queue's: it never calls into the queue.
	h.trigger(pod.UID)
	return true
}

// stillHeld reports whether held stays held: reserved on claim, until claim's node registers;
// else until its round ends, for the limit at most. h.mu is held.
func (h *holds) stillHeld(held *heldPod, claim string, reserved bool) bool {
	if reserved {
		return h.waits(held.pod.UID, claim)
	}
	return held.round > h.ended && h.d.opts.Clock.Since(held.since) < h.limit()
}

// releaseLocked forgets held and remembers it released. h.mu is held.
func (h *holds) releaseLocked(held *heldPod) {
	delete(h.held, held.pod.UID)
	h.released[held.pod.UID] = held.pod
}

// holding reports whether the pod with uid is held: only the plugin's activations (at its
// round's end, its node's registration, its claim's going, the limit) release it, so that
// no cluster event needs to run PreEnqueue for it again (see EventsToRegister). h may be nil.
func (h *holds) holding(uid types.UID) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.held[uid]
	return ok
}

// limit is how long a pod is held at most.
func (h *holds) limit() time.Duration {
	max := time.Duration(0)
	if h.d.args != nil {
		max = h.d.args.BatchMaxDuration.Duration
	}
	return max + HoldLimit
}

// startRound returns the number of the round that starts: the pods held before are its.
func (h *holds) startRound() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.round++
	return h.round - 1
}

// release releases the pods held for round and before that keep (if not nil) does not keep,
// and returns how many; with end, round has ended (see holds). A pod reserved on a claim
// whose node has not registered stays held whatever keep says, the pods a round before this
// one reserved too.
func (h *holds) release(logger klog.Logger, round int, end bool, keep func(*v1.Pod) bool) int {
	h.mu.Lock()
	if end {
		h.ended = max(h.ended, round)
	}
	var pods []*v1.Pod
	for _, held := range h.held {
		claim, _, reserved := h.d.ledger.Reservation(held.pod.UID)
		waitsForNode := reserved && h.waits(held.pod.UID, claim)
		if held.round <= round && !waitsForNode && (keep == nil || !keep(held.pod)) {
			pods = append(pods, held.pod)
			h.releaseLocked(held)
		}
	}
	h.mu.Unlock()
	// Activate runs PreEnqueue again, under the queue's lock: never call it holding h.mu.
	return h.d.activatePods(logger, pods)
}

// armWatchdog sets a timer that releases the pods held longer than limit, unless one is set.
// h.mu is held.
func (h *holds) armWatchdog(logger klog.Logger) {
	if h.watchdog {
		return
	}
	h.watchdog = true
	// Its own goroutine: a fake clock runs the function holding its lock.
	h.d.afterFunc(h.limit(), func() { go h.releaseExpired(logger) })
}

// releaseExpired releases the pods held for longer than limit whose round has not ended, and
// sets the timer again if others wait for theirs.
func (h *holds) releaseExpired(logger klog.Logger) {
	h.mu.Lock()
	h.watchdog = false
	var pods []*v1.Pod
	waiting := false
	for uid, held := range h.held {
		if _, _, reserved := h.d.ledger.Reservation(uid); reserved || held.round <= h.ended {
			continue // its node's registration, or the claim's going, releases it
		}
		if h.d.opts.Clock.Since(held.since) >= h.limit() {
			pods = append(pods, held.pod)
			h.releaseLocked(held)
		} else {
			waiting = true
		}
	}
	if waiting {
		h.armWatchdog(logger)
	}
	h.mu.Unlock()
	if len(pods) > 0 {
		logger.Info("Released pods held past the limit: no provisioning round ended for them", "pods", len(pods), "limit", h.limit())
		h.d.activatePods(logger, pods)
	}
}

// nodesChanged forgets the free room: a node came, went, changed its allocatable or its
// labels (matched to its NodeClaim), or stopped being held for reserved pods (a claim
// settled). h may be nil.
func (h *holds) nodesChanged() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.room = nil
	h.mu.Unlock()
}

// podBound counts pod, bound now, in the free room, and forgets it. h may be nil. (A room
// read from the informers after the binding and before this counts it twice: less room, an
// error that at worst holds a pod its round then lets go as it starts.)
func (h *holds) podBound(pod *v1.Pod) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forgetLocked(pod.UID)
	if h.room != nil {
		h.room.add(pod, 1)
	}
}

// podGone takes pod, gone or finished, out of the free room, and forgets it. h may be nil.
func (h *holds) podGone(pod *v1.Pod) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forgetLocked(pod.UID)
	if h.room != nil && pod.Spec.NodeName != "" && !finished(pod) {
		h.room.add(pod, -1) // a finished pod was taken out when it finished
	}
}

// forgetLocked drops the pod with uid, bound or gone. h.mu is held.
func (h *holds) forgetLocked(uid types.UID) {
	delete(h.released, uid)
	delete(h.held, uid)
}

// prune forgets the released pods that are no longer pending.
func (h *holds) prune() {
	pruneNotPending(h.d, &h.mu, h.released, func(pod *v1.Pod) (string, string) { return pod.Namespace, pod.Name })
}

// freeRoom returns the free room of the cluster's nodes, from the informers; nil if they
// cannot be listed.
func (d *deps) freeRoom(logger klog.Logger) *freeRoom {
	pods, err := d.podLister().List(labels.Everything())
	if err == nil {
		var room *freeRoom
		if room, err = d.roomWith(pods); err == nil {
			return room
		}
	}
	logger.Error(err, "Reading the free room of the nodes")
	return nil
}
