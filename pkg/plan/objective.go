package plan

import (
	"cmp"
	"math"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/plan/lp"
)

// The objective of a plan: the least hourly cost of the new nodes, each node's cost its
// offering's price plus its per-node cost (Template.NodeCost), with every pod placed where
// the scheduler's filters accept it. Packing pods is NP-hard; the packer gets close to that
// least cost by choosing, when it opens a node, how large the node may grow: the size at
// which it serves the pending pods most efficiently.
//
// What serving a pod is worth is priced by the LP relaxation of the problem (see
// shadowPrices): y_cpu per core, y_mem per GiB and y_pods per pod, the duals of
//
//	min Σ_t x_t · cost_t   subject to   Σ_t x_t · usable_t ≥ demand,  x ≥ 0
//
// over the Provisioner's types, where usable_t is a node's allocatable less its DaemonSet
// pods' requests and demand the pending pods' requests and count. By duality y · usable_t ≤
// cost_t for every type, with equality for the types of the fractional optimum. A node of
// type t that takes a set F of pods is worth Σ_{pod∈F} y · req(pod), and its efficiency is
// that over cost_t: at most 1, and 1 only for a type of the optimum, filled.
//
// F is the fill t can take from the queue: the pod that opens the node, then the pods still
// to be placed, in the packer's order, each that fits what is left of usable_t and whose
// node selection t meets (see fill). Judging a type by its fill, not by the one pod that opens
// it, is what keeps five 1-CPU pods on one right-sized node (one pod never pays for a size
// step) and a thousand on a few efficient ones, not on the one machine that holds them all.
//
// The node may grow to the largest type whose efficiency is within growthTolerance of the
// best: fewer, larger nodes cost at most that much more than the most efficient ones, and
// each node costs something of its own (its per-node cost, a kubelet, DaemonSet pods).
const growthTolerance = 0.05

// queueGroup is the pods still to be placed that are alike for a fill: the same requests
// and the same node selection (see queueKey).
type queueGroup struct {
	// rep is one of the pods; left how many are still to be placed.
	rep  *v1.Pod
	left int
	// cpu and mem are a pod's requests in cores and GiB.
	cpu, mem float64
	// sel is rep's podFacts as far as labelsPass reads them: its requests and node selection.
	sel *podFacts
}

// queue is the pods still to be placed, grouped, in the packer's order of their first pod.
type queue struct {
	groups []*queueGroup
	byPod  map[*v1.Pod]*queueGroup
}

// newQueue groups pods, in order, by queueKey.
func (p *packer) newQueue(pods []*v1.Pod) *queue {
	q := &queue{byPod: make(map[*v1.Pod]*queueGroup, len(pods))}
	byKey := map[string]*queueGroup{}
	for _, pod := range pods {
		key := queueKey(pod)
		g := byKey[key]
		if g == nil {
			r := p.requests(pod)
			g = &queueGroup{rep: pod, cpu: cores(r), mem: gib(r),
				sel: &podFacts{pod: pod, req: r, selID: p.selID(p.sigID(p.signature(pod)), pod, r)}}
			byKey[key] = g
			q.groups = append(q.groups, g)
		}
		g.left++
		q.byPod[pod] = g
	}
	return q
}

// take removes pod from the queue: it is being placed.
func (q *queue) take(pod *v1.Pod) {
	if g := q.byPod[pod]; g != nil {
		g.left--
		delete(q.byPod, pod)
	}
}

// queueKey is what makes pods alike for a fill: their requests and node selection.
func queueKey(pod *v1.Pod) string {
	return PodSignature(&v1.Pod{Spec: v1.PodSpec{Containers: pod.Spec.Containers, InitContainers: pod.Spec.InitContainers,
		Overhead: pod.Spec.Overhead, NodeSelector: pod.Spec.NodeSelector, Affinity: nodeAffinityOnly(pod.Spec.Affinity),
		Tolerations: pod.Spec.Tolerations}})
}

