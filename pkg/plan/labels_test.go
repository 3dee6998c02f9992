package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// req is a requirement on key.
func req(key string, op v1.NodeSelectorOperator, values ...string) v1alpha1.NodeSelectorRequirement {
	return v1alpha1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

// The operators of chooseLabelCases, short.
const in, notIn, exists, doesNotExist, gt, lt = v1.NodeSelectorOpIn, v1.NodeSelectorOpNotIn, v1.NodeSelectorOpExists,
	v1.NodeSelectorOpDoesNotExist, v1.NodeSelectorOpGt, v1.NodeSelectorOpLt

// chooseLabelCase is a case of TestChooseLabel.
type chooseLabelCase struct {
	name string
	// prov are the Provisioner's requirements on "team", term the pod's.
	prov, term []v1alpha1.NodeSelectorRequirement
	want       string
	wantHas    bool
	wantOK     bool
}

// chooseLabelCases are the cases of TestChooseLabel.
var chooseLabelCases = []chooseLabelCase{
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

func TestChooseLabel(t *testing.T) {
	tests := chooseLabelCases
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
		{name: "a pod that selects none of them", pod: plantest.PendingPod("p", "1").Obj(), want: []map[string]string{{"team": "a", "pool": "0"}}},
		{
			name: "the node selector",
			pod:  plantest.PendingPod("p", "1").NodeSelector(map[string]string{"team": "b", "pool": "x"}).Obj(),
			want: []map[string]string{{"team": "b", "pool": "x"}},
		},
		{
			name: "one choice per term of the node affinity, the node selector in each",
			pod: plantest.PendingPod("p", "1").NodeSelector(map[string]string{"pool": "x"}).NodeAffinity(&v1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: st.MakeNodeSelector().
					In("team", []string{"b"}, st.NodeSelectorTypeMatchExpressions).
					In("team", []string{"a", "b"}, st.NodeSelectorTypeMatchExpressions).
					In("team", []string{"c"}, st.NodeSelectorTypeMatchExpressions).Obj(),
			}).Obj(),
			// The last term selects a value the Provisioner does not allow.
			want: []map[string]string{{"team": "b", "pool": "x"}, {"team": "a", "pool": "x"}},
		},
		{name: "no value fits", pod: plantest.PendingPod("p", "1").NodeSelector(map[string]string{"team": "c"}).Obj()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chosenLabels(open, tt.pod)); diff != "" {
				t.Errorf("chosenLabels (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestPlanOpenLabels: a DaemonSet that selects one value of a label the Provisioner leaves
// open sizes only the nodes with that value, and a pod the Provisioner's labels exclude is
// told which one.
func TestPlanOpenLabels(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	prov := plantest.Provisioner("default", spotOnly, func(p *v1alpha1.Provisioner) {
		p.Spec.Labels = map[string]v1alpha1.LabelValue{"tier": "1"}
		p.Spec.Requirements = append(p.Spec.Requirements, req("team", v1.NodeSelectorOpIn, "a", "b"))
	})
	agent := plantest.DaemonSet("agent", "3")
	agent.Spec.Template.Spec.NodeSelector = map[string]string{"team": "b"}
	pods := []*v1.Pod{
		plantest.PendingPod("a", "1").NodeSelector(map[string]string{"team": "a"}).Obj(),
		plantest.PendingPod("b", "1").NodeSelector(map[string]string{"team": "b"}).Obj(),
		plantest.PendingPod("other-tier", "1").NodeAffinityNotIn("tier", []string{"1"}).Obj(),
		plantest.PendingPod("c", "1").NodeSelector(map[string]string{"team": "c"}).Obj(),
	}
	in := planInput(pods, prov)
	in.DaemonSets = []*appsv1.DaemonSet{agent}
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range plan.Nodes {
		got[n.Template.Node().Labels["team"]] = n.Template.InstanceType.Name
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
