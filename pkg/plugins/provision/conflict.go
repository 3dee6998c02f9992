package provision

import (
	"maps"
	"slices"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/plan"
)

// conflicts find, for PreFilter, the pods whose placement and a pending reserved pod's
// constrain each other (reservedConflict), with the pods' constraint terms cached.
type conflicts struct {
	*deps
	reserved *reservations
	// placing has the pods the running round is reserving.
	placing *placing
	// hardDefaultSpread is plan.HardDefaultSpread of the profile's plugin args.
	hardDefaultSpread bool
	mu                sync.Mutex
	// terms caches plan.TermsOf by pod UID (see prune).
	terms map[types.UID]cachedTerms
}

func newConflicts(d *deps, reserved *reservations, placing *placing, hardDefaultSpread bool) *conflicts {
	return &conflicts{deps: d, reserved: reserved, placing: placing, hardDefaultSpread: hardDefaultSpread, terms: map[types.UID]cachedTerms{}}
}

// reservedConflict returns a pod reserved on a NodeClaim, still pending, whose placement
// pod's could upset, or nil: one selects the other in a topology spread constraint or a
// required inter-pod (anti)-affinity term. Such a pod waits until the reserved pods are
// bound (or released), and the next round plans it meanwhile, with them where they will
// run. The scheduler counts reserved pods nowhere until they bind: a pod bound before them
// into a zone or node the plan did not give it can leave a reserved pod that spreads with it,
// or repels it, unable to fit on its claim's node (stranded, see strandRelease). When the
// profile gives pods default spread constraints that filter (HardDefaultSpread), pods of one
// controller with no constraints of their own spread over each other too.
//
// The pods a round is planning count as reserved already (planning is true when one of them
// is returned): the plan counts each where it puts it, so a pod the scheduler bound meanwhile
// where the plan did not expect it would strand them as well.
func (c *conflicts) reservedConflict(pod *v1.Pod) (r *v1.Pod, planning bool) {
	conflicts := c.constrainsWith(pod)
	for _, pending := range c.reserved.awaitedClaims() {
		for _, other := range pending {
			if conflicts(other) {
				return other, false
			}
		}
	}
	c.placing.beingReserved(func(other *v1.Pod) bool {
		if conflicts(other) {
			r = other
		}
		return r == nil
	})
	return r, r != nil
}

// constrainsWith returns a function that reports whether pod's placement and another pod's
// constrain each other: one selects the other in a topology spread constraint or a required
// inter-pod (anti-)affinity term, or the profile's default spread applies to both. pod's
// terms are computed at the first call.
func (c *conflicts) constrainsWith(pod *v1.Pod) func(other *v1.Pod) bool {
	var mine plan.Terms
	computed := false
	return func(other *v1.Pod) bool {
		if other.UID == pod.UID {
			return false
		}
		if !computed {
			mine, computed = c.termsOf(pod), true
		}
		return mine.Selects(other) || c.termsOf(other).Selects(pod) || c.defaultSpreadTogether(pod, other)
	}
}

// constrainsAny reports whether pod's placement and one of others' constrain each other
// (constrainsWith).
func (c *conflicts) constrainsAny(pod *v1.Pod, others []*v1.Pod) bool {
	return slices.ContainsFunc(others, c.constrainsWith(pod))
}

// awaitsReserved reports whether PreFilter turns pod away for now (reservedConflict).
func (c *conflicts) awaitsReserved(pod *v1.Pod) bool {
	r, _ := c.reservedConflict(pod)
	return r != nil
}

// mayHaveWaitedFor reports whether pod may have waited for bound (reservedConflict): pod's
// terms select it, the profile's default spread applies to both, or bound's terms, cached
// when pod's wait computed them, select pod. The terms of bound pods are never computed
// here: the scheduler asks for every pod bound in the cluster.
func (c *conflicts) mayHaveWaitedFor(pod, bound *v1.Pod) bool {
	if c.termsOf(pod).Selects(bound) || c.defaultSpreadTogether(pod, bound) {
		return true
	}
	ts, ok := c.cachedTerms(bound.UID)
	return ok && ts.Selects(pod)
}

// defaultSpreadTogether reports whether the profile's default spread constraints filter and
// apply to a and b alike: pods with no constraints of their own and the same controller,
// whose selector those constraints use. (Pods a Service selects across controllers are not
// counted.)
func (c *conflicts) defaultSpreadTogether(a, b *v1.Pod) bool {
	if !c.hardDefaultSpread || len(a.Spec.TopologySpreadConstraints) > 0 || len(b.Spec.TopologySpreadConstraints) > 0 {
		return false
	}
	ca, cb := metav1.GetControllerOfNoCopy(a), metav1.GetControllerOfNoCopy(b)
	return ca != nil && cb != nil && ca.UID == cb.UID && a.Namespace == b.Namespace
}

// cachedTerms are a pod's plan.Terms, with its name for prune.
type cachedTerms struct {
	namespace, name string
	terms           plan.Terms
}

// termsOf returns pod's plan.Terms, computed once per pod UID (see prune).
func (c *conflicts) termsOf(pod *v1.Pod) plan.Terms {
	if ts, ok := c.cachedTerms(pod.UID); ok {
		return ts
	}
	ts := plan.TermsOf(pod)
	c.mu.Lock()
	c.terms[pod.UID] = cachedTerms{pod.Namespace, pod.Name, ts}
	c.mu.Unlock()
	return ts
}

// cachedTerms returns the terms termsOf computed for the pod with uid, if it did.
func (c *conflicts) cachedTerms(uid types.UID) (plan.Terms, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cached, ok := c.terms[uid]
	return cached.terms, ok
}

// prune forgets the terms of pods that are no longer pending.
func (c *conflicts) prune() {
	pruneNotPending(c.deps, &c.mu, c.terms, func(t cachedTerms) (string, string) { return t.namespace, t.name })
}

// pruneNotPending deletes from m, which mu guards, the entries of pods that are no longer
// pending; podOf names an entry's pod.
func pruneNotPending[V any](d *deps, mu *sync.Mutex, m map[types.UID]V, podOf func(V) (namespace, name string)) {
	mu.Lock()
	entries := maps.Clone(m)
	mu.Unlock()
	for uid, v := range entries {
		namespace, name := podOf(v)
		if _, ok := d.unbound(namespace, name, uid); !ok {
			mu.Lock()
			delete(m, uid)
			mu.Unlock()
		}
	}
}
