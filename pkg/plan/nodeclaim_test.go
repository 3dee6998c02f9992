package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// userRequirements returns nc's requirements on keys of the user's.
func userRequirements(nc *v1alpha1.NodeClaim) []v1alpha1.NodeSelectorRequirement {
	var out []v1alpha1.NodeSelectorRequirement
	for _, r := range nc.Spec.Requirements {
		if v1alpha1.IsUserLabel(r.Key) {
			out = append(out, r)
		}
	}
	return out
}

// withSpec returns a spot Provisioner "default" with labels and requirements reqs.
func withSpec(labels map[string]v1alpha1.LabelValue, reqs ...v1alpha1.NodeSelectorRequirement) *v1alpha1.Provisioner {
	return plantest.Provisioner("default", func(p *v1alpha1.Provisioner) {
		p.Spec.Labels = labels
		p.Spec.Requirements = append([]v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelCapacityType, in, "spot")}, reqs...)
	})
}

// nodeClaimLabelsCase is a case of TestNodeClaimForLabels.
type nodeClaimLabelsCase struct {
	name string
	prov *v1alpha1.Provisioner
	pods []*v1.Pod
	// want are the requirements on keys of the user's of each planned node's claim.
	want [][]v1alpha1.NodeSelectorRequirement
}

// nodeClaimLabelsCases are the cases of TestNodeClaimForLabels.
var nodeClaimLabelsCases = []nodeClaimLabelsCase{
	{
		name: "no labels",
		prov: withSpec(nil), pods: []*v1.Pod{plantest.PendingPod("a", "1").Obj()},
		want: [][]v1alpha1.NodeSelectorRequirement{nil},
	},
	{
		name: "the Provisioner's labels and single-valued requirement, sorted by key",
		prov: withSpec(map[string]v1alpha1.LabelValue{"team": "a", "example.com/pool": "x"}, req("tier", in, "1")),
		pods: []*v1.Pod{plantest.PendingPod("a", "1").NodeAffinityIn("team", []string{"a", "b"}, st.NodeSelectorTypeMatchExpressions).Obj()},
		want: [][]v1alpha1.NodeSelectorRequirement{{req("example.com/pool", in, "x"), req("team", in, "a"), req("tier", in, "1")}},
	},
	{
		// Pods of either value on a node of their value; a pod that selects none goes
		// on the first node, of the larger pod.
		name: "a requirement with two values narrowed to the value of each node's pods",
		prov: withSpec(nil, req("team", in, "a", "b")),
		pods: []*v1.Pod{
			plantest.PendingPod("b", "2").NodeSelector(map[string]string{"team": "b"}).Obj(),
			plantest.PendingPod("a", "1").NodeSelector(map[string]string{"team": "a"}).Obj(),
			plantest.PendingPod("any", "500m").Obj(),
		},
		want: [][]v1alpha1.NodeSelectorRequirement{{req("team", in, "b")}, {req("team", in, "a")}},
	},
	{
		name: "Exists narrowed to a value",
		prov: withSpec(nil, req("team", v1.NodeSelectorOpExists)), pods: []*v1.Pod{plantest.PendingPod("a", "1").Obj()},
		want: [][]v1alpha1.NodeSelectorRequirement{{req("team", in, "0")}},
	},
	{
		name: "NotIn kept without a label, or narrowed to the value a pod selects",
		prov: withSpec(nil, req("team", notIn, "a")),
		pods: []*v1.Pod{plantest.PendingPod("c", "2").NodeSelector(map[string]string{"team": "c"}).Obj(), plantest.PendingPod("any", "1").Obj(),
			plantest.PendingPod("no-c", "1").NodeAffinityNotIn("team", []string{"c"}).Obj()},
		want: [][]v1alpha1.NodeSelectorRequirement{{req("team", in, "c")}, {req("team", notIn, "a")}},
	},
}

// TestNodeClaimForLabels: the labels of the user's a planned node carries are on its
// NodeClaim as single-valued In requirements, in place of the Provisioner's requirements on
// their keys; a requirement that leaves the node without the label stays as it is.
func TestNodeClaimForLabels(t *testing.T) {
	tests := nodeClaimLabelsCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			plan, err := Plan(ctx, planInput(tt.pods, tt.prov))
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Unplanned) > 0 {
				t.Fatalf("unplanned: %s", plan.Unplanned[0].Message())
			}
			var got [][]v1alpha1.NodeSelectorRequirement
			for _, n := range plan.Nodes {
				nc := NodeClaimFor(n)
				got = append(got, userRequirements(nc))
				// What the claim says is what the plan judged the pods on.
				labels := v1alpha1.RequirementLabels(nc.Spec.Requirements, v1alpha1.IsUserLabel)
				if diff := cmp.Diff(n.Template.UserLabels(), labels); diff != "" {
					t.Errorf("node %s: labels of the claim (-template, +claim):\n%s", n.Name, diff)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requirements on keys of the user's, by node (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestPlanIntoInFlightRoomWithLabels: the spare room of a launched node is judged with the
// labels its claim was planned with: a pod that excludes them gets a new node.
func TestPlanIntoInFlightRoomWithLabels(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	prov := plantest.Provisioner("default", spotOnly, func(p *v1alpha1.Provisioner) {
		p.Spec.Requirements = append(p.Spec.Requirements, req("team", v1.NodeSelectorOpIn, "a", "b"))
	})
	pods := []*v1.Pod{
		plantest.PendingPod("not-a", "1").NodeAffinityNotIn("team", []string{"a"}).Obj(),
		plantest.PendingPod("a", "1").NodeSelector(map[string]string{"team": "a"}).Obj(),
	}
	in := launchedInput(pods, nil, "t3a.xlarge", nil, prov)
	nc := plantest.Claim("c1", "node-1")
	nc.Spec.Provisioner = prov.Name
	nc.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{
		req(v1.LabelTopologyZone, v1.NodeSelectorOpIn, "us-east-1b"), req(v1alpha1.LabelCapacityType, v1.NodeSelectorOpIn, "spot"),
		req("team", v1.NodeSelectorOpIn, "a"),
	}
	in.Nodes = []*v1.Node{StandIn(nc, "node-1", in.Region)}
	in.Launched[0].Labels = map[string]string{"team": "a"}
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"c1": {"a"}}, addedNames(plan)); diff != "" {
		t.Errorf("pods added to in-flight claims (-want, +got):\n%s", diff)
	}
	var teams []string
	for _, n := range plan.Nodes {
		teams = append(teams, n.Template.Node().Labels["team"]+":"+strings.Join(podNames(n.Pods), ","))
	}
	if diff := cmp.Diff([]string{"b:not-a"}, teams); diff != "" {
		t.Errorf("new nodes, team:pods (-want, +got):\n%s", diff)
	}
}

// podNames returns the names of pods, sorted.
func podNames(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}
