package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SpreadGate says when a pod reserved on a NodeClaim, whose node has registered, may go to
// the scheduler without a hard topology spread turning it away (see SpreadCounts). It
// counts, in each domain of each constraint, the pods placed (the scheduler assumed or bound
// them) and the pods let go and not placed yet. A pod may go when, for each of its
// constraints, the pods placed and let go in its domain, plus one, exceed the fewest placed
// in a domain by at most maxSkew: however the scheduler orders the pods let go, it counts no
// more in the pod's domain, and no fewer anywhere. The same holds both ways: a pod a
// constraint counts goes into a domain where pods of that constraint were let go only if
// they still fit the rule with it there, whether it has spread constraints of its own or
// not. A SpreadGate is not safe for concurrent use.
type SpreadGate struct {
	constraints map[string]*gateConstraint
	pods        map[types.UID]*gatePod
	// waits counts the pods that started waiting.
	waits uint64
	// placements are the pods PlacedOn since Mark, while marked: the cluster a plan read may
	// or may not show them, so Add counts them again.
	placements []gatePlacement
	marked     bool
}

type gatePlacement struct {
	pod  *v1.Pod
	node *v1.Node
}

// Mark notes that a plan is about to read the cluster: the pods placed from now on are
// counted by the constraints its Add renews, which may not count them otherwise (a pod may
// be counted twice, which only lets a pod go the scheduler then turns away, as without the
// gate).
func (g *SpreadGate) Mark() {
	g.placements, g.marked = g.placements[:0], true
}

type gateConstraint struct {
	// count says where a pod the gate does not know counts.
	count spreadCount
	// maxSkew is the smallest maxSkew of the pods whose constraint this is.
	maxSkew     int
	placed, let map[string]int
	// needing are, by domain, the pods let go there and not placed whose own constraint
	// this is.
	needing map[string]int
	// min is the fewest pods placed in a domain, if fresh.
	min   int
	fresh bool
	// waiting are the pods that wait for this constraint's counts to let them go.
	waiting map[types.UID]bool
}

type gatePod struct {
	needs   []SpreadNeed
	counted []SpreadDomain
	state   gateState
	// since orders the waiting pods: the first to wait goes first.
	since uint64
}

type gateState int

const (
	// gatePending: its node has not registered.
	gatePending gateState = iota
	// gateWaiting: its node has registered; its spread keeps it back.
	gateWaiting
	// gateLet: let go to the scheduler, not placed yet.
	gateLet
	// gatePlaced: assumed on its node by the scheduler.
	gatePlaced
)

// NewSpreadGate returns an empty gate.
func NewSpreadGate() *SpreadGate {
	return &SpreadGate{constraints: map[string]*gateConstraint{}, pods: map[types.UID]*gatePod{}}
}

// Add takes in the counts of a new plan: the constraints it names start again from the pods
// bound as it saw them, plus the pods the gate knows placed or let go; the pods it names
// count where it says. Constraints no pod needs any more are forgotten. It ends what Mark
// began, c nil (a plan with no spread, or none) too.
func (g *SpreadGate) Add(c *SpreadCounts) {
	defer func() { g.placements, g.marked = nil, false }()
	if c == nil {
		return
	}
	for uid, needs := range c.Needs {
		g.pod(uid).needs = needs
	}
	// The renewed constraints count again the pods the plan saw reserved, as it says.
	for uid, p := range g.pods {
		kept := p.counted[:0:0]
		for _, sd := range p.counted {
			if _, renewed := c.Bound[sd.Constraint]; !renewed {
				kept = append(kept, sd)
			}
		}
		p.counted = append(kept, c.Counted[uid]...)
	}
	for uid, counted := range c.Counted {
		if _, known := g.pods[uid]; !known {
			g.pod(uid).counted = counted
		}
	}
	old := map[string]map[string]int{}
	for key, bound := range c.Bound {
		if k := g.constraints[key]; k != nil {
			old[key] = k.placed
		}
		g.constraints[key] = &gateConstraint{count: c.counters[key], placed: maps.Clone(bound), let: map[string]int{}, needing: map[string]int{}, waiting: map[types.UID]bool{}}
	}
	for _, needs := range c.Needs {
		for _, n := range needs {
			if k := g.constraints[n.Constraint]; k.maxSkew == 0 || n.MaxSkew < k.maxSkew {
				k.maxSkew = n.MaxSkew
			}
		}
	}
	used := map[string]bool{}
	for uid, p := range g.pods {
		for _, sd := range p.counted {
			if _, renewed := c.Bound[sd.Constraint]; !renewed {
				continue
			}
			k := g.constraints[sd.Constraint]
			switch p.state {
			case gatePlaced:
				k.placed[sd.Domain]++
			case gateLet:
				k.let[sd.Domain]++
			}
		}
		for _, n := range p.needs {
			used[n.Constraint] = true
			if _, renewed := c.Bound[n.Constraint]; renewed && p.state == gateLet {
				g.constraints[n.Constraint].needing[n.Domain]++
			}
		}
		if p.state == gateWaiting {
			g.wait(uid, p)
		}
	}
	for _, pl := range g.placements {
		if _, reserved := c.Counted[pl.pod.UID]; reserved {
			continue
		}
		for key := range c.Bound {
			if k := g.constraints[key]; k.count != nil {
				if d, ok := k.count(pl.pod, pl.node); ok {
					k.placed[d]++
				}
			}
		}
	}
	// A renewed constraint counts no fewer pods anywhere than it did: a pod bound on a node
	// the plan's listing did not have yet, say, is in neither. Only a pod that went counts
	// too many, which lets a pod go that the scheduler then turns away, as without the gate.
	for key, placed := range old {
		k := g.constraints[key]
		for d, n := range placed {
			if n > k.placed[d] {
				k.placed[d] = n
				k.fresh = false
			}
		}
	}
	for key := range g.constraints {
		if !used[key] {
			delete(g.constraints, key)
		}
	}
}

