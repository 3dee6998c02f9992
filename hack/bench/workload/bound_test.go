package workload

import (
	"fmt"
	"math"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/nodewright/nodewright/pkg/cloud"
)

// TestLPBoundSynthetic: on the synthetic catalog every type has 1 vCPU, 2 GiB and 10 pods
// per 0.3 USD/h, so LP* is 0.3 x the scarcest of cpu, GiB / 2 and pods / 10: LowerBound, or
// more when pods are small and many.
func TestLPBoundSynthetic(t *testing.T) {
	for _, n := range []int{10, 1000} {
		pods := Pods(n, Seed, PodOptions{}, Generic)
		got, err := LPBound(pods, SyntheticCatalog(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := max(LowerBound(pods, SyntheticCatalog()), 0.3*float64(n)/10)
		if math.Abs(got.USDPerHour-want) > 1e-6*want {
			t.Errorf("%d pods: LP* = %v USD/h, want %v", n, got.USDPerHour, want)
		}
	}
}

// TestLPBoundCountsNodes: the per-node cost and DaemonSet pods make larger nodes cheaper per
// usable core, and the bound follows.
func TestLPBoundCountsNodes(t *testing.T) {
	types := []*cloud.InstanceType{
		lpType("small", 4, 8, 0.08),   // 0.020 USD/h per core
		lpType("large", 16, 32, 0.35), // 0.021875 USD/h per core
	}
	pods := make([]*v1.Pod, 32)
	for i := range pods {
		pods[i] = st.MakePod().Name("p").Req(map[v1.ResourceName]string{v1.ResourceCPU: "1", v1.ResourceMemory: "1Gi"}).Obj()
	}
	perNode := v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("512Mi"),
		v1.ResourcePods: resource.MustParse("2")}
	for _, tc := range []struct {
		name     string
		perNode  v1.ResourceList
		nodeCost float64
		want     float64
	}{
		{"instances alone: the small type", nil, 0, 32 * 0.08 / 4},
		{"a node cost of 0.05: the large type", nil, 0.05, 32 * 0.40 / 16},
		{"DaemonSet pods on every node: the large type", perNode, 0, 32 * 0.35 / 15.5},
	} {
		got, err := LPBound(pods, types, tc.perNode, tc.nodeCost)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.USDPerHour-tc.want) > 1e-9 {
			t.Errorf("%s: LP* = %v USD/h (%v nodes), want %v", tc.name, got.USDPerHour, got.Nodes, tc.want)
		}
	}
}

// TestLPBoundPricesBurstCredits: a burstable type is as cheap as its price up to its
// baseline cpu and pays the surplus-credit price above it, as the fleet's cost counts it.
func TestLPBoundPricesBurstCredits(t *testing.T) {
	burst := lpType("burst", 2, 4, 0.02)
	burst.BaselineCPU, burst.SurplusCPUPrice = 0.4, 0.05 // full: 0.02 + 1.6 x 0.05 = 0.10 USD/h
	types := []*cloud.InstanceType{burst, lpType("steady", 2, 4, 0.06)}
	pods := func(n int, cpu, mem string) []*v1.Pod {
		out := make([]*v1.Pod, n)
		for i := range out {
			out[i] = st.MakePod().Name("p").Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: mem}).Obj()
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pods []*v1.Pod
		want float64
	}{
		// Without the credits it would be 5 burstable nodes at 0.02.
		{"cpu-bound pods: the steady type", pods(10, "1", "100Mi"), 5 * 0.06},
		{"memory-bound pods within the baseline: the burstable type", pods(8, "100m", "2Gi"), 4 * 0.02},
	} {
		got, err := LPBound(tc.pods, types, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.USDPerHour-tc.want) > 1e-9 {
			t.Errorf("%s: LP* = %v USD/h (%v nodes), want %v", tc.name, got.USDPerHour, got.Nodes, tc.want)
		}
	}
}

// lpType is a type of cpu cores and mem GiB, 110 pods, no overhead, on-demand in one zone.
func lpType(name string, cpu, mem int64, price float64) *cloud.InstanceType {
	return &cloud.InstanceType{
		Name: name,
		Capacity: v1.ResourceList{v1.ResourceCPU: *resource.NewQuantity(cpu, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(mem<<30, resource.BinarySI), v1.ResourcePods: resource.MustParse("110")},
		Offerings: []cloud.Offering{{Zone: "us-east-1a", CapacityType: "on-demand", Price: price, Available: true}},
	}
}

// TestConstrainedBound: the diverse mix's hostname anti-affinity pods (every fifth, all
// labelled app: nginx) force a node each, and the bound buys them; a mix without them keeps
// LP*.
func TestConstrainedBound(t *testing.T) {
	pods := Pods(100, Seed, PodOptions{})
	if got := ForcedNodes(pods); got != 20 {
		t.Fatalf("ForcedNodes = %d, want 20 (one per HostnameAntiAffinity pod)", got)
	}
	if got := ForcedNodes(Pods(100, Seed, PodOptions{}, Generic)); got != 0 {
		t.Errorf("ForcedNodes of generic pods = %d, want 0", got)
	}
	// On the synthetic catalog every type costs 0.3 USD/h per vCPU; with a node cost of 0.05
	// LP* buys a fraction of the largest type, and 20 nodes cost at least 20 x 0.05 more
	// than their vCPUs.
	types := SyntheticCatalog()
	lp, err := LPBound(pods, types, nil, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ConstrainedBound(pods, types, nil, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Nodes < 20-1e-9 || cb.USDPerHour <= lp.USDPerHour {
		t.Errorf("constrained bound %v USD/h over %v nodes, want ≥ 20 nodes and more than LP* (%v USD/h over %v nodes)",
			cb.USDPerHour, cb.Nodes, lp.USDPerHour, lp.Nodes)
	}
	generic := Pods(100, Seed, PodOptions{}, Generic)
	lp, _ = LPBound(generic, types, nil, 0.05)
	if cb, _ = ConstrainedBound(generic, types, nil, 0.05); cb.USDPerHour != lp.USDPerHour {
		t.Errorf("without forced nodes: %v USD/h, want LP* %v", cb.USDPerHour, lp.USDPerHour)
	}
}

// TestConstrainedBoundCountsRoomForEachForcedPod: ten pods that keep each other off a node,
// five requesting 2 cores and five 0.5, need ten nodes of which five have 2 usable cores:
// five "large" and five "small" ones (0.45 USD/h), where the resources alone take 12.5 small
// ones (0.125) and one row for all ten nodes ten small ones.
func TestConstrainedBoundCountsRoomForEachForcedPod(t *testing.T) {
	types := []*cloud.InstanceType{lpType("small", 1, 2, 0.01), lpType("large", 4, 8, 0.08)}
	var pods []*v1.Pod
	for i := range 10 {
		cpu := "2"
		if i%2 == 1 {
			cpu = "500m"
		}
		pods = append(pods, st.MakePod().Namespace("default").Name(fmt.Sprint("p", i)).Label("app", "x").
			Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: "100Mi"}).
			PodAntiAffinity(v1.LabelHostname, st.MakeLabelSelector().Label("app", "x").Obj(), st.PodAntiAffinityWithRequiredReq).Obj())
	}
	got, err := ConstrainedBound(pods, types, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 5*0.08 + 5*0.01; math.Abs(got.USDPerHour-want) > 1e-9 {
		t.Errorf("constrained bound %v USD/h over %v nodes, want %v (five large nodes, five small)", got.USDPerHour, got.Nodes, want)
	}
}
