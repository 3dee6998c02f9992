package provision

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// reservedConflict returns a pod reserved on a NodeClaim, still pending, whose placement
// pod's could upset, or nil: one selects the other in a topology spread constraint or a
// required inter-pod (anti)-affinity term. Such a pod waits until the reserved pods are
// bound (or released), and the next round plans it meanwhile, with them where they will
// run. The scheduler counts reserved pods nowhere until they bind: a pod a round left to the
// next one, bound first into a zone the plan had not given it, left a reserved pod of its
// spread over zones unable to fit on its own node until ReservationGrace ran out.
func (p *Provision) reservedConflict(pod *v1.Pod) *v1.Pod {
	var mine podSelectors
	computed := false
	for _, nc := range p.ledger.Claims() {
		if p.ledger.isSettled(nc.Name) {
			continue
		}
		for _, r := range p.reservedOn(nc.Name, p.pendingOf(nc.Spec.Pods)) {
			if r.UID == pod.UID {
				continue
			}
			if !computed {
				mine, computed = p.selectorsOf(pod), true
			}
			if mine.selects(r) || p.selectorsOf(r).selects(pod) {
				return r
			}
		}
	}
	return nil
}

// podSelectors are the terms of a pod's topology spread constraints and required inter-pod
// (anti-)affinity, as selectors of other pods.
type podSelectors []fwk.AffinityTerm

// selects reports whether one of the terms selects other, by namespace and labels. A term
// that selects namespaces by label counts as selecting every namespace.
func (s podSelectors) selects(other *v1.Pod) bool {
	set := labels.Set(other.Labels)
	for _, t := range s {
		inNamespace := t.Namespaces.Has(other.Namespace)
		if !inNamespace && t.NamespaceSelector != nil {
			_, selectable := t.NamespaceSelector.Requirements()
			inNamespace = selectable
		}
		if inNamespace && t.Selector != nil && t.Selector.Matches(set) {
			return true
		}
	}
	return false
}

// newPodSelectors returns pod's podSelectors.
func newPodSelectors(pod *v1.Pod) podSelectors {
	var out podSelectors
	if info, err := framework.NewPodInfo(pod); err == nil {
		out = append(out, info.RequiredAffinityTerms...)
		out = append(out, info.RequiredAntiAffinityTerms...)
	}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			continue
		}
		out = append(out, fwk.AffinityTerm{Namespaces: sets.New(pod.Namespace), Selector: sel, TopologyKey: c.TopologyKey,
			NamespaceSelector: labels.Nothing()})
	}
	return out
}

// cachedSelectors are a pod's podSelectors, with its name for pruneSelectors.
type cachedSelectors struct {
	namespace, name string
	selectors       podSelectors
}

// selectorsOf returns pod's podSelectors, computed once per pod UID (see pruneSelectors).
func (p *Provision) selectorsOf(pod *v1.Pod) podSelectors {
	p.mu.Lock()
	c, ok := p.selectors[pod.UID]
	p.mu.Unlock()
	if ok {
		return c.selectors
	}
	s := newPodSelectors(pod)
	p.mu.Lock()
	if p.selectors == nil {
		p.selectors = map[types.UID]cachedSelectors{}
	}
	p.selectors[pod.UID] = cachedSelectors{pod.Namespace, pod.Name, s}
	p.mu.Unlock()
	return s
}

// pruneSelectors forgets the selectors of pods that are no longer pending.
func (p *Provision) pruneSelectors() {
	p.mu.Lock()
	entries := make(map[types.UID]cachedSelectors, len(p.selectors))
	for uid, c := range p.selectors {
		entries[uid] = c
	}
	p.mu.Unlock()
	for uid, c := range entries {
		if _, ok := p.unbound(c.namespace, c.name, uid); !ok {
			p.mu.Lock()
			delete(p.selectors, uid)
			p.mu.Unlock()
		}
	}
}
