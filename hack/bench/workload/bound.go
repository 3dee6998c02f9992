package workload

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
// It is a lower bound on every fleet of those offerings that holds the pods: on each node the
// scheduler's NodeResourcesFit keeps the requests of its pods and DaemonSet pods within its
// allocatable, so a fleet's usable resources, summed, cover the demand, and the fleet counted
// by offering (x_t = its nodes of t) is a solution of the program, at the fleet's price. The
// program may buy fractions of nodes and ignores every constraint but resources, which only
// raise the real optimum; so does what a burstable type's pods cost above its baseline
// (cloud.InstanceType.SurplusCPUPrice), which the program leaves out. perNode must hold only DaemonSet pods that run on every node:
// one that skips some types would make their usable room too small and the bound too high.
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
	return lpBound(pods, types, perNode, nodeCost, 0, nil)
}

// ConstrainedBound is LP* with one more row: the fleet has at least as many nodes able to
// hold a forced pod as the pods' constraints force, with F the forced pods (ForcedPods),
//
//	Σ_{t: usable_t ≥ m} x_t ≥ |F|,   m the least request of F's pods, resource by resource.
//
// It is a lower bound on every fleet that holds the pods where the scheduler's filters
// accept them, for the reason LP* is, and because such a fleet meets the row: no two pods of
// F share a node, so F's pods are on |F| nodes, each of which has room for its pod of F and
// therefore at least m. On a mix with pods that keep each other off a node it is LP* raised
// by what the nodes those pods force cost beyond what LP* buys; without such pods it is LP*.
func ConstrainedBound(pods []*v1.Pod, types []*cloud.InstanceType, perNode v1.ResourceList, nodeCost float64) (*LP, error) {
	forced := ForcedPods(pods)
	least := v1.ResourceList{}
	for i, p := range forced {
		r := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			if q, ok := least[name]; i == 0 || ok && r.Name(name, resource.DecimalSI).Cmp(q) < 0 {
				least[name] = r[name]
			}
		}
	}
	return lpBound(pods, types, perNode, nodeCost, len(forced), least)
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

// lpBound is LP* with the fleet held to at least minNodes nodes whose usable room holds
// least (no row when minNodes is 0).
func lpBound(pods []*v1.Pod, types []*cloud.InstanceType, perNode v1.ResourceList, nodeCost float64, minNodes int, least v1.ResourceList) (*LP, error) {
	demand := []float64{0, 0, float64(len(pods))}
	if minNodes > 0 {
		demand = append(demand, float64(minNodes))
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
		if minNodes > 0 {
			holds := 0.0
			if usable[0] >= cores(least) && usable[1] >= gib(least) {
				holds = 1
			}
			usable = append(usable, holds)
		}
		if usable[0] <= 0 || usable[1] <= 0 || usable[2] <= 0 {
			continue // it cannot hold a pod besides its DaemonSet pods
		}
		for _, o := range it.Offerings {
			if o.Available {
				costs = append(costs, o.Price+it.NodeCost+nodeCost)
				cols = append(cols, usable)
			}
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
