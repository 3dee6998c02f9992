package workload

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/lp"
)

// LP is LP*, the fractional optimum of the fleet that holds pods: the least
//
//	Σ_t x_t · (price_t + nodeCost_t)   subject to   Σ_t x_t · usable_t ≥ demand,  x ≥ 0
//
// over every available offering t of types, for cpu, memory and pods, where nodeCost_t is
// what a node costs beyond its instance (its type's NodeCost, its volumes, and the
// Provisioner's node cost), demand is the
// pods' requests (as the scheduler counts them) and their number, and usable_t is what a node
// of t has for them: its allocatable less perNode, the requests (and, as pods, the number) of
// the DaemonSet pods every node runs.
//
// A burstable type (cloud.InstanceType.BaselineCPU, SurplusCPUPrice) has two columns per
// offering, alike but for cpu and cost: the node at its baseline (cpu b = max(0, baseline -
// perNode's cpu), no more than its usable cpu u, costing price plus what the DaemonSet pods
// use above the baseline) and the node at its full cpu (u, costing price plus the surplus of
// all its allocatable cpu above the baseline), as plan.Template.CostWith prices a node.
//
// It is a lower bound on every fleet of those offerings that holds the pods: on each node the
// scheduler's NodeResourcesFit keeps the requests of its pods and DaemonSet pods within its
// allocatable, so a fleet's usable resources, summed, cover the demand, and the fleet counted
// by offering (x_t = its nodes of t) is a solution of the program, at the fleet's price. A
// node of a burstable type whose pods request c ≤ u cores costs f(c) = price + surplus ·
// max(0, c + perNode's cpu - baseline), which is flat up to b and linear from b to u: for c ≤ b
// the baseline column alone covers it at f(c), and for c > b the mix λ = (c-b)/(u-b) of the full
// column and 1-λ of the baseline column has cpu c, the node's memory and pods, weight 1 in the
// node rows below, and costs f(c) exactly. The program may buy fractions of nodes and ignores
// every constraint but resources, which only raise the real optimum. perNode must hold only
// DaemonSet pods that run on every node: one that skips some types would make their usable
// room too small and the bound too high.
type LP struct {
	// USDPerHour is the optimum, Nodes the (fractional) number of nodes of the optimal x.
	USDPerHour, Nodes float64
	// ShadowPrices are the duals of the cpu (per core), memory (per GiB) and pods rows: what a
	// unit of each costs at the margin.
	ShadowPrices [3]float64
}

// LPBound returns LP* of pods on types, with perNode the requests of the DaemonSet pods of
// every node (its pods resource their number; nil for none) and nodeCost what every node
// costs beyond its instance and its type's NodeCost, in USD per hour.
func LPBound(pods []*v1.Pod, types []*cloud.InstanceType, perNode v1.ResourceList, nodeCost float64) (*LP, error) {
	return lpBound(pods, types, perNode, nodeCost, nil)
}

// ConstrainedBound is LP* with rows for the nodes that the forced pods F (ForcedPods), which
// keep each other off a node, need:
//
//	Σ_{t: usable_t ≥ m} x_t ≥ |F|                 m the least request of F's pods, resource by resource
//	Σ_{t: usable_cpu_t ≥ c} x_t ≥ |{p ∈ F: cpu_p ≥ c}|     for each cpu request c of F's pods
//	Σ_{t: usable_mem_t ≥ g} x_t ≥ |{p ∈ F: mem_p ≥ g}|     for each memory request g of F's pods
//
// It is a lower bound on every fleet that holds the pods where the scheduler's filters
// accept them, for the reason LP* is, and because such a fleet, counted by offering, meets
// every row: no two pods of F share a node, so the pods of F that request at least c cores
// are on as many nodes, each with room for its pod, so at least c usable cores (memory
// alike), and every pod of F is on a node with room for at least m. On a mix with pods that
// keep each other off a node it is LP* raised by the nodes those pods force beyond what LP*
// buys; without such pods it is LP*.
func ConstrainedBound(pods []*v1.Pod, types []*cloud.InstanceType, perNode v1.ResourceList, nodeCost float64) (*LP, error) {
	forced := ForcedPods(pods)
	if len(forced) == 0 {
		return LPBound(pods, types, perNode, nodeCost)
	}
	reqs := make([][2]float64, len(forced))
	least := [2]float64{math.Inf(1), math.Inf(1)}
	for i, p := range forced {
		r := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		reqs[i] = [2]float64{cores(r), gib(r)}
		least = [2]float64{min(least[0], reqs[i][0]), min(least[1], reqs[i][1])}
	}
	rows := []nodeRow{{least, len(forced)}}
	for k := range 2 {
		counts := map[float64]int{}
		for _, r := range reqs {
			counts[r[k]] = 0
		}
		for c := range counts {
			for _, r := range reqs {
				if r[k] >= c {
					counts[c]++
				}
			}
			var at [2]float64
			at[k] = c
			rows = append(rows, nodeRow{at, counts[c]})
		}
	}
	slices.SortFunc(rows, func(a, b nodeRow) int { return cmp.Or(cmp.Compare(a.at[0], b.at[0]), cmp.Compare(a.at[1], b.at[1])) })
	return lpBound(pods, types, perNode, nodeCost, rows)
}

