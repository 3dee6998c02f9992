package provision

import (
	"maps"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/plan"
)

// conflicts find, for PreFilter, the pods whose placement and a pending reserved pod's
// constrain each other (reservedConflict, earlierConflict), with the pods' constraint terms
// cached.
type conflicts struct {
	*deps
	reserved *reservations
	// order is which claim write reserved each pod (see earlierConflict).
	order *writeOrder
	// hardDefaultSpread is plan.HardDefaultSpread of the profile's plugin args.
	hardDefaultSpread bool
	mu                sync.Mutex
	// terms caches plan.TermsOf by pod UID (see prune).
	terms map[types.UID]cachedTerms
}

func newConflicts(d *deps, reserved *reservations, order *writeOrder, hardDefaultSpread bool) *conflicts {
	return &conflicts{deps: d, reserved: reserved, order: order, hardDefaultSpread: hardDefaultSpread, terms: map[types.UID]cachedTerms{}}
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
func (c *conflicts) reservedConflict(pod *v1.Pod) *v1.Pod {
	return c.pendingConflict(pod, nil, func(*v1.Pod) bool { return true })
}

// earlierConflict returns, for pod reserved on a NodeClaim, a pod reserved by an earlier
// claim write (see writeOrder), still pending, whose placement and pod's constrain each
// other, or nil. pod's round planned it with that pod where it will run, but did not check
// that pod's own constraints with pod beside it: topology spread counts only the pods bound
// when a pod is placed, so if pod bound first, the earlier pod could find its own node
// breaking its spread, and be stranded (seen in CI: a pod spreading over zones, reserved in
// one round, and a pod it selects, reserved by the next round on another node in its zone,
// which bound first). Such a pod waits for the earlier one to bind (or be released); pods
// reserved by one write were checked with each other, and those of the first pending write
// wait for none, so waiting always ends.
func (c *conflicts) earlierConflict(pod *v1.Pod) *v1.Pod {
	mine := c.order.of(pod.UID)
	if mine == 0 {
		return nil
	}
	// Claims written by this write or later hold no pod of an earlier one (pods added to
	// their spare room later are later still), and need not be looked into.
	earlier := func(claim string) bool { return c.order.ofClaim(claim) < mine }
	return c.pendingConflict(pod, earlier, func(r *v1.Pod) bool { return c.order.of(r.UID) < mine })
}

// pendingConflict returns a pod reserved on a NodeClaim and still pending, other than pod,
// for which consider is true and whose placement and pod's constrain each other, or nil. It
// looks only into the claims inClaim accepts (all if nil).
func (c *conflicts) pendingConflict(pod *v1.Pod, inClaim func(string) bool, consider func(*v1.Pod) bool) *v1.Pod {
	var mine plan.Terms
	computed := false
	for _, pending := range c.reserved.awaitedClaimsOf(inClaim) {
		for _, r := range pending {
			if r.UID == pod.UID || !consider(r) {
				continue
			}
			if !computed {
				mine, computed = c.termsOf(pod), true
			}
			if mine.Selects(r) || c.termsOf(r).Selects(pod) || c.defaultSpreadTogether(pod, r) {
				return r
			}
		}
	}
	return nil
}

// interact reports whether the placements of a and b constrain each other: one selects the
// other in a topology spread constraint or a required inter-pod (anti-)affinity term, or the
// profile's default spread constraints filter and apply to both.
func (c *conflicts) interact(a, b *v1.Pod) bool {
	return c.termsOf(a).Selects(b) || c.termsOf(b).Selects(a) || c.defaultSpreadTogether(a, b)
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
	c.mu.Lock()
	cached, ok := c.terms[pod.UID]
	c.mu.Unlock()
	if ok {
		return cached.terms
	}
	ts := plan.TermsOf(pod)
	c.mu.Lock()
	c.terms[pod.UID] = cachedTerms{pod.Namespace, pod.Name, ts}
	c.mu.Unlock()
	return ts
}

// prune forgets the terms and write order of pods that are no longer pending.
func (c *conflicts) prune() {
	pruneNotPending(c.deps, &c.mu, c.terms, func(t cachedTerms) (string, string) { return t.namespace, t.name })
	pruneNotPending(c.deps, &c.order.mu, c.order.writes, func(w podWrite) (string, string) { return w.namespace, w.name })
	c.order.mu.Lock()
	defer c.order.mu.Unlock()
	for name := range c.order.claims {
		if _, ok := c.ledger.Claim(name); !ok {
			delete(c.order.claims, name)
		}
	}
}

// writeOrder numbers the claim writes of the plugin's rounds (writeClaims, addToClaims: each
// a call with the result of one plan, made after the plan) and remembers which write
// reserved each pod still pending, and which created each claim. Plans run one at a time, so
// a plan saw as pending reserved pods (withClaims) only those of writes numbered below its
// own. Pods and claims whose write is not known (before the scheduler started, or a claim
// the informer showed before its write recorded it) are numbered 0.
type writeOrder struct {
	mu   sync.Mutex
	last uint64
	// writes are, by pod UID, the write that reserved the pod.
	writes map[types.UID]podWrite
	// claims are, by name, the write that created the claim.
	claims map[string]uint64
}

type podWrite struct {
	namespace, name string
	write           uint64
}

func newWriteOrder() *writeOrder {
	return &writeOrder{writes: map[types.UID]podWrite{}, claims: map[string]uint64{}}
}

// next returns the number of a new write.
func (o *writeOrder) next() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last++
	return o.last
}

// note records that write n reserves pods; it is called before their reservations are
// recorded, so that PreFilter never sees them reserved and unnumbered.
func (o *writeOrder) note(pods []*v1.Pod, n uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, pod := range pods {
		o.writes[pod.UID] = podWrite{pod.Namespace, pod.Name, n}
	}
}

// forget drops pods whose write failed.
func (o *writeOrder) forget(pods []*v1.Pod) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, pod := range pods {
		delete(o.writes, pod.UID)
	}
}

// noteClaim records that write n created the claim named name.
func (o *writeOrder) noteClaim(name string, n uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.claims[name] = n
}

// ofClaim returns the number of the write that created the claim named name, 0 if unknown.
func (o *writeOrder) ofClaim(name string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.claims[name]
}

// of returns the number of the write that reserved the pod with uid, 0 if unknown.
func (o *writeOrder) of(uid types.UID) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writes[uid].write
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