func (g *SpreadGate) pod(uid types.UID) *gatePod {
	p := g.pods[uid]
	if p == nil {
		p = &gatePod{}
		g.pods[uid] = p
	}
	return p
}

// Ready notes that the node of the pod with uid has registered, and reports whether the pod
// may go now; if not, it waits until Placed, Bound or Gone let it go.
func (g *SpreadGate) Ready(uid types.UID) bool {
	p := g.pods[uid]
	if p == nil {
		return true
	}
	if p.state != gatePending {
		return p.state != gateWaiting
	}
	if g.allows(p) {
		g.let(p)
		return true
	}
	p.state = gateWaiting
	g.waits++
	p.since = g.waits
	g.wait(uid, p)
	return false
}

// wait puts p, with uid, on the waiting sets of the constraints it needs or is counted by.
func (g *SpreadGate) wait(uid types.UID, p *gatePod) {
	for _, sd := range p.domains() {
		if k := g.constraints[sd.Constraint]; k != nil {
			k.waiting[uid] = true
		}
	}
}

// domains returns the constraints p needs and those that count it, with p's domains.
func (p *gatePod) domains() []SpreadDomain {
	out := slices.Clone(p.counted)
	for _, n := range p.needs {
		out = append(out, n.SpreadDomain)
	}
	return out
}

// Waiting reports whether the pod with uid waits for its spread to let it go.
func (g *SpreadGate) Waiting(uid types.UID) bool {
	p := g.pods[uid]
	return p != nil && p.state == gateWaiting
}

// Let lets the pod with uid go whatever its spread says (it waited too long), and counts it.
func (g *SpreadGate) Let(uid types.UID) {
	if p := g.pods[uid]; p != nil && p.state < gateLet {
		g.unwait(uid, p)
		g.let(p)
	}
}

// Placed counts the pod with uid where the plan put it, as the scheduler assumed it there,
// and returns the waiting pods that may go now, counted as let go.
func (g *SpreadGate) Placed(uid types.UID) []types.UID {
	p := g.pods[uid]
	if p == nil || p.state == gatePlaced {
		return nil
	}
	return g.place(uid, p, nil, nil)
}

// PlacedOn is Placed for pod on node (nil if not known), where it counts whatever the plan
// said: the scheduler may have placed it elsewhere (a pod left to it, or not reserved in the
// end), and a pod the gate does not know (one no plan reserved, placed into room the
// scheduler found) counts too, where the constraints the gate knows say.
func (g *SpreadGate) PlacedOn(pod *v1.Pod, node *v1.Node) []types.UID {
	p := g.pods[pod.UID]
	if p != nil && p.state == gatePlaced {
		return nil
	}
	if g.marked && node != nil {
		g.placements = append(g.placements, gatePlacement{pod, node})
	}
	if p == nil {
		if node == nil {
			return nil
		}
		p = &gatePod{}
	}
	return g.place(pod.UID, p, pod, node)
}

// place counts p, the pod with uid, as placed: on node, if not nil, where each constraint
// with a counter counts pod there. It returns the waiting pods that may go now.
func (g *SpreadGate) place(uid types.UID, p *gatePod, pod *v1.Pod, node *v1.Node) []types.UID {
	g.unwait(uid, p)
	g.add(p, -1)
	freed := slices.Clone(p.counted)
	if node != nil {
		var counted []SpreadDomain
		for key, k := range g.constraints {
			if k.count == nil {
				continue
			}
			if d, ok := k.count(pod, node); ok {
				counted = append(counted, SpreadDomain{key, d})
			}
		}
		p.counted = counted
	}
	if len(p.counted) == 0 && len(p.needs) == 0 {
		delete(g.pods, uid)
		return g.release(freed)
	}
	g.pods[uid] = p
	p.state = gatePlaced
	g.add(p, 1)
	return g.release(append(freed, p.counted...))
}

// Unplaced takes back a Placed whose cycle failed after all: the pod counts as let go.
func (g *SpreadGate) Unplaced(uid types.UID) {
	if p := g.pods[uid]; p != nil && p.state == gatePlaced {
		g.add(p, -1)
		p.state = gateLet
		g.add(p, 1)
	}
}