// nodeAffinityOnly returns a's node affinity alone.
func nodeAffinityOnly(a *v1.Affinity) *v1.Affinity {
	if a == nil || a.NodeAffinity == nil {
		return nil
	}
	return &v1.Affinity{NodeAffinity: a.NodeAffinity}
}

// shape is a part of the LP relaxation's optimum: its nodes' memory per core (GiB), and the
// cores of the demand they cover.
type shape struct{ ratio, cores float64 }

// shadowPrices returns the duals of the LP relaxation of the pending pods on the types of
// templates (see the objective above) that are bought for pods that ask for nothing special
// (see NotForPlainPods; the Provisioner may name architectures), and the shapes of its
// optimum, fewest GiB per core first; false when the program has no solution (no such type).
func (p *packer) shadowPrices(templates []*Template) ([3]float64, []shape, bool) {
	demand := []float64{0, 0, 0}
	for _, pod := range p.in.Pods {
		r := p.requests(pod)
		demand[0] += cores(r)
		demand[1] += gib(r)
		demand[2]++
	}
	seen := map[string]bool{}
	var costs []float64
	var cols [][]float64
	for _, t := range templates {
		// Cheapest first: the first template of a type is its cheapest offering.
		if seen[t.InstanceType.Name] || t.excluded != "" && !t.named || hasAccelerator(t) ||
			t.labelValue(v1.LabelArchStable) != DefaultArchitecture && !requiresLabel(t.Provisioner, v1.LabelArchStable) {
			continue
		}
		seen[t.InstanceType.Name] = true
		u := usable(t)
		if u[0] <= 0 || u[1] <= 0 || u[2] <= 0 {
			continue
		}
		costs = append(costs, t.CostWith(u[0]))
		cols = append(cols, u[:])
	}
	sol, err := lp.Minimize(costs, cols, demand)
	if err != nil {
		return [3]float64{}, nil, false
	}
	var shapes []shape
	for j, x := range sol.X {
		if x > 0 && cols[j][0] > 0 {
			shapes = append(shapes, shape{cols[j][1] / cols[j][0], x * cols[j][0]})
		}
	}
	slices.SortFunc(shapes, func(a, b shape) int { return cmp.Compare(a.ratio, b.ratio) })
	return [3]float64(sol.Duals), shapes, true
}

// usable is what a node of t has for pods: cores, GiB and pods, its allocatable less its
// DaemonSet pods' requests.
func usable(t *Template) [3]float64 {
	alloc := t.allocatable
	return [3]float64{cores(alloc) - cores(t.DaemonRequests), gib(alloc) - gib(t.DaemonRequests),
		float64(alloc.Pods().Value() - t.DaemonRequests.Pods().Value())}
}

// maxPrice returns the cost (typeCost) of the largest type new node n, opened for f's pod,
// may grow to (see the objective above): the largest candidate within growthTolerance of the most
// efficient, or, when a single candidate holds all that is left of the queue and costs at
// most growthTolerance more than the fleet the most efficient choices would make of it, the
// cheapest such candidate. It returns +Inf when the Provisioner has no shadow prices.
func (p *packer) maxPrice(n *openNode, f *podFacts) float64 {
	y, ok := p.prices[n.candidates[0].Provisioner.Name]
	if !ok {
		return math.Inf(1)
	}
	// One template of each instance type: a type's fill and cost do not depend on which.
	s := &p.scratch
	s.types = s.types[:0]
	clear(s.seen)
	for _, t := range n.candidates {
		if !s.seen[t.InstanceType.Name] {
			s.seen[t.InstanceType.Name] = true
			s.types = append(s.types, p.fillInfo(t))
		}
	}
	types := s.types
	s.left = s.left[:0]
	for _, g := range p.queue.groups {
		s.left = append(s.left, g.left)
	}
	left := s.left
	first := f.req
	best, scores, taken, costs := p.mostEfficient(types, first, y, left)
	limit := 0.0
	for i, fi := range types {
		if scores[i] >= scores[best]*(1-growthTolerance) {
			limit = max(limit, fi.cost)
		}
	}
	// The tail of the queue: one node for all of it, if that costs little more.
	whole := 1 + p.fillableLeft(types, left)
	if slices.Max(taken) < whole {
		return limit
	}
	// mostEfficient reuses its results' slices: keep the first call's.
	taken, costs = slices.Clone(taken), slices.Clone(costs)
	fleet, pods := 0.0, 0
	rest := slices.Clone(left)
	for range maxTailNodes {
		i, _, took, cost := p.mostEfficient(types, first, y, rest)
		if took[i] == 0 {
			break
		}
		fleet += cost[i]
		pods += took[i]
		p.fill(types[i], first, y, rest)
		first = nil
	}
	cheapest := math.Inf(1)
	for i, fi := range types {
		if taken[i] >= pods && costs[i] <= fleet*(1+growthTolerance) {
			cheapest = min(cheapest, fi.cost)
		}
	}
	if math.IsInf(cheapest, 1) {
		return limit
	}
	return max(limit, cheapest)
}

