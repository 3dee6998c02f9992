package plan

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestZoneVerdictsAskedOncePerZone: replicas that keep apart open their nodes first, all
// in the cheapest zone; then pods that spread over zones (with maxSkew 1, every second one
// must leave that zone) and pods that would break the spread of placed ones come. Each is
// turned away from the zone by the Filter plugins once, not once per node there
// (domainVerdicts, spreadVerdicts): without that, every such pod costs a Filter run on each
// of the replicas' nodes, as it stands and grown.
func TestZoneVerdictsAskedOncePerZone(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const replicas, spread = 100, 12
	var pods []*v1.Pod
	for i := range replicas {
		pods = append(pods, plantest.PendingPod(fmt.Sprintf("replica-%02d", i), "1").Label("app", "replica").
			PodAntiAffinity(v1.LabelHostname, st.MakeLabelSelector().Label("app", "replica").Obj(), st.PodAntiAffinityWithRequiredReq).Obj())
	}
	for i := range spread {
		// Spread over zones; and pods of the same label spread over nodes, whose placement
		// must keep the zone spread of the others (keepsSpread).
		key := v1.LabelTopologyZone
		if i%2 == 1 {
			key = v1.LabelHostname
		}
		pods = append(pods, plantest.PendingPod(fmt.Sprintf("spread-%02d", i), "100m").Label("team", "s").
			SpreadConstraint(1, key, v1.DoNotSchedule, st.MakeLabelSelector().Label("team", "s").Obj(), nil, nil, nil, nil).Obj())
	}
	plan, err := Plan(ctx, planInput(pods, plantest.Provisioner("default", spotOnly)))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range plan.Unplanned {
		t.Errorf("pod %s unplanned: %s", u.Pod.Name, u.Message())
	}
	zones := map[string]int{}
	for _, n := range plan.Nodes {
		for _, p := range n.Pods {
			if p.Labels["team"] == "s" {
				zones[n.Template.Offering.Zone]++
			}
		}
	}
	t.Logf("%d nodes, spread pods by zone %v: %d Filter runs, %d PreFilter runs", len(plan.Nodes), zones, plan.Checks, plan.PreFilters)
	// A replica costs a few runs of its own (its node opened, the plan confirmed: some 7).
	// Judged node by node, each spread pod turned away from the replicas' zone would add a
	// run per replica node, as it stands or grown: 4 or more of them, 400 runs or more.
	if limit := 8 * replicas; plan.Checks >= limit {
		t.Errorf("%d Filter runs for %d replicas and %d spread pods: the spread pods were judged node by node in a zone (< %d expected)",
			plan.Checks, replicas, spread, limit)
	}
}

// TestSharedVerdictsChangeNoPlan: the verdicts shared between nodes and the nodes skipped for
// a pod's own anti-affinity only leave out checks whose answer is known, so every plan comes
// out the same with them and without (Input.exhaustive).
func TestSharedVerdictsChangeNoPlan(t *testing.T) {
	samePlans(t, "exhaustive", "with shared verdicts", func(in *Input) { in.exhaustive = true })
}

// TestViewsChangeNoPlan: PreFilter runs over views (see view) are the runs over the whole
// snapshot, so every plan comes out the same with them and without (Input.fromScratch):
// nodes, templates, pods on each, pods unplanned.
func TestViewsChangeNoPlan(t *testing.T) {
	samePlans(t, "from scratch", "over views", func(in *Input) { in.fromScratch = true })
}

// samePlans plans inputs as they are and as other changes them, and fails if a plan
// differs: random pods of every constraint the stranded-pod tests draw, and the diverse mix
// at a few sizes and seeds. other and as name the two kinds of plan in the diff.
func samePlans(t *testing.T, other, as string, change func(*Input)) {
	r := rand.New(rand.NewPCG(5, 2026))
	newFramework := DefaultFrameworkFactory(nil, volumeCluster(t))
	var inputs []Input
	for c := range 200 {
		in := planInput(randomPods(r, c), plantest.Provisioner("default"))
		in.Framework = newFramework
		inputs = append(inputs, in)
	}
	for _, n := range []int{100, 300} {
		for seed := range uint64(3) {
			inputs = append(inputs, planInput(workload.Pods(n, seed, workload.PodOptions{}), plantest.Provisioner("default")))
		}
	}
	for i, in := range inputs {
		_, ctx := ktesting.NewTestContext(t)
		got, err := Plan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		change(&in)
		want, err := Plan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(planOutline(want), planOutline(got)); diff != "" {
			t.Errorf("input %d (%d pods): plan (-%s, +%s):\n%s", i, len(in.Pods), other, as, diff)
		}
	}
}

// planOutline is what a plan decides: each node's template and pods, the pods unplanned.
func planOutline(r *Result) []string {
	var out []string
	for _, n := range r.Nodes {
		out = append(out, fmt.Sprintf("%s %s: %v", n.Name, n.Template.Key, podNames(n.Pods)))
	}
	for _, u := range r.Unplanned {
		out = append(out, "unplanned "+u.Pod.Name)
	}
	return out
}