// Bound forgets the pod with uid, which bound: it stays counted where it was placed (if it
// was not, it counts now). It returns the waiting pods that may go now.
func (g *SpreadGate) Bound(uid types.UID) []types.UID {
	freed := g.Placed(uid)
	delete(g.pods, uid)
	return freed
}

// Gone forgets the pod with uid, deleted or no longer reserved, and uncounts it. It returns
// the waiting pods that may go now.
func (g *SpreadGate) Gone(uid types.UID) []types.UID {
	p := g.pods[uid]
	if p == nil {
		return nil
	}
	g.unwait(uid, p)
	g.add(p, -1)
	delete(g.pods, uid)
	return g.release(p.counted)
}

// allows reports whether the spread lets p go now.
func (g *SpreadGate) allows(p *gatePod) bool {
	_, _, _, _, blocked := g.blocker(p)
	return !blocked
}

// blocker returns what keeps p back, if anything: a domain of one of its own constraints
// where one more pod breaks the rule, or of a constraint that counts it where pods it is the
// constraint of were let go (theirs), with the maxSkew it was judged by.
func (g *SpreadGate) blocker(p *gatePod) (sd SpreadDomain, k *gateConstraint, maxSkew int, theirs, blocked bool) {
	for _, n := range p.needs {
		if k := g.constraints[n.Constraint]; k != nil && !k.fits(n.Domain, n.MaxSkew) {
			return n.SpreadDomain, k, n.MaxSkew, false, true
		}
	}
	for _, sd := range p.counted {
		if k := g.constraints[sd.Constraint]; k != nil && k.needing[sd.Domain] > 0 && !k.fits(sd.Domain, k.maxSkew) {
			return sd, k, k.maxSkew, true, true
		}
	}
	return SpreadDomain{}, nil, 0, false, false
}

// Why says what keeps the pod with uid waiting: a domain of one of its constraints, or of one
// that counts it, with its counts; "" if nothing does.
func (g *SpreadGate) Why(uid types.UID) string {
	p := g.pods[uid]
	if p == nil {
		return ""
	}
	sd, k, maxSkew, theirs, blocked := g.blocker(p)
	if !blocked {
		return ""
	}
	fewest, at := k.fewest(), ""
	for d, n := range k.placed {
		if n == fewest && (at == "" || d < at) {
			at = d
		}
	}
	why := fmt.Sprintf("%d pod(s) placed and %d let go in %s, %d in %s, maxSkew %d", k.placed[sd.Domain], k.let[sd.Domain], sd.Domain, fewest, at, maxSkew)
	if theirs {
		return "counted by another pod's spread: " + why
	}
	return why
}

// fits reports whether one more pod let go in domain d keeps k's rule with maxSkew.
func (k *gateConstraint) fits(d string, maxSkew int) bool {
	return k.placed[d]+k.let[d]+1-k.fewest() <= maxSkew
}

// fewest returns the fewest pods placed in a domain of k.
func (k *gateConstraint) fewest() int {
	if !k.fresh {
		first := true
		for _, n := range k.placed {
			if first || n < k.min {
				k.min, first = n, false
			}
		}
		k.fresh = true
	}
	return k.min
}

// let counts p as let go.
func (g *SpreadGate) let(p *gatePod) {
	p.state = gateLet
	g.add(p, 1)
}

// add adds delta to the counts p's state counts it in.
func (g *SpreadGate) add(p *gatePod, delta int) {
	for _, sd := range p.counted {
		k := g.constraints[sd.Constraint]
		if k == nil {
			continue
		}
		switch p.state {
		case gatePlaced:
			k.placed[sd.Domain] += delta
			k.fresh = false
		case gateLet:
			k.let[sd.Domain] += delta
		}
	}
	if p.state != gateLet {
		return
	}
	for _, n := range p.needs {
		if k := g.constraints[n.Constraint]; k != nil {
			k.needing[n.Domain] += delta
		}
	}
}

// unwait takes p, with uid, off the constraints' waiting sets.
func (g *SpreadGate) unwait(uid types.UID, p *gatePod) {
	if p.state != gateWaiting {
		return
	}
	for _, sd := range p.domains() {
		if k := g.constraints[sd.Constraint]; k != nil {
			delete(k.waiting, uid)
		}
	}
}

// release lets go the pods waiting on the constraints of counted that may go now.
func (g *SpreadGate) release(counted []SpreadDomain) []types.UID {
	var waiting []types.UID
	for _, sd := range counted {
		if k := g.constraints[sd.Constraint]; k != nil {
			for uid := range k.waiting {
				waiting = append(waiting, uid)
			}
		}
	}
	slices.SortFunc(waiting, func(a, b types.UID) int { return cmp.Compare(g.pods[a].since, g.pods[b].since) })
	var freed []types.UID
	for _, uid := range slices.Compact(waiting) {
		if p := g.pods[uid]; p.state == gateWaiting && g.allows(p) {
			g.unwait(uid, p)
			g.let(p)
			freed = append(freed, uid)
		}
	}
	return freed
}
