package provision

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// The results of nodewright_pods_spread_waits_total: the pod's spread let it go, or it
// waited NodeReadyWait.
const (
	spreadLet      = "let"
	spreadTimedOut = "timed_out"
)

// spreadGate keeps a pod reserved on a NodeClaim whose node has registered from the
// scheduler while its hard topology spread, or one that counts it, would turn it away
// there: until the pods the plan counted in the other domains are placed (plan.SpreadGate,
// plan.SpreadCounts). Without it, the pods of a zone spread whose nodes registered first
// failed their cycles, each writing its status from the scheduler's only scheduling
// goroutine and waiting for a retry: 150 failures took 6 of the last 9 s of a 1,000-pod
// scale-up. PreEnqueue holds a waiting pod (holds.stillHeld) and the hints skip it
// (reservations.waitsForActivation); the placing of the pods it waits for (Reserve), their
// binding or their going lets it go. The counts live in memory: after a restart, the pods
// go as their nodes register, as they did before. A pod that waits NodeReadyWait after its
// node registered goes anyway (spreadGate.letAfter).
type spreadGate struct {
	mu   sync.Mutex
	gate *plan.SpreadGate
	// refs are the tracked pods, to activate by UID.
	refs map[types.UID]v1alpha1.PodReference
}

func newSpreadGate() *spreadGate {
	return &spreadGate{gate: plan.NewSpreadGate(), refs: map[types.UID]v1alpha1.PodReference{}}
}

// add takes in the counts of a round's plan, whose pods are pods; c nil ends the round's
// mark all the same. s may be nil.
func (s *spreadGate) add(c *plan.SpreadCounts, pods []*v1.Pod) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate.Add(c)
	if c == nil {
		return
	}
	for _, pod := range pods {
		_, needs := c.Needs[pod.UID]
		if _, counted := c.Counted[pod.UID]; needs || counted {
			s.refs[pod.UID] = podRef(pod)
		}
	}
}

// mark notes that a round is about to read the cluster (plan.SpreadGate.Mark). s may be nil.
func (s *spreadGate) mark() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate.Mark()
}

// ready notes that pod's node registered, and reports whether pod may go now.
func (s *spreadGate) ready(pod *v1.Pod) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refs[pod.UID]; !ok {
		s.refs[pod.UID] = podRef(pod)
	}
	return s.gate.Ready(pod.UID)
}

// waiting reports whether the pod with uid waits for its spread. s may be nil.
func (s *spreadGate) waiting(uid types.UID) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gate.Waiting(uid)
}

// placed, bound and gone count a pod the scheduler assumed on node (nil if not known), that
// bound there, or that went, and return the pods that may go now.
func (s *spreadGate) placed(pod *v1.Pod, node *v1.Node) []v1alpha1.PodReference {
	return s.update(pod.UID, false, func(types.UID) []types.UID { return s.gate.PlacedOn(pod, node) })
}

func (s *spreadGate) bound(pod *v1.Pod, node *v1.Node) []v1alpha1.PodReference {
	return s.update(pod.UID, true, func(uid types.UID) []types.UID { return append(s.gate.PlacedOn(pod, node), s.gate.Bound(uid)...) })
}

func (s *spreadGate) gone(uid types.UID) []v1alpha1.PodReference {
	return s.update(uid, true, s.gate.Gone)
}

func (s *spreadGate) update(uid types.UID, forget bool, f func(types.UID) []types.UID) []v1alpha1.PodReference {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []v1alpha1.PodReference
	for _, freed := range f(uid) {
		out = append(out, s.refs[freed])
	}
	if forget {
		delete(s.refs, uid)
	}
	return out
}

// letWaiting lets go those of pods that still wait, whatever their spread says, and returns
// them with what kept each.
func (s *spreadGate) letWaiting(pods []*v1.Pod) (late []*v1.Pod, why []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pod := range pods {
		if s.gate.Waiting(pod.UID) {
			why = append(why, pod.Name+": "+s.gate.Why(pod.UID))
			s.gate.Let(pod.UID)
			late = append(late, pod)
		}
	}
	return late, why
}

// unplaced takes back a placing whose cycle failed after Reserve.
func (s *spreadGate) unplaced(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate.Unplaced(uid)
}

// letAfter lets go, NodeReadyWait from now, those of pods that still wait then: the pods
// they wait for may never be placed (their nodes rejected them, say).
func (r *reservations) letAfter(ctx context.Context, claim string, pods []*v1.Pod) {
	logger := klog.FromContext(ctx)
	r.afterFunc(NodeReadyWait, func() {
		late, why := r.spread.letWaiting(pods)
		podsSpreadWaits.WithLabelValues(spreadTimedOut).Add(float64(len(late)))
		if n := r.activatePods(logger, r.stillPending(late)); n > 0 {
			logger.Info("Pods waited for their topology spread too long; activating them anyway", "nodeClaim", claim, "pods", n, "waited", NodeReadyWait, "why", why)
		}
	})
}

// spreadGone uncounts the pods of refs, no longer reserved, and activates the pods that
// may go now.
func (p *Provision) spreadGone(ctx context.Context, refs []v1alpha1.PodReference) {
	if p.spread == nil {
		return
	}
	var freed []v1alpha1.PodReference
	for _, ref := range refs {
		freed = append(freed, p.spread.gone(ref.UID)...)
	}
	p.activateFreed(klog.FromContext(ctx), freed)
}

// activateFreed activates the pods the spread gate let go, if still pending.
func (d *deps) activateFreed(logger klog.Logger, freed []v1alpha1.PodReference) {
	if len(freed) == 0 {
		return
	}
	podsSpreadWaits.WithLabelValues(spreadLet).Add(float64(len(freed)))
	if n := d.activatePods(logger, d.pendingOf(freed)); n > 0 {
		logger.V(4).Info("Topology spread lets reserved pods go", "pods", n)
	}
}

// podRef returns the reference of pod.
func podRef(pod *v1.Pod) v1alpha1.PodReference { return v1alpha1.PodReferencesTo([]*v1.Pod{pod})[0] }