// nodeRow asks the fleet for at least count nodes whose usable room has at least at (cores,
// GiB).
type nodeRow struct {
	at    [2]float64
	count int
}

// ForcedNodes is how many nodes pods need whatever their resources: len(ForcedPods(pods)).
func ForcedNodes(pods []*v1.Pod) int { return len(ForcedPods(pods)) }

// ForcedPods are the largest set of pods of which each has a required pod anti-affinity
// term on kubernetes.io/hostname selecting every other (the same namespace and a selector
// all of them match): no two of them may share a node. Sets that do not exclude each other
// may share nodes, so only the largest counts.
func ForcedPods(pods []*v1.Pod) []*v1.Pod {
	sets := map[string][]*v1.Pod{}
	for _, p := range pods {
		a := p.Spec.Affinity
		if a == nil || a.PodAntiAffinity == nil {
			continue
		}
		for _, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
			if term.TopologyKey != v1.LabelHostname || err != nil || len(term.Namespaces) > 0 || term.NamespaceSelector != nil ||
				!sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			key := p.Namespace + "/" + sel.String()
			sets[key] = append(sets[key], p)
			break
		}
	}
	var most []*v1.Pod
	for _, set := range sets {
		if len(set) > len(most) {
			most = set
		}
	}
	return most
}

// lpBound is LP* with rows, each of which holds the fleet to at least count nodes with room
// for at (none: LP*).
func lpBound(pods []*v1.Pod, types []*cloud.InstanceType, perNode v1.ResourceList, nodeCost float64, rows []nodeRow) (*LP, error) {
	demand := []float64{0, 0, float64(len(pods))}
	for _, r := range rows {
		demand = append(demand, float64(r.count))
	}
	for _, p := range pods {
		r := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		demand[0] += cores(r)
		demand[1] += gib(r)
	}
	var costs []float64
	var cols [][]float64
	for _, it := range types {
		alloc := it.Allocatable()
		usable := []float64{cores(alloc) - cores(perNode), gib(alloc) - gib(perNode), float64(alloc.Pods().Value() - perNode.Pods().Value())}
		if usable[0] <= 0 || usable[1] <= 0 || usable[2] <= 0 {
			continue // it cannot hold a pod besides its DaemonSet pods
		}
		for _, r := range rows {
			holds := 0.0
			if usable[0] >= r.at[0] && usable[1] >= r.at[1] {
				holds = 1
			}
			usable = append(usable, holds)
		}
		for _, o := range it.Offerings {
			if !o.Available {
				continue
			}
			price := o.Price + it.NodeCost + nodeCost
			if it.SurplusCPUPrice == 0 || it.BaselineCPU >= cores(alloc) {
				costs = append(costs, price)
				cols = append(cols, usable)
				continue
			}
			// A burstable type: the node at its baseline, and at its full cpu.
			daemons := cores(perNode)
			atBase := slices.Clone(usable)
			atBase[0] = min(usable[0], max(0, it.BaselineCPU-daemons))
			costs = append(costs, price+it.SurplusCost(daemons), price+it.SurplusCost(cores(alloc)))
			cols = append(cols, atBase, usable)
		}
	}
	sol, err := lp.Minimize(costs, cols, demand)
	if err != nil {
		return nil, fmt.Errorf("LP* of %d pods over %d offerings: %w", len(pods), len(costs), err)
	}
	out := &LP{USDPerHour: sol.Value, ShadowPrices: [3]float64(sol.Duals[:3])}
	for _, x := range sol.X {
		out.Nodes += x
	}
	return out, nil
}

// cores is the cpu of l in cores.
func cores(l v1.ResourceList) float64 { return float64(l.Cpu().MilliValue()) / 1000 }

// gib is the memory of l in GiB.
func gib(l v1.ResourceList) float64 { return float64(l.Memory().Value()) / (1 << 30) }
