package plan

import (
	"context"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
)

// place puts pod on the first open node that accepts it, else on a new node, else records
// why it cannot be planned.
func (p *packer) place(ctx context.Context, pod *v1.Pod) {
	f := p.facts(pod)
	if !f.independent {
		// Its fit can depend on every planned node: they must all stand as planned.
		p.flush(ctx)
	}
	for _, n := range p.existing {
		if p.tryAddExisting(ctx, n, f) {
			p.logger.V(5).Info("Planned pod into the free room of an existing node", "pod", klog.KObj(pod), "node", n.name)
			return
		}
	}
	for _, n := range p.launched {
		if p.tryAddLaunched(ctx, n, f) {
			p.logger.V(5).Info("Planned pod into the spare room of a launched node", "pod", klog.KObj(pod), "node", n.name, "nodeClaim", n.claim)
			return
		}
	}
	// First into the room planned nodes have as they stand, then onto one grown to a larger
	// candidate: a node grows only when no other has room.
	for _, grow := range []bool{false, true} {
		p.growing = grow
		for _, n := range p.nodes {
			if p.tryAdd(ctx, n, f) {
				p.growing = false
				p.logger.V(5).Info("Planned pod onto planned node", "pod", klog.KObj(pod), "node", n.name)
				return
			}
		}
	}
	p.growing = false
	if p.atNodeLimit() {
		p.unplanned = append(p.unplanned, &Unplanned{Pod: pod, Resolvable: true,
			Reasons: []string{fmt.Sprintf("the plan may open at most %d new node(s)", *p.in.MaxNewNodes)}})
		return
	}
	if n := p.open(ctx, f); n != nil {
		p.logger.V(5).Info("Planned pod onto new node", "pod", klog.KObj(pod), "node", n.name, "template", n.candidates[0].Key)
		return
	}
	if n := p.tryAddUncapped(ctx, f); n != nil {
		p.logger.V(4).Info("Planned pod onto a planned node grown past its most efficient size: no new node takes it",
			"pod", klog.KObj(pod), "node", n.name)
		return
	}
	if !f.anyType && p.hasExcluded {
		// Nothing nodewright buys by default serves the pod: any type may.
		f.anyType, p.anyTypes[pod] = true, true
		if n := p.open(ctx, f); n != nil {
			p.logger.V(2).Info("Planned pod onto a type bought only when nothing else serves the pod", "pod", klog.KObj(pod),
				"node", n.name, "template", n.candidates[0].Key)
			return
		}
	}
	p.unplanned = append(p.unplanned, p.explain(ctx, f))
}

// tryAddUncapped puts f's pod on the first planned node that accepts it grown past the size
// the objective chose for it (openNode.maxPrice), to a template of its group, zone and
// capacity type that holds its pods, and returns the node; nil if none does. It is for a pod
// that only a planned node can take: one whose required affinity ties it to pods there.
func (p *packer) tryAddUncapped(ctx context.Context, f *podFacts) *openNode {
	p.uncapped = true
	defer func() { p.uncapped = false }()
	for _, n := range p.nodes {
		if n.maxPrice == 0 {
			continue
		}
		capped := n.candidates
		rep := capped[0]
		for _, t := range p.sameOffering(rep) {
			if p.typeCost(t) <= n.maxPrice*MaxOptionCostFactor {
				continue
			}
			// tryAdd checks a node of pods that depend on each other on the template itself,
			// but for what every candidate was checked for as the pods joined (see mayHold).
			if n.independent && p.holdsAll(ctx, t, n.pods, n.podReqs) || !n.independent && p.mayHoldAll(t, n.pods, n.podReqs) {
				n.candidates = append(slices.Clip(n.candidates), t)
			}
		}
		if len(n.candidates) > len(capped) && p.tryAdd(ctx, n, f) {
			return n
		}
		n.candidates = capped
	}
	return nil
}

// facts returns the facts of pod as it is placed now: independence depends on the pods
// planned so far.
func (p *packer) facts(pod *v1.Pod) *podFacts {
	req := p.requests(pod)
	sig := p.signature(pod)
	sigID := p.sigID(sig)
	return &podFacts{pod: pod, sig: sig, sigID: sigID, selID: p.selID(sigID, pod, req), req: req, independent: p.sim.independent(pod), invariant: p.invariant(pod),
		domainOnly: perPod(p.domainOnlys, pod, domainOnly), apart: perPod(p.aparts, pod, apartKey), anyType: p.anyTypes[pod], milliCPU: req.Cpu().MilliValue(), memory: req.Memory().Value(), millis: millisOf(req)}
}

