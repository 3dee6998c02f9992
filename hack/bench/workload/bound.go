package workload

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/lp"
)

// LP is LP*, the fractional optimum of the fleet that holds pods: the least
//
//	Σ_t x_t · (price_t + nodeCost)   subject to   Σ_t x_t · usable_t ≥ demand,  x ≥ 0
//
// over every available offering t of types, for cpu, memory and pods, where demand is the
// pods' requests (as the scheduler counts them) and their number, and usable_t is what a node
// of t has for them: its allocatable less perNode, the requests (and, as pods, the number) of
// the DaemonSet pods every node runs.
//
// It is a lower bound on every fleet of those offerings that holds the pods: on each node the
// scheduler's NodeResourcesFit keeps the requests of its pods and DaemonSet pods within its
// allocatable, so a fleet's usable resources, summed, cover the demand, and the fleet counted
// by offering (x_t = its nodes of t) is a solution of the program, at the fleet's price. The
// program may buy fractions of nodes and ignores every constraint but resources, which only
// raise the real optimum. perNode must hold only DaemonSet pods that run on every node:
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
// costs beyond its instance, in USD per hour.
func LPBound(pods []*v1.Pod, types []*cloud.InstanceType, perNode v1.ResourceList, nodeCost float64) (*LP, error) {
	demand := []float64{0, 0, float64(len(pods))}
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
		for _, o := range it.Offerings {
			if o.Available {
				costs = append(costs, o.Price+nodeCost)
				cols = append(cols, usable)
			}
		}
	}
	sol, err := lp.Minimize(costs, cols, demand)
	if err != nil {
		return nil, fmt.Errorf("LP* of %d pods over %d offerings: %w", len(pods), len(costs), err)
	}
	out := &LP{USDPerHour: sol.Value, ShadowPrices: [3]float64(sol.Duals)}
	for _, x := range sol.X {
		out.Nodes += x
	}
	return out, nil
}

// cores is the cpu of l in cores.
func cores(l v1.ResourceList) float64 { return float64(l.Cpu().MilliValue()) / 1000 }

// gib is the memory of l in GiB.
func gib(l v1.ResourceList) float64 { return float64(l.Memory().Value()) / (1 << 30) }
