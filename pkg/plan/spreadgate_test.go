package plan

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestSpreadGateLetsEveryPodBind plans random pods spread over zones and over nodes, then
// has the scheduler place them as it may once every node has registered: any pod the
// SpreadGate has let go may come next, in any order. The scheduler's PreFilter and Filter
// plugins must accept each on its planned node with only the pods placed before it there,
// and every pod must be let go in the end. As a control, the same workloads with every pod
// let go at once must have some pod turned away: else they prove nothing.
func TestSpreadGateLetsEveryPodBind(t *testing.T) {
	const cases, orders = 16, 3
	r := rand.New(rand.NewPCG(7, 2026))
	newFramework := DefaultFrameworkFactory(nil, nil)
	waited, rejectedWithout := 0, 0
	for c := range cases {
		_, ctx := ktesting.NewTestContext(t)
		plan, err := Plan(ctx, planInput(spreadPods(r, c), plantest.Provisioner("default", spotOnly)))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range plan.Unplanned {
			t.Errorf("case %d: pod %s unplanned: %s", c, u.Pod.Name, u.Message())
		}
		nodes, all := registered(r, plan.Nodes)
		for o := range orders {
			msg, w := placeThroughGate(ctx, t, r, newFramework, plan, nodes, all, true)
			if msg != "" {
				t.Errorf("case %d, order %d: %s", c, o, msg)
			}
			waited += w
			if msg, _ := placeThroughGate(ctx, t, r, newFramework, plan, nodes, all, false); msg != "" {
				rejectedWithout++
			}
		}
	}
	t.Logf("%d cases: %d pods kept back for a while; without the gate %d of %d orders turned a pod away", cases, waited, rejectedWithout, cases*orders)
	if rejectedWithout == 0 || waited == 0 {
		t.Error("no order needed the gate: the test proves nothing")
	}
}

// placeThroughGate has the scheduler place the pods of plan one at a time, each picked at
// random among those let go (by a SpreadGate over plan.Spread if gated, else all at once),
// on nodes with the DaemonSet pods of all. It returns why the scheduler's filters turned a
// pod away, "" if they took each, and how many pods the gate kept back at first.
func placeThroughGate(ctx context.Context, t *testing.T, r *rand.Rand, newFramework FrameworkFactory, plan *Result, nodes []*v1.Node, all []*v1.Pod, gated bool) (string, int) {
	t.Helper()
	nodeOf := map[types.UID]string{}
	byUID := map[types.UID]*v1.Pod{}
	var pods []*v1.Pod
	for _, n := range plan.Nodes {
		for _, p := range n.Pods {
			nodeOf[p.UID], byUID[p.UID] = n.Name, p
			pods = append(pods, p)
		}
	}
	var placed []*v1.Pod
	for _, p := range all {
		if _, planned := nodeOf[p.UID]; !planned {
			placed = append(placed, p) // DaemonSet pods
		}
	}
	gate := NewSpreadGate()
	if gated {
		gate.Add(plan.Spread)
	}
	var let []*v1.Pod
	kept := 0
	for _, i := range r.Perm(len(pods)) {
		if gate.Ready(pods[i].UID) {
			let = append(let, pods[i])
		} else {
			kept++
		}
	}
	for n := range pods {
		if len(let) == 0 {
			return fmt.Sprintf("%d of %d pods placed, none let go", n, len(pods)), kept
		}
		i := r.IntN(len(let))
		p := let[i]
		let = append(let[:i], let[i+1:]...)
		if msg := rejection(ctx, t, newFramework, p, nodeOf[p.UID], nodes, placed); msg != "" {
			return fmt.Sprintf("pod %s turned away from %s after %d placed: %s", p.Name, nodeOf[p.UID], n, msg), kept
		}
		placed = append(placed, boundTo(nodeOf[p.UID], []*v1.Pod{p})...)
		for _, uid := range gate.Placed(p.UID) {
			let = append(let, byUID[uid])
		}
	}
	return "", kept
}

