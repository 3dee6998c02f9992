package provision

import (
	"iter"
	"maps"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// reservedConflict returns a pod reserved on a NodeClaim, still pending, whose placement
// pod's could upset, or nil: one selects the other in a topology spread constraint or a
// required inter-pod (anti)-affinity term. Such a pod waits until the reserved pods are
// bound (or released), and the next round plans it meanwhile, with them where they will
// run. The scheduler counts reserved pods nowhere until they bind: a pod bound before them
// into a zone or node the plan did not give it can leave a reserved pod that spreads with it,
// or repels it, unable to fit on its claim's node (stranded, see strandRelease). When the
// profile gives pods default spread constraints that filter (HardDefaultSpread), pods of one
// controller with no constraints of their own spread over each other too.
func (p *Provision) reservedConflict(pod *v1.Pod) *v1.Pod {
	var mine plan.Terms
	computed := false
	for _, pending := range p.awaitedClaims() {
		for _, r := range pending {
			if r.UID == pod.UID {
				continue
			}
			if !computed {
				mine, computed = p.termsOf(pod), true
			}
			if mine.Selects(r) || p.termsOf(r).Selects(pod) || p.defaultSpreadTogether(pod, r) {
				return r
			}
		}
	}
	return nil
}

// defaultSpreadTogether reports whether the profile's default spread constraints filter and
// apply to a and b alike: pods with no constraints of their own and the same controller,
// whose selector those constraints use. (Pods a Service selects across controllers are not
// counted.)
func (p *Provision) defaultSpreadTogether(a, b *v1.Pod) bool {
	if !p.hardDefaultSpread || len(a.Spec.TopologySpreadConstraints) > 0 || len(b.Spec.TopologySpreadConstraints) > 0 {
		return false
	}
	ca, cb := metav1.GetControllerOfNoCopy(a), metav1.GetControllerOfNoCopy(b)
	return ca != nil && cb != nil && ca.UID == cb.UID && a.Namespace == b.Namespace
}

// awaitedClaims yields every unsettled NodeClaim with its pods that are still pending and
// reserved on it, for those that have any.
func (p *Provision) awaitedClaims() iter.Seq2[*v1alpha1.NodeClaim, []*v1.Pod] {
	return func(yield func(*v1alpha1.NodeClaim, []*v1.Pod) bool) {
		for _, nc := range p.ledger.Claims() {
			if p.ledger.isSettled(nc.Name) {
				continue
			}
			if pending := p.waitingOn(nc.Name); len(pending) > 0 && !yield(nc, pending) {
				return
			}
		}
	}
}

// cachedTerms are a pod's plan.Terms, with its name for pruneTerms.
type cachedTerms struct {
	namespace, name string
	terms           plan.Terms
}

// termsOf returns pod's plan.Terms, computed once per pod UID (see pruneTerms).
func (p *Provision) termsOf(pod *v1.Pod) plan.Terms {
	p.mu.Lock()
	c, ok := p.terms[pod.UID]
	p.mu.Unlock()
	if ok {
		return c.terms
	}
	ts := plan.TermsOf(pod)
	p.mu.Lock()
	if p.terms == nil {
		p.terms = map[types.UID]cachedTerms{}
	}
	p.terms[pod.UID] = cachedTerms{pod.Namespace, pod.Name, ts}
	p.mu.Unlock()
	return ts
}

// pruneTerms forgets the terms of pods that are no longer pending.
func (p *Provision) pruneTerms() {
	pruneNotPending(p, func() map[types.UID]cachedTerms { return p.terms }, func(c cachedTerms) (string, string) { return c.namespace, c.name })
}

// pruneNotPending deletes from the map m returns, one of p's that p.mu guards (m is called
// with it held), the entries of pods that are no longer pending; podOf names an entry's pod.
func pruneNotPending[V any](p *Provision, m func() map[types.UID]V, podOf func(V) (namespace, name string)) {
	p.mu.Lock()
	entries := maps.Clone(m())
	p.mu.Unlock()
	for uid, v := range entries {
		namespace, name := podOf(v)
		if _, ok := p.unbound(namespace, name, uid); !ok {
			p.mu.Lock()
			delete(m(), uid)
			p.mu.Unlock()
		}
	}
}