// objectiveScratch holds maxPrice's and mostEfficient's working slices between calls: a plan
// asks for a node's size once per node, each time over hundreds of types.
type objectiveScratch struct {
	seen                  map[string]bool
	types                 []*fillInfo
	left, fillLeft, taken []int
	scores, costs         []float64
}

// offeringOf names the templates of a group in one zone and capacity type.
type offeringOf struct{ group, zone, capacityType string }

// sameOffering returns the templates of t's group in t's zone and capacity type, t among
// them, cheapest first.
func (p *packer) sameOffering(t *Template) []*Template {
	key := offeringOf{t.group, t.Offering.Zone, t.Offering.CapacityType}
	ts, ok := p.inOffering[key]
	if !ok {
		for _, o := range p.templates[t.group] {
			if o.Offering.Zone == t.Offering.Zone && o.Offering.CapacityType == t.Offering.CapacityType {
				ts = append(ts, o)
			}
		}
		p.inOffering[key] = ts
	}
	return ts
}

// typeCost is the cost of t's instance type in its cheapest offering among the templates of
// t's group: what a node of the type costs wherever it is put. Nodes are sized by it, and
// finalize moves a node to the cheapest offering that holds its pods.
func (p *packer) typeCost(t *Template) float64 {
	costs := p.typeCosts[t.group]
	if costs == nil {
		costs = map[string]float64{}
		for _, o := range p.templates[t.group] {
			if c, ok := costs[o.InstanceType.Name]; !ok || o.Cost() < c {
				costs[o.InstanceType.Name] = o.Cost()
			}
		}
		p.typeCosts[t.group] = costs
	}
	if c, ok := costs[t.InstanceType.Name]; ok {
		return c
	}
	return t.Cost()
}

// maxTailNodes is the most nodes maxPrice plans the tail of the queue onto when it weighs
// one node for all of it.
const maxTailNodes = 8

// mostEfficient returns which of types serves the queue most efficiently, a node's first pod
// requesting first (nil: none) and the rest filled from the groups' counts left: the index
// of the best, and of each the efficiency (worth at shadow prices y over cost), how many
// pods it takes and its cost with them (typeCost, and the surplus of a burstable type, see
// Template.CostWith). left is not changed. The slices returned are valid until the next call.
func (p *packer) mostEfficient(types []*fillInfo, first v1.ResourceList, y [3]float64, left []int) (best int, scores []float64, taken []int, costs []float64) {
	s := &p.scratch
	s.scores, s.taken, s.costs = resize(s.scores, len(types)), resize(s.taken, len(types)), resize(s.costs, len(types))
	scores, taken, costs = s.scores, s.taken, s.costs
	s.fillLeft = resize(s.fillLeft, len(left))
	scratch := s.fillLeft
	for i, fi := range types {
		copy(scratch, left)
		worth, n, cpu := p.fill(fi, first, y, scratch)
		costs[i] = fi.cost + fi.t.CostWith(cpu) - fi.t.Cost()
		scores[i], taken[i] = worth/costs[i], n
		if scores[i] > scores[best] {
			best = i
		}
	}
	return best, scores, taken, costs
}