// spreadPods returns random deployments of case c: some spread over zones, some over nodes,
// some over both, with a skew of 1 or 2, and some pods with no constraint labelled like a
// spread's.
func spreadPods(r *rand.Rand, c int) []*v1.Pod {
	var pods []*v1.Pod
	shared := r.IntN(2) == 0
	for g := range 1 + r.IntN(3) {
		app := fmt.Sprintf("app-%d", g)
		if shared {
			app = fmt.Sprintf("app-%d", r.IntN(2))
		}
		sel := st.MakeLabelSelector().Label("app", app).Obj()
		key := v1.LabelTopologyZone
		if r.IntN(3) == 0 {
			key = v1.LabelHostname
		}
		skew := 1 + r.IntN(2)
		cpu := fmt.Sprintf("%dm", 250*(1+r.IntN(8)))
		both := r.IntN(4) == 0
		for i := range 3 + r.IntN(12) {
			pod := plantest.PendingPod(fmt.Sprintf("c%d-%d-%s-%d", c, g, app, i), cpu).Label("app", app).
				SpreadConstraint(skew, key, v1.DoNotSchedule, sel, nil, nil, nil, nil)
			if both {
				pod = pod.SpreadConstraint(1, v1.LabelHostname, v1.DoNotSchedule, sel, nil, nil, nil, nil)
			}
			pods = append(pods, pod.Obj())
		}
		if r.IntN(2) == 0 {
			pods = append(pods, plantest.PendingPod(fmt.Sprintf("c%d-%d-%s-plain", c, g, app), cpu).Label("app", app).Obj())
		}
	}
	return pods
}

// TestSpreadGateCountsPodsNoPlanReserved: a pod no plan reserved that the scheduler places
// into a zone counts there for the spreads that select it, as PodTopologySpread counts it:
// pods waiting for that zone to fill go once it has; so does one placed while the plan read
// the cluster (after Mark), which the plan's counts may not show.
func TestSpreadGateCountsPodsNoPlanReserved(t *testing.T) {
	web := st.MakeLabelSelector().Label("app", "web").Obj()
	spread := func(name string) *v1.Pod {
		return plantest.PendingPod(name, "1").Label("app", "web").SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule, web, nil, nil, nil, nil).Obj()
	}
	a1, a2 := spread("a1"), spread("a2")
	key, count := spreadCounter(a1, a1.Spec.TopologySpreadConstraints[0])
	in := func(zone string) []SpreadDomain { return []SpreadDomain{{key, zone}} }
	counts := func() *SpreadCounts {
		return &SpreadCounts{Bound: map[string]map[string]int{key: {"us-east-1a": 0, "us-east-1b": 0}},
			Needs:    map[types.UID][]SpreadNeed{a1.UID: {{in("us-east-1a")[0], 1}}, a2.UID: {{in("us-east-1a")[0], 1}}},
			Counted:  map[types.UID][]SpreadDomain{a1.UID: in("us-east-1a"), a2.UID: in("us-east-1a")},
			counters: map[string]spreadCount{key: count}}
	}
	gate := NewSpreadGate()
	gate.Add(counts())
	if !gate.Ready(a1.UID) || gate.Ready(a2.UID) {
		t.Fatal("want a1 let go and a2 waiting: zone b has no pod")
	}
	zoneB := st.MakeNode().Name("b").Label(v1.LabelTopologyZone, "us-east-1b").Obj()
	other := plantest.PendingPod("other", "1").Label("app", "api").Obj()
	if freed := gate.PlacedOn(other, zoneB); len(freed) != 0 {
		t.Fatalf("a pod the spread does not select let %v go", freed)
	}
	if freed := gate.PlacedOn(a1, nil); len(freed) != 0 {
		t.Fatalf("a1 placed let %v go with zone b empty", freed)
	}
	if freed := gate.PlacedOn(plantest.PendingPod("web-b", "1").Label("app", "web").Obj(), zoneB); !slices.Equal(freed, []types.UID{a2.UID}) {
		t.Fatalf("a web pod placed in zone b let %v go, want a2", freed)
	}

	// Placed while a plan read the cluster, which did not show it: counted all the same.
	gate = NewSpreadGate()
	gate.Mark()
	gate.PlacedOn(plantest.PendingPod("web-b", "1").Label("app", "web").Obj(), zoneB)
	gate.Add(counts())
	if !gate.Ready(a1.UID) || gate.Ready(a2.UID) {
		t.Fatal("want a1 let go and a2 waiting")
	}
	if freed := gate.PlacedOn(a1, nil); !slices.Equal(freed, []types.UID{a2.UID}) {
		t.Fatalf("a1 placed let %v go, want a2: the web pod placed in zone b while the plan read the cluster counts", freed)
	}
	// A plan with no spread ends the mark: placements are no longer kept.
	gate.Mark()
	gate.Add(nil)
	gate.PlacedOn(plantest.PendingPod("web-c", "1").Label("app", "web").Obj(), zoneB)
	if len(gate.placements) != 0 {
		t.Errorf("%d placements kept with no plan reading the cluster", len(gate.placements))
	}
}