// maxSwitches is how many candidates past the first tryAdd checks a pod on: a node switches
// to a larger candidate a few times at most for one pod.
const maxSwitches = 3

// tryAdd puts f's pod on n if a candidate of n accepts it with n's pods: the representative,
// or else the next cheapest candidates, each checked against every pod of n.
func (p *packer) tryAdd(ctx context.Context, n *openNode, f *podFacts) bool {
	if !p.in.exhaustive && f.apart != "" && n.apart.Has(f.apart) {
		return false // the pod's own anti-affinity keeps it off a node with a pod like it
	}
	invariant := f.invariant && n.invariant
	if !p.growing && !p.uncapped {
		if !roomFor(n, f) || !p.mayHold(ctx, n.candidates[0], f, n) {
			return false // no room as it stands: the cheap checks first
		}
		// As it stands, the node's own check answers rejectedAsItStands too (see check).
		if rejected, _ := p.knownAsItStands(ctx, n, f); rejected && p.asksAsItStands(f, invariant) {
			return false
		}
	}
	// Grown, rejectedAsItStands is asked once a candidate passes the cheap checks.
	asked := !p.growing && !p.uncapped
	tried, installed := 0, false
	for i, c := range n.candidates {
		if tried > maxSwitches {
			break
		}
		if !p.growing && i > 0 && !p.uncapped {
			break // the node as it stands only
		}
		if p.growing && i == 0 {
			continue // tried as it stands already
		}
		if i > 0 && !p.uncapped && p.typeCost(c) > n.maxPrice {
			continue // larger than the node may grow
		}
		if !p.uncapped && c.InstanceType.SurplusCPUPrice > 0 && c.CostWith(cores(n.podReqs)+float64(f.milliCPU)/1000) > c.Cost() {
			continue // a burstable type that would pay for cpu above its baseline
		}
		if !p.mayHold(ctx, c, f, n) || i > 0 && !p.withinLimits(c, n.candidates[0].InstanceType.Capacity) {
			continue
		}
		if !asked {
			if asked = true; p.rejectedAsItStands(ctx, n, f, invariant) {
				return false
			}
		}
		tried++
		ok, final := p.check(ctx, n, i, c, f, invariant, &installed)
		if final {
			break
		}
		if ok {
			p.commit(ctx, n, i, c, f, invariant)
			return true
		}
	}
	if installed {
		p.install(n, n.candidates[0])
	}
	return false
}

// roomFor reports whether n as it stands has the cpu, memory and pod slot f's pod requests
// left: what most nodes fail first, decided on integers kept with the node (openNode.room).
func roomFor(n *openNode, f *podFacts) bool {
	c := n.candidates[0]
	if r := &n.room; r.of != c || r.pods != len(n.pods) {
		alloc := c.allocatable
		*r = nodeRoom{of: c, pods: len(n.pods),
			milliCPU: alloc.Cpu().MilliValue() - c.DaemonRequests.Cpu().MilliValue() - n.podReqs.Cpu().MilliValue(),
			memory:   alloc.Memory().Value() - c.DaemonRequests.Memory().Value() - n.podReqs.Memory().Value(),
			slots:    alloc.Pods().Value() - c.DaemonRequests.Pods().Value() - int64(len(n.pods))}
	}
	return n.room.milliCPU >= f.milliCPU && n.room.memory >= f.memory && n.room.slots >= 1
}

// nodeRoom is what an open node has left as its template of, with pods pods on it.
type nodeRoom struct {
	of                      *Template
	pods                    int
	milliCPU, memory, slots int64
}

// rejectedAsItStands reports whether f's pod, which depends on other pods, is turned away
// from n by what is the same on every candidate of n (see sameOnEveryCandidate): then it is
// asked once, of n as it stands, leaving resources aside.
func (p *packer) rejectedAsItStands(ctx context.Context, n *openNode, f *podFacts, invariant bool) bool {
	if !p.asksAsItStands(f, invariant) {
		return false
	}
	if rejected, known := p.knownAsItStands(ctx, n, f); known {
		return rejected
	}
	st, filtered := p.sim.CheckIgnoringResources(ctx, f.pod, n.name)
	p.noteAsItStands(n, f, st, filtered)
	return n.rejected
}

