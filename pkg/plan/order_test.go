package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
)

// affineTo returns a pending pod of app that requires, by topologyKey, to be with a pod of
// target ("" for none).
func affineTo(name, app, target, topologyKey, cpu string) *v1.Pod {
	w := plantest.PendingPod(name, cpu).Label("app", app)
	if target != "" {
		w = w.PodAffinityIn("app", topologyKey, []string{target}, st.PodAffinityWithRequiredReq)
	}
	return w.Obj()
}

// inOrder returns the names of pods, in order.
func inOrder(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestAffinityTargetsFirst(t *testing.T) {
	tests := []struct {
		name string
		pods []*v1.Pod
		want []string
	}{
		{
			name: "no affinity: order kept",
			pods: []*v1.Pod{affineTo("a", "x", "", "", "1"), affineTo("b", "y", "", "", "1")},
			want: []string{"a", "b"},
		},
		{
			name: "a chain listed backwards comes out target first",
			pods: []*v1.Pod{
				affineTo("ui", "ui", "cache", v1.LabelHostname, "1"), affineTo("cache", "cache", "web", v1.LabelHostname, "1"),
				affineTo("web", "web", "db", v1.LabelHostname, "1"), affineTo("db", "db", "", "", "1"),
			},
			want: []string{"db", "web", "cache", "ui"},
		},
		{
			name: "pods that select each other keep their order",
			pods: []*v1.Pod{
				affineTo("a", "a", "b", v1.LabelHostname, "1"), affineTo("b", "b", "a", v1.LabelHostname, "1"), affineTo("c", "c", "", "", "1"),
			},
			want: []string{"c", "a", "b"},
		},
		{
			name: "a target not in the plan holds nothing back",
			pods: []*v1.Pod{affineTo("web", "web", "db", v1.LabelTopologyZone, "1"), affineTo("x", "x", "", "", "1")},
			want: []string{"web", "x"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, inOrder(affinityTargetsFirst(tc.pods))); diff != "" {
				t.Errorf("order (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestApartFirst: the pods whose hostname anti-affinity selects themselves come first, in
// their order; a pod whose anti-affinity selects only others stays where it was.
func TestApartFirst(t *testing.T) {
	apart := func(name, app string) *v1.Pod {
		return plantest.PendingPod(name, "1").Label("app", app).
			PodAntiAffinity(v1.LabelHostname, st.MakeLabelSelector().Label("app", "nginx").Obj(), st.PodAntiAffinityWithRequiredReq).Obj()
	}
	pods := []*v1.Pod{affineTo("web-1", "web", "", "", "2"), apart("nginx-1", "nginx"), apart("shy", "shy"),
		affineTo("web-2", "web", "", "", "2"), apart("nginx-2", "nginx")}
	if diff := cmp.Diff([]string{"nginx-1", "nginx-2", "web-1", "shy", "web-2"}, inOrder(apartFirst(pods, apartKey))); diff != "" {
		t.Errorf("order (-want, +got):\n%s", diff)
	}
}

// TestPlanAffinityChain: db <- web <- cache <- ui, each requiring a node with a pod of the one
// before it, listed so that largest-first order plans ui first. All four are planned onto one
// node in one plan, which grows past the smallest type to hold them: 4 x 600m = 2.4 cpu >
// t3a.medium's 1.9.
func TestPlanAffinityChain(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pods := []*v1.Pod{
		affineTo("a-ui", "ui", "cache", v1.LabelHostname, "600m"), affineTo("b-cache", "cache", "web", v1.LabelHostname, "600m"),
		affineTo("c-web", "web", "db", v1.LabelHostname, "600m"), affineTo("d-db", "db", "", "", "600m"),
	}
	plan, err := Plan(ctx, planInput(pods, plantest.Provisioner("default", spotOnly)))
	if err != nil {
		t.Fatal(err)
	}
	var got []placement
	for _, n := range plan.Nodes {
		got = append(got, placement{n.Template.InstanceType.Name, n.Template.Offering.Zone, n.Template.Offering.CapacityType, len(n.Pods)})
	}
	if diff := cmp.Diff([]placement{{"t3a.xlarge", "us-east-1a", "spot", 4}}, got); diff != "" {
		t.Errorf("plan (-want, +got):\n%s", diff)
	}
	for _, u := range plan.Unplanned {
		t.Errorf("pod %s unplanned: %s", u.Pod.Name, u.Message())
	}
}
