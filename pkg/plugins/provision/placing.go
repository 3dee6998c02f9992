package provision

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/utils/clock"
)

// placing keeps the scheduler from placing a pod while a round reserves it on a new node,
// and a round from reserving a pod the scheduler is placing.
//
// A round plans from the informer's pods while the scheduler keeps trying pods (from its
// backoff queue, or pods never held). PreFilter keeps a reserved pod to its claim's node, but
// a cycle that began before the reservation was recorded does not see it: the pod could bind
// elsewhere and its claim launch for a pod that never comes (seen in CI: a pod bound while
// its claim was being written, after the writer had checked the informer). Nor may the
// scheduler place a pod while the round plans it: the plan counted the pod where it put it,
// and placed other pods by that count (a zone spread counting it in one zone where it is in
// another strands them: seen in a scale-up in waves). So the two exclude each other:
// PreFilter marks the pod as placing before it reads the ledger; a round leaves out the
// pods being placed when it takes its pods and marks the others as reserving until it ends
// (a claim write, until the ledger has their reservation); PreFilter turns a pod away while
// it is being reserved, for placingLimit at most (a round whose API or cloud calls hang does
// not keep its pods from the scheduler longer). A pod stops being placed when its cycle
// fails (PostFilter, PodGroupPostFilter, Unreserve), when it binds or goes, and, if none of
// these tells the plugin (an error ended the cycle, or preemption nominated it),
// placingLimit after its cycle began. From Reserve on (the scheduler assumed it on a node,
// which a round counts it on: assumedOn), only Unreserve, the binding or the pod's deletion
// end it: a pod may wait long at Permit or PreBind.
type placing struct {
	clock clock.PassiveClock

	mu sync.Mutex
	// cycles are the pods in a scheduling cycle: when it began, and whether the scheduler
	// assumed the pod on a node (Reserve).
	cycles map[types.UID]cycle
	// reserving are the pods a round is reserving (from when it takes them, see reserve), by
	// UID, with when; turnedAway those of them PreFilter turned away meanwhile, to be tried
	// again if they are not reserved.
	reserving  map[types.UID]reservingPod
	turnedAway map[types.UID]bool
}

// Reserve notes that the scheduler assumed pod on the node named nodeName: no round reserves
// it on a new one until Unreserve, or until it binds or goes, and rounds count it there (see
// placing).
func (p *Provision) Reserve(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	p.placing.assume(pod.UID, nodeName)
	if p.spread != nil {
		p.activateFreed(klog.FromContext(ctx), p.spread.placed(pod, p.nodeNamed(nodeName)))
	}
	return nil
}

// Unreserve notes that the cycle that assumed pod failed after Reserve.
func (p *Provision) Unreserve(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) {
	p.placing.end(pod.UID)
	if p.spread != nil {
		p.spread.unplaced(pod.UID)
	}
}

type cycle struct {
	began   time.Time
	assumed bool
	// node is the node the pod was assumed on.
	node string
}

// placingLimit is how long a cycle that never said how it ended keeps its pod from being
// reserved. A cycle ends in milliseconds, or seconds on thousands of nodes with preemption.
const placingLimit = 30 * time.Second

// newPlacing returns a placing on clock c (the real clock if nil).
func newPlacing(c clock.PassiveClock) *placing {
	if c == nil {
		c = clock.RealClock{}
	}
	return &placing{clock: c, cycles: map[types.UID]cycle{}, reserving: map[types.UID]reservingPod{}, turnedAway: map[types.UID]bool{}}
}

// begin marks a cycle of the pod with uid as begun, unless a claim being written reserves
// the pod: then it returns false, and the cycle must not place the pod.
func (p *placing) begin(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isReservingLocked(uid) {
		p.turnedAway[uid] = true
		return false
	}
	p.cycles[uid] = cycle{began: p.clock.Now()}
	return true
}

// assume marks the pod with uid as assumed on the node named node by its cycle.
func (p *placing) assume(uid types.UID, node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cycles[uid] = cycle{began: p.clock.Now(), assumed: true, node: node}
}

// assumedOn returns the nodes the scheduler assumed pods on, by pod UID: pods binding now,
// which the informer shows unbound until their binding is seen.
func (p *placing) assumedOn() map[types.UID]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[types.UID]string{}
	for uid, c := range p.cycles {
		if c.assumed {
			out[uid] = c.node
		}
	}
	return out
}

// isReserving reports whether a round is reserving the pod with uid (see reserve).
func (p *placing) isReserving(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isReservingLocked(uid)
}

// isReservingLocked is isReserving with p.mu held: a pod marked placingLimit ago or more is
// no longer kept from the scheduler.
func (p *placing) isReservingLocked(uid types.UID) bool {
	r, ok := p.reserving[uid]
	return ok && p.clock.Since(r.since) < placingLimit
}

// reservingPod is a pod a round is reserving, since when it was marked.
type reservingPod struct {
	pod   *v1.Pod
	since time.Time
}

// beingReserved calls f with each pod a round is reserving, until f returns false.
func (p *placing) beingReserved(f func(*v1.Pod) bool) {
	p.mu.Lock()
	pods := make([]*v1.Pod, 0, len(p.reserving))
	for uid, r := range p.reserving {
		if p.isReservingLocked(uid) {
			pods = append(pods, r.pod)
		}
	}
	p.mu.Unlock()
	for _, pod := range pods {
		if !f(pod) {
			return
		}
	}
}

// end marks the cycle of the pod with uid as over: it failed, or the pod bound or went.
func (p *placing) end(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cycles, uid)
}

// reserve returns the pods that no cycle is placing, and marks them as being reserved until
// reserved is called with them; the others are left out.
func (p *placing) reserve(pods []*v1.Pod) (kept []*v1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	kept = make([]*v1.Pod, 0, len(pods))
	for _, pod := range pods {
		if c, ok := p.cycles[pod.UID]; ok {
			if c.assumed || now.Sub(c.began) < placingLimit {
				continue
			}
			delete(p.cycles, pod.UID)
		}
		p.reserving[pod.UID] = reservingPod{pod: pod, since: now}
		kept = append(kept, pod)
	}
	return kept
}

// reserved says that the reservations of pods, marked by reserve, are in the ledger, or,
// if !ok, will not be. It returns the pods PreFilter turned away meanwhile if !ok: they are
// to be tried again, since nothing else will.
func (p *placing) reserved(pods []*v1.Pod, ok bool) (retry []*v1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pod := range pods {
		if p.turnedAway[pod.UID] && !ok {
			retry = append(retry, pod)
		}
		delete(p.reserving, pod.UID)
		delete(p.turnedAway, pod.UID)
	}
	return retry
}

// prune forgets the cycles past placingLimit that were not assumed: their end was not seen.
func (p *placing) prune() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	for uid, c := range p.cycles {
		if !c.assumed && now.Sub(c.began) >= placingLimit {
			delete(p.cycles, uid)
		}
	}
}
