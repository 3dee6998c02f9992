package provision

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// req is a requirement on key.
func req(key string, op v1.NodeSelectorOperator, values ...string) v1alpha1.NodeSelectorRequirement {
	return v1alpha1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestChooseLabel(t *testing.T) {
	const in, notIn, exists, doesNotExist, gt, lt = v1.NodeSelectorOpIn, v1.NodeSelectorOpNotIn, v1.NodeSelectorOpExists,
		v1.NodeSelectorOpDoesNotExist, v1.NodeSelectorOpGt, v1.NodeSelectorOpLt
	tests := []struct {
		name string
		// prov are the Provisioner's requirements on "team", term the pod's.
		prov, term []v1alpha1.NodeSelectorRequirement
		want       string
		wantHas    bool
		wantOK     bool
	}{
		{name: "In: its first value", prov: []v1alpha1.NodeSelectorRequirement{req("team", in, "a", "b")}, want: "a", wantHas: true, wantOK: true},
		{
			name: "In: the value the pod selects",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", in, "a", "b")}, term: []v1alpha1.NodeSelectorRequirement{req("team", in, "c", "b")},
			want: "b", wantHas: true, wantOK: true,
		},
		{
			name: "In: a value the pod does not exclude",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", in, "a", "b")}, term: []v1alpha1.NodeSelectorRequirement{req("team", notIn, "a")},
			want: "b", wantHas: true, wantOK: true,
		},
		{
			name: "In: the pod selects another value",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", in, "a", "b")}, term: []v1alpha1.NodeSelectorRequirement{req("team", in, "c")},
		},
		{
			name: "In: the pod wants no label",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", in, "a", "b")}, term: []v1alpha1.NodeSelectorRequirement{req("team", doesNotExist)},
		},
		{
			name: "requirements on other keys do not count",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", in, "a", "b")}, term: []v1alpha1.NodeSelectorRequirement{req("pool", in, "b")},
			want: "a", wantHas: true, wantOK: true,
		},
		{
			name: "Exists: the value the pod selects",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", exists)}, term: []v1alpha1.NodeSelectorRequirement{req("team", in, "x")},
			want: "x", wantHas: true, wantOK: true,
		},
		{name: "Exists alone: 0", prov: []v1alpha1.NodeSelectorRequirement{req("team", exists)}, want: "0", wantHas: true, wantOK: true},
		{
			name: "Exists: the smallest integer not excluded",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", exists)}, term: []v1alpha1.NodeSelectorRequirement{req("team", notIn, "0", "1")},
			want: "2", wantHas: true, wantOK: true,
		},
		{name: "NotIn alone: no label", prov: []v1alpha1.NodeSelectorRequirement{req("team", notIn, "a")}, wantOK: true},
		{
			name: "NotIn: a value the pod selects and the Provisioner allows",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", notIn, "a")}, term: []v1alpha1.NodeSelectorRequirement{req("team", in, "a", "b")},
			want: "b", wantHas: true, wantOK: true,
		},
		{
			name: "NotIn with a pod that needs the label",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", notIn, "0")}, term: []v1alpha1.NodeSelectorRequirement{req("team", exists)},
			want: "1", wantHas: true, wantOK: true,
		},
		// 4 < v: 5.
		{name: "Gt", prov: []v1alpha1.NodeSelectorRequirement{req("team", gt, "4")}, want: "5", wantHas: true, wantOK: true},
		// 4 < v < 5: none.
		{name: "Gt and Lt exclude every integer", prov: []v1alpha1.NodeSelectorRequirement{req("team", gt, "4"), req("team", lt, "5")}},
		{name: "DoesNotExist: no label", prov: []v1alpha1.NodeSelectorRequirement{req("team", doesNotExist)}, wantOK: true},
		{
			name: "DoesNotExist with a pod that selects the label",
			prov: []v1alpha1.NodeSelectorRequirement{req("team", doesNotExist)}, term: []v1alpha1.NodeSelectorRequirement{req("team", in, "a")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value, has, ok := chooseLabel("team", tt.prov, tt.term)
			if value != tt.want || has != tt.wantHas || ok != tt.wantOK {
				t.Errorf("chooseLabel = %q, %v, %v; want %q, %v, %v", value, has, ok, tt.want, tt.wantHas, tt.wantOK)
			}
		})
	}
}

func TestChosenLabels(t *testing.T) {
	open := map[string][]v1alpha1.NodeSelectorRequirement{
		"team": {req("team", v1.NodeSelectorOpIn, "a", "b")},
		"pool": {req("pool", v1.NodeSelectorOpExists)},
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		want []map[string]string
	}{
		{name: "a pod that selects none of them", pod: pendingPod("p", "1").Obj(), want: []map[string]string{{"team": "a", "pool": "0"}}},
		{
			name: "the node selector",
			pod:  pendingPod("p", "1").NodeSelector(map[string]string{"team": "b", "pool": "x"}).Obj(),
			want: []map[string]string{{"team": "b", "pool": "x"}},
		},
		{
			name: "one choice per term of the node affinity, the node selector in each",
			pod: pendingPod("p", "1").NodeSelector(map[string]string{"pool": "x"}).NodeAffinity(&v1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: st.MakeNodeSelector().
					In("team", []string{"b"}, st.NodeSelectorTypeMatchExpressions).
					In("team", []string{"a", "b"}, st.NodeSelectorTypeMatchExpressions).
					In("team", []string{"c"}, st.NodeSelectorTypeMatchExpressions).Obj(),
			}).Obj(),
			// The last term selects a value the Provisioner does not allow.
			want: []map[string]string{{"team": "b", "pool": "x"}, {"team": "a", "pool": "x"}},
		},
		{name: "no value fits", pod: pendingPod("p", "1").NodeSelector(map[string]string{"team": "c"}).Obj()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chosenLabels(open, tt.pod)); diff != "" {
				t.Errorf("chosenLabels (-want, +got):\n%s", diff)
			}
		})
	}
}

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

