package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestPlanObjective: the plan is the cheaper of two fleets, a big node or several small
// ones, counting the node cost, the tolerance for fewer nodes and the surplus credits of a
// burstable type. Every type has 0.1 cpu of overhead: a 2-cpu node takes one 1-cpu pod, an
// 8-cpu node seven, a 16-cpu node fifteen.
func TestPlanObjective(t *testing.T) {
	small := func(price float64) *cloud.InstanceType {
		return plantest.InstanceType("small", "amd64", 2, 8, price, price, "us-east-1a")
	}
	big := func(price float64) *cloud.InstanceType {
		return plantest.InstanceType("big", "amd64", 8, 32, price, price, "us-east-1a")
	}
	burstable := plantest.InstanceType("burst", "amd64", 2, 8, 0.005, 0.005, "us-east-1a")
	burstable.BaselineCPU, burstable.SurplusCPUPrice = 0.4, 0.05
	for _, tc := range []struct {
		name     string
		types    []*cloud.InstanceType
		nodeCost string
		pods     int
		want     map[string]int
	}{
		{"no node cost: six small nodes (0.060) rather than a big one (0.070)",
			[]*cloud.InstanceType{small(0.010), big(0.070)}, "0", 6, map[string]int{"small": 6}},
		{"a node cost of 0.01: a big node (0.080) rather than six small ones (0.120)",
			[]*cloud.InstanceType{small(0.010), big(0.070)}, "0.01", 6, map[string]int{"big": 1}},
		{"a big node 3 % dearer than six small ones: within the tolerance, one node",
			[]*cloud.InstanceType{small(0.010), big(0.062)}, "0", 6, map[string]int{"big": 1}},
		{"a big node 10 % dearer than six small ones: beyond the tolerance, six",
			[]*cloud.InstanceType{small(0.010), big(0.066)}, "0", 6, map[string]int{"small": 6}},
		{"a burstable type cheaper by price (0.005) but not with the surplus its pod's cpu costs (0.035)",
			[]*cloud.InstanceType{burstable, small(0.020)}, "0", 1, map[string]int{"small": 1}},
		{"100 pods: nodes of the most efficient type (0.01 per cpu), not one that holds them all (0.0125)",
			[]*cloud.InstanceType{plantest.InstanceType("mid", "amd64", 16, 64, 0.16, 0.16, "us-east-1a"),
				plantest.InstanceType("huge", "amd64", 128, 512, 1.6, 1.6, "us-east-1a")}, "0", 100, map[string]int{"mid": 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			prov := plantest.Provisioner("default", spotOnly, func(p *v1alpha1.Provisioner) { p.Spec.NodeCost = &tc.nodeCost })
			in := planInput(pods(tc.pods, "1"), prov)
			in.InstanceTypes[prov.Name] = tc.types
			result, err := Plan(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, n := range result.Nodes {
				got[n.Template.InstanceType.Name]++
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || len(result.Unplanned) > 0 {
				t.Errorf("nodes by type (-want, +got):\n%s\nunplanned: %v", diff, result.Unplanned)
			}
		})
	}
}

// TestSortBalanced: pods interleaved to a shape's memory per core.
func TestSortBalanced(t *testing.T) {
	mk := func(name, cpu, mem string) *v1.Pod {
		return plantest.PendingPod(name, cpu).Req(map[v1.ResourceName]string{v1.ResourceMemory: mem}).Obj()
	}
	ps := []*v1.Pod{mk("c1", "2", "1Gi"), mk("c2", "2", "1Gi"), mk("c3", "2", "1Gi"), mk("m1", "1", "8Gi"), mk("m2", "1", "8Gi"), mk("m3", "1", "8Gi")}
	sortLargestFirst(ps)
	sortBalanced(ps, podRequests, []shape{{ratio: 3, cores: 100}})
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	// 2 cores and 1 GiB lack memory for 3 GiB a core: then a memory-heavy pod, and so on.
	if diff := cmp.Diff([]string{"c1", "m1", "c2", "m2", "c3", "m3"}, names); diff != "" {
		t.Errorf("order (-want, +got):\n%s", diff)
	}
}