// asksAsItStands reports whether rejectedAsItStands asks for f's pod: whether the answer
// holds for every candidate.
func (p *packer) asksAsItStands(f *podFacts, invariant bool) bool {
	return !f.independent && invariant && p.sim.StateFreePreFilters()
}

// knownAsItStands returns rejectedAsItStands's answer for f's pod on n if it is known
// without a check: asked of n, or a rejection in n's domain (see domainVerdicts), at this
// generation of the snapshot.
func (p *packer) knownAsItStands(ctx context.Context, n *openNode, f *podFacts) (rejected, known bool) {
	// place asks twice, the snapshot unchanged between: as n stands, then grown.
	if n.askedFor == f.pod && n.askedAt == p.sim.Generation() {
		return n.rejected, true
	}
	p.flushNode(ctx, n)
	if d := &p.domainVerdicts; p.sharesDomain(f) && d.pod == f.pod && d.gen == p.sim.Generation() && d.rejected.Has(domainOf(n)) {
		n.askedFor, n.askedAt, n.rejected = f.pod, d.gen, true
		return true, true
	}
	return false, false
}

// noteAsItStands keeps st, the verdict on f's pod of n as it stands, as rejectedAsItStands's
// answer: with resources left aside, or st is a rejection by a plugin other than
// NodeResourcesFit. filtered says that the Filter plugins gave it, not keepsSpread.
func (p *packer) noteAsItStands(n *openNode, f *podFacts, st *fwk.Status, filtered bool) {
	n.askedFor, n.askedAt, n.rejected = f.pod, p.sim.Generation(), !st.IsSuccess() && sameOnEveryCandidate.Has(st.Plugin())
	if n.rejected && filtered && p.sharesDomain(f) {
		d := &p.domainVerdicts
		if d.pod != f.pod || d.gen != n.askedAt {
			*d = domainVerdicts{pod: f.pod, gen: n.askedAt, rejected: sets.New[nodeDomain]()}
		}
		d.rejected.Insert(domainOf(n))
	}
}

// sharesDomain reports whether the Filter plugins' verdicts on f's pod hold for every node of
// a domain (see domainVerdicts).
func (p *packer) sharesDomain(f *podFacts) bool {
	return !p.in.exhaustive && f.domainOnly && p.sim.filteredByDomain(f.pod)
}

// domainOf returns n's nodeDomain.
func domainOf(n *openNode) nodeDomain {
	c := n.candidates[0]
	return nodeDomain{c.Provisioner.Name, c.Offering.Zone, c.Offering.CapacityType}
}

// nodeDomain is what the nodes of one Provisioner, zone and capacity type share: their
// values of domainKeys.
type nodeDomain struct{ provisioner, zone, capacityType string }

// domainVerdicts remembers the domains whose nodes the Filter plugins of
// sameOnEveryCandidate turn one pod away from, at one generation of the snapshot: for a pod
// filteredByDomain they judge every node of a domain alike, so a pod that a spread or
// affinity over zones keeps out of a zone is asked once there, not once per planned node of
// the zone. On another node of the domain, the node's own check would give that rejection,
// or one by a plugin that runs before it.
type domainVerdicts struct {
	pod      *v1.Pod
	gen      uint64
	rejected sets.Set[nodeDomain]
}

// mayHold reports whether a node of t may hold f's pod next to the pods of n (nil: none): it
// is a type the packer buys for the pod, passes the prescreen and, when the pod is
// independent, fits t empty. For an independent pod on a node of independent pods that is
// exact.
func (p *packer) mayHold(ctx context.Context, t *Template, f *podFacts, n *openNode) bool {
	return p.excludedFor(t, f) == "" && p.passes(t, f, n) && (!f.independent || p.sim.CheckEmpty(ctx, f.pod, f.sig, t).IsSuccess())
}