// TestNodeClaimForLabels: the labels of the user's a planned node carries are on its
// NodeClaim as single-valued In requirements, in place of the Provisioner's requirements on
// their keys; a requirement that leaves the node without the label stays as it is.
func TestNodeClaimForLabels(t *testing.T) {
	const in, notIn = v1.NodeSelectorOpIn, v1.NodeSelectorOpNotIn
	withSpec := func(labels map[string]v1alpha1.LabelValue, reqs ...v1alpha1.NodeSelectorRequirement) *v1alpha1.Provisioner {
		return provisioner("default", func(p *v1alpha1.Provisioner) {
			p.Spec.Labels = labels
			p.Spec.Requirements = append([]v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelCapacityType, in, "spot")}, reqs...)
		})
	}
	tests := []struct {
		name string
		prov *v1alpha1.Provisioner
		pods []*v1.Pod
		// want are the requirements on keys of the user's of each planned node's claim.
		want [][]v1alpha1.NodeSelectorRequirement
	}{
		{
			name: "no labels",
			prov: withSpec(nil), pods: []*v1.Pod{pendingPod("a", "1").Obj()},
			want: [][]v1alpha1.NodeSelectorRequirement{nil},
		},
		{
			name: "the Provisioner's labels and single-valued requirement, sorted by key",
			prov: withSpec(map[string]v1alpha1.LabelValue{"team": "a", "example.com/pool": "x"}, req("tier", in, "1")),
			pods: []*v1.Pod{pendingPod("a", "1").NodeAffinityIn("team", []string{"a", "b"}, st.NodeSelectorTypeMatchExpressions).Obj()},
			want: [][]v1alpha1.NodeSelectorRequirement{{req("example.com/pool", in, "x"), req("team", in, "a"), req("tier", in, "1")}},
		},
		{
			// Pods of either value on a node of their value; a pod that selects none goes
			// on the first node, of the larger pod.
			name: "a requirement with two values narrowed to the value of each node's pods",
			prov: withSpec(nil, req("team", in, "a", "b")),
			pods: []*v1.Pod{
				pendingPod("b", "2").NodeSelector(map[string]string{"team": "b"}).Obj(),
				pendingPod("a", "1").NodeSelector(map[string]string{"team": "a"}).Obj(),
				pendingPod("any", "500m").Obj(),
			},
			want: [][]v1alpha1.NodeSelectorRequirement{{req("team", in, "b")}, {req("team", in, "a")}},
		},
		{
			name: "Exists narrowed to a value",
			prov: withSpec(nil, req("team", v1.NodeSelectorOpExists)), pods: []*v1.Pod{pendingPod("a", "1").Obj()},
			want: [][]v1alpha1.NodeSelectorRequirement{{req("team", in, "0")}},
		},
		{
			name: "NotIn kept without a label, or narrowed to the value a pod selects",
			prov: withSpec(nil, req("team", notIn, "a")),
			pods: []*v1.Pod{pendingPod("c", "2").NodeSelector(map[string]string{"team": "c"}).Obj(), pendingPod("any", "1").Obj(),
				pendingPod("no-c", "1").NodeAffinityNotIn("team", []string{"c"}).Obj()},
			want: [][]v1alpha1.NodeSelectorRequirement{{req("team", in, "c")}, {req("team", notIn, "a")}},
		},
	}
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
				if diff := cmp.Diff(n.Template.userLabels(), labels); diff != "" {
					t.Errorf("node %s: labels of the claim (-template, +claim):\n%s", n.Name, diff)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requirements on keys of the user's, by node (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestPlanOpenLabels: a DaemonSet that selects one value of a label the Provisioner leaves
// open sizes only the nodes with that value, and a pod the Provisioner's labels exclude is
// told which one.
func TestPlanOpenLabels(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	prov := provisioner("default", spotOnly, func(p *v1alpha1.Provisioner) {
		p.Spec.Labels = map[string]v1alpha1.LabelValue{"tier": "1"}
		p.Spec.Requirements = append(p.Spec.Requirements, req("team", v1.NodeSelectorOpIn, "a", "b"))
	})
	agent := daemonSet("agent", "3")
	agent.Spec.Template.Spec.NodeSelector = map[string]string{"team": "b"}
	pods := []*v1.Pod{
		pendingPod("a", "1").NodeSelector(map[string]string{"team": "a"}).Obj(),
		pendingPod("b", "1").NodeSelector(map[string]string{"team": "b"}).Obj(),
		pendingPod("other-tier", "1").NodeAffinityNotIn("tier", []string{"1"}).Obj(),
		pendingPod("c", "1").NodeSelector(map[string]string{"team": "c"}).Obj(),
	}
	in := planInput(pods, prov)
	in.DaemonSets = []*appsv1.DaemonSet{agent}
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range plan.Nodes {
		got[n.Template.Node.Labels["team"]] = n.Template.InstanceType.Name
	}
	// team=a: 1 cpu <= t3a.medium's 1.9; team=b: 1 + 3 of the agent > t3a.xlarge's 3.9.
	if diff := cmp.Diff(map[string]string{"a": "t3a.medium", "b": "t3a.2xlarge"}, got); diff != "" {
		t.Errorf("instance type by team (-want, +got):\n%s", diff)
	}
	want := map[string]string{
		"other-tier": `provisioner "default": label tier=1 conflicts with the pod's node selector or affinity`,
		"c":          `provisioner "default": requirement team In [a b] conflicts with the pod's node selector or affinity`,
	}
	unplanned := map[string]string{}
	for _, u := range plan.Unplanned {
		unplanned[u.Pod.Name] = u.Message()
		if u.Resolvable {
			t.Errorf("pod %s: unplanned as resolvable, want static", u.Pod.Name)
		}
	}
	if diff := cmp.Diff(want, unplanned); diff != "" {
		t.Errorf("unplanned pods (-want, +got):\n%s", diff)
	}
}

// TestPlanIntoInFlightRoomWithLabels: the spare room of a launched node is judged with the
// labels its claim was planned with: a pod that excludes them gets a new node.
func TestPlanIntoInFlightRoomWithLabels(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	prov := provisioner("default", spotOnly, func(p *v1alpha1.Provisioner) {
		p.Spec.Requirements = append(p.Spec.Requirements, req("team", v1.NodeSelectorOpIn, "a", "b"))
	})
	pods := []*v1.Pod{
		pendingPod("not-a", "1").NodeAffinityNotIn("team", []string{"a"}).Obj(),
		pendingPod("a", "1").NodeSelector(map[string]string{"team": "a"}).Obj(),
	}
	in := inFlightInput(pods, nil, "t3a.xlarge", nil, prov)
	nc := claim("c1", "node-1")
	nc.Spec.Provisioner = prov.Name
	nc.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{
		req(v1.LabelTopologyZone, v1.NodeSelectorOpIn, "us-east-1b"), req(v1alpha1.LabelCapacityType, v1.NodeSelectorOpIn, "spot"),
		req("team", v1.NodeSelectorOpIn, "a"),
	}
	in.Nodes = []*v1.Node{inFlightNode(nc, "node-1", in.Region)}
	in.InFlight[0].Labels = map[string]string{"team": "a"}
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"c1": {"a"}}, addedNames(plan)); diff != "" {
		t.Errorf("pods added to in-flight claims (-want, +got):\n%s", diff)
	}
	var teams []string
	for _, n := range plan.Nodes {
		teams = append(teams, n.Template.Node.Labels["team"]+":"+strings.Join(podNames(n.Pods), ","))
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