// resize returns s with length n, reusing its array when it is large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// fill returns the worth at shadow prices y of what a node of fi's template takes: a first
// pod requesting first (nil: none), then pods of the queue, by the groups' counts left, of
// the groups whose node selection the template meets; how many pods it takes, and the cores
// they request. It takes them from left.
// The pods come in as the packer's order brings them (see sortBalanced): an even share of
// every group, the largest share that fits, then whole pods of the groups in order while
// they fit what is left.
func (p *packer) fill(fi *fillInfo, first v1.ResourceList, y [3]float64, left []int) (worth float64, pods int, cpu float64) {
	room := fi.usable
	if first != nil {
		room[0] -= cores(first)
		room[1] -= gib(first)
		room[2]--
		worth, pods = y[0]*cores(first)+y[1]*gib(first)+y[2], 1
	}
	groups := p.queue.groups
	var total [3]float64
	for _, i := range fi.groups {
		if left[i] > 0 {
			g, n := groups[i], float64(left[i])
			total[0], total[1], total[2] = total[0]+n*g.cpu, total[1]+n*g.mem, total[2]+n
		}
	}
	share := 1.0
	for r := range total {
		if total[r] > 0 {
			share = min(share, max(0, room[r])/total[r])
		}
	}
	take := func(i int, g *queueGroup, k float64) {
		room[0] -= k * g.cpu
		room[1] -= k * g.mem
		room[2] -= k
		worth += k * (y[0]*g.cpu + y[1]*g.mem + y[2])
		pods += int(k)
		left[i] -= int(k)
	}
	for _, i := range fi.groups {
		if left[i] > 0 {
			if k := math.Floor(share * float64(left[i])); k > 0 {
				take(i, groups[i], k)
			}
		}
	}
	for _, i := range fi.groups {
		if left[i] == 0 {
			continue
		}
		g := groups[i]
		k := float64(left[i])
		if g.cpu > 0 {
			k = min(k, math.Floor(room[0]/g.cpu))
		}
		if g.mem > 0 {
			k = min(k, math.Floor(room[1]/g.mem))
		}
		if k = min(k, room[2]); k > 0 {
			take(i, g, k)
		}
	}
	return worth, pods, fi.usable[0] - room[0]
}

// fillableLeft counts the pods of left whose group some of types may take.
func (p *packer) fillableLeft(types []*fillInfo, left []int) int {
	n := 0
	for i := range p.queue.groups {
		if left[i] > 0 && slices.ContainsFunc(types, func(fi *fillInfo) bool { return fi.fillable[i] }) {
			n += left[i]
		}
	}
	return n
}

// fillInfo is what fill reads of a template: its usable room and, by queue group, whether
// the group's pods may go on it by their node selection and the packer's defaults (fillable,
// and the indexes of those that may in groups), and its typeCost (cost).
type fillInfo struct {
	t        *Template
	usable   [3]float64
	fillable []bool
	groups   []int
	cost     float64
}

// fillInfo returns t's fillInfo, cached.
func (p *packer) fillInfo(t *Template) *fillInfo {
	if fi, ok := p.fillInfos[t]; ok {
		return fi
	}
	fi := &fillInfo{t: t, usable: usable(t), fillable: make([]bool, len(p.queue.groups)), cost: p.typeCost(t)}
	for i, g := range p.queue.groups {
		fi.fillable[i] = p.labelsPass(t, g.sel) && (t.excluded == "" || t.named)
		if fi.fillable[i] {
			fi.groups = append(fi.groups, i)
		}
	}
	p.fillInfos[t] = fi
	return fi
}

// cores is the cpu of l in cores.
func cores(l v1.ResourceList) float64 { return float64(l.Cpu().MilliValue()) / 1000 }

// gib is the memory of l in GiB.
func gib(l v1.ResourceList) float64 { return float64(l.Memory().Value()) / (1 << 30) }