// check reports whether n as its i-th candidate c accepts f's pod with n's pods, and, when
// it does not, whether no other candidate will (final). installed is set when it left n
// installed as c in the snapshot.
func (p *packer) check(ctx context.Context, n *openNode, i int, c *Template, f *podFacts, invariant bool, installed *bool) (ok, final bool) {
	if f.independent && n.independent {
		// The prescreen (every pod of the node passed it on every kept candidate, and the
		// requests add up) and the verdict on the empty template are exact: the node is
		// installed in the snapshot as c only when another check needs it (flush).
		n.stale = n.stale || i > 0
		return true, false
	}
	p.flushNode(ctx, n)
	var st *fwk.Status
	switch {
	case i == 0:
		var filtered bool
		st, filtered = p.sim.CheckFiltered(ctx, f.pod, n.name)
		if !st.IsSuccess() && p.asksAsItStands(f, invariant) {
			p.noteAsItStands(n, f, st, filtered)
		}
	case p.sim.StateFreePreFilters() && invariant && p.selects(n.candidates[0], f):
		// n as c differs from n as its representative only in what the prescreen checked:
		// the PreFilter state over the snapshot as it is holds for n as c, so c is judged
		// outside the snapshot, and installed only if it takes the pod.
		st = p.sim.CheckOn(ctx, f.pod, p.sim.NodeAs(c, n.name, n.pods))
		if st.IsSuccess() {
			p.install(n, c)
		}
	default:
		p.install(n, c)
		*installed = true
		if !n.invariant && !p.acceptsAll(ctx, n) {
			return false, false
		}
		st = p.sim.Check(ctx, f.pod, n.name)
	}
	if st.IsSuccess() {
		return true, false
	}
	// What turned the pod away may be the same on every candidate of n.
	return false, invariant && sameOnEveryCandidate.Has(st.Plugin())
}

// commit puts f's pod on n as its i-th candidate c, which accepts it, and keeps the
// candidates after c that still may hold it.
func (p *packer) commit(ctx context.Context, n *openNode, i int, c *Template, f *podFacts, invariant bool) {
	if i > 0 {
		p.release(n.candidates[0])
		p.reserve(c)
	}
	keep := []*Template{c}
	for _, o := range n.candidates[i+1:] {
		if p.mayHold(ctx, o, f, n) {
			keep = append(keep, o)
		}
	}
	n.candidates = keep
	n.pods = append(n.pods, f.pod)
	n.addApart(f)
	n.request(f.req)
	n.independent = n.independent && f.independent
	n.invariant = invariant
	_ = p.sim.Place(f.pod, n.name)
}

// tryAddLaunched puts f's pod on launched node n if its Filter plugins accept it there, with
// the pods reserved on it and those planned there now. Only movable pods go into such room:
// a pod reserved on a claim skips the wait of pods that interact with pods still pending on
// other claims (the plugin's reservedConflict), and the pods reserved earlier were planned
// without it, so it must neither constrain nor be constrained by another pod.
func (p *packer) tryAddLaunched(ctx context.Context, n *openNode, f *podFacts) bool {
	if !p.sim.movable(f.pod) || !p.passes(n.candidates[0], f, n) || !p.sim.Check(ctx, f.pod, n.name).IsSuccess() {
		return false
	}
	n.pods = append(n.pods, f.pod)
	n.request(f.req)
	_ = p.sim.Place(f.pod, n.name)
	return true
}

// sameOnEveryCandidate are the Filter plugins whose verdict on a node does not change when
// it switches between candidates, for pods whose inter-pod constraints name only
// invariantKeys (see invariantOnly): a Provisioner's templates share taints, and those
// topologies do not depend on the instance type.
var sameOnEveryCandidate = sets.New(names.InterPodAffinity, names.PodTopologySpread, names.TaintToleration)

// flushNode installs n as its representative if a fast placement left the snapshot behind.
func (p *packer) flushNode(_ context.Context, n *openNode) {
	if n.stale {
		p.install(n, n.candidates[0])
	}
}

// flush installs every node a fast placement left behind.
func (p *packer) flush(ctx context.Context) {
	for _, n := range p.nodes {
		p.flushNode(ctx, n)
	}
}

// install makes t the node n stands for in the snapshot, with n's pods.
func (p *packer) install(n *openNode, t *Template) {
	n.stale = false
	p.sim.Install(n.name, t, n.pods)
}

// acceptsAll checks every pod of n on n as installed, each with the others in place.
func (p *packer) acceptsAll(ctx context.Context, n *openNode) bool {
	for _, q := range n.pods {
		if !p.sim.CheckPlaced(ctx, p.logger, q, n.name).IsSuccess() {
			return false
		}
	}
	return true
}

func (p *packer) reserve(t *Template) { addTo(p.used[t.Provisioner.Name], t.InstanceType.Capacity) }

func (p *packer) release(t *Template) {
	used := p.used[t.Provisioner.Name]
	for name, q := range t.InstanceType.Capacity {
		u := used[name]
		u.Sub(q)
		used[name] = u
	}
}
