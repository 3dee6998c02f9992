package plan

import (
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestPlanKeepsPlacedPodsSpread: pods labelled app=web of two kinds, some that spread over
// zones and some over nodes, each kind's selector selecting both. PodTopologySpread judges a
// pod by its own constraints only, so a pod planned after another that selects it can raise
// the count of that pod's domain past its maxSkew; confirm, which judges every pod with all
// the others in place, would then take that pod off the plan. Every pod must be planned in
// one round, and the scheduler's filters must accept each on its node with the others there.
func TestPlanKeepsPlacedPodsSpread(t *testing.T) {
	web := st.MakeLabelSelector().Label("app", "web").Obj()
	zoneSpread := func(name, cpu string) *st.PodWrapper {
		return plantest.PendingPod(name, cpu).Label("app", "web").SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule, web, nil, nil, nil, nil)
	}
	hostSpread := func(name, cpu string) *st.PodWrapper {
		return plantest.PendingPod(name, cpu).Label("app", "web").SpreadConstraint(1, v1.LabelHostname, v1.DoNotSchedule, web, nil, nil, nil, nil)
	}
	tests := []struct {
		name string
		pods []*v1.Pod
	}{
		{
			// The zone-spread pods, larger, are placed first, one per zone; the node-spread
			// pods each need a node of their own, cheapest in us-east-1a: a second one there
			// would leave us-east-1a with 3 app=web pods, 2 above the other zones, and its
			// zone-spread pod turned away.
			name: "node-spread pods into the zone of a zone-spread pod",
			pods: func() []*v1.Pod {
				var pods []*v1.Pod
				for i := range 3 {
					pods = append(pods, zoneSpread(fmt.Sprintf("zone-%d", i), "1500m").Obj(), hostSpread(fmt.Sprintf("host-%d", i), "500m").Obj())
				}
				return pods
			}(),
		},
		{
			// The node-spread pods, larger, are placed first, one per zone as their node
			// selectors say, each on a t3a.medium with 400m left; a zone-spread pod fits
			// there by its own constraint (1 app=web pod in every zone), but a second
			// app=web pod on the node would turn the node-spread pod away: 2 - 0 > 1, the
			// node of the other pod, with no app=web pod, the minimum.
			name: "a zone-spread pod onto the node of a node-spread pod",
			pods: func() []*v1.Pod {
				pods := []*v1.Pod{plantest.PendingPod("other", "1800m").Obj()}
				for i, zone := range plantest.Zones {
					pods = append(pods, hostSpread(fmt.Sprintf("host-%d", i), "1500m").NodeSelector(map[string]string{v1.LabelTopologyZone: zone}).Obj(),
						zoneSpread(fmt.Sprintf("zone-%d", i), "300m").Obj())
				}
				return pods
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			in := planInput(tt.pods, plantest.Provisioner("default", spotOnly))
			plan, err := Plan(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range plan.Unplanned {
				t.Errorf("pod %s unplanned: %s", u.Pod.Name, u.Message())
			}
			nodes, all := registered(rand.New(rand.NewPCG(1, 2)), plan.Nodes)
			for _, n := range plan.Nodes {
				for _, p := range n.Pods {
					if msg := rejection(ctx, t, DefaultFrameworkFactory(nil, nil), p, n.Name, nodes, all); msg != "" {
						t.Errorf("pod %s rejected on %s (%s): %s", p.Name, n.Name, n.Template.Key, msg)
					}
				}
			}
		})
	}
}
