package plan

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

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
