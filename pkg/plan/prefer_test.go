package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// spotPrices sets it's spot price in the zones of prices.
func spotPrices(it *cloud.InstanceType, prices map[string]float64) *cloud.InstanceType {
	for i, o := range it.Offerings {
		if p, ok := prices[o.Zone]; ok && o.CapacityType == v1alpha1.CapacityTypeSpot {
			it.Offerings[i].Price = p
		}
	}
	return it
}

// preferZones gives the pod a preferred node affinity term of weight w per zone list.
func preferZones(pod *st.PodWrapper, terms map[int32][]string) *st.PodWrapper {
	a := &v1.NodeAffinity{}
	for w, zones := range terms {
		a.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PreferredDuringSchedulingIgnoredDuringExecution, v1.PreferredSchedulingTerm{
			Weight: w, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: zones}}},
		})
	}
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &v1.Affinity{}
	}
	pod.Spec.Affinity.NodeAffinity = a
	return pod
}

// impossible is a zone no template is in.
const impossible = "us-west-2a"

// preferredPods returns n pods requesting cpu each, preferring zones by terms.
func preferredPods(n int, cpu string, terms map[int32][]string) []*v1.Pod {
	out := pods(n, cpu)
	for i, pod := range out {
		out[i] = preferZones(&st.PodWrapper{Pod: *pod}, terms).Obj()
	}
	return out
}

// taintedBy gives a Provisioner a PreferNoSchedule taint.
func taintedBy(key string) func(*v1alpha1.Provisioner) {
	return func(p *v1alpha1.Provisioner) {
		p.Spec.Taints = append(p.Spec.Taints, v1alpha1.Taint{Key: key, Effect: v1.TaintEffectPreferNoSchedule})
	}
}

// prefPlacement is a planned node of TestPlanPreferences: its Provisioner, type, zone and
// number of pods.
type prefPlacement struct {
	Provisioner, Type, Zone string
	Pods                    int
}

// xlargeOnly lets a Provisioner launch t3a.xlarge only.
func xlargeOnly(p *v1alpha1.Provisioner) {
	p.Spec.Requirements = append(p.Spec.Requirements, v1alpha1.NodeSelectorRequirement{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"t3a.xlarge"}})
}

// tolerates makes a pod tolerate the taint key.
func tolerates(key string) func(*st.PodWrapper) *st.PodWrapper {
	return func(p *st.PodWrapper) *st.PodWrapper {
		return p.Toleration(key)
	}
}

// preferenceCase is a case of TestPlanPreferences.
type preferenceCase struct {
	name  string
	pods  []*v1.Pod
	provs []*v1alpha1.Provisioner
	// types replaces the catalog when not nil.
	types []*cloud.InstanceType
	want  []prefPlacement
}

// preferenceCases are the cases of TestPlanPreferences.
var preferenceCases = []preferenceCase{
	{
		name:  "no preferences: the cheapest zone",
		pods:  pods(3, "1"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []prefPlacement{{"default", "t3a.xlarge", "us-east-1a", 3}},
	},
	{
		// NodeAffinity raw scores: 1b 80+20 = 100, 1c 20 (beyond the tolerance), 1a 0;
		// the impossible term scores 0 everywhere. The node grows from t3a.medium to
		// t3a.xlarge in 1b, 0.046 <= 0.045 x 1.1: it is not moved to 1a.
		name:  "pods preferring us-east-1b, weighted terms, one impossible -> us-east-1b",
		pods:  preferredPods(3, "1", map[int32][]string{80: {"us-east-1b"}, 20: {"us-east-1b", "us-east-1c"}, 100: {impossible}}),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []prefPlacement{{"default", "t3a.xlarge", "us-east-1b", 3}},
	},
	{
		name:  "only an impossible preference: as without preferences",
		pods:  preferredPods(3, "1", map[int32][]string{100: {impossible}}),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []prefPlacement{{"default", "t3a.xlarge", "us-east-1a", 3}},
	},
	{
		// 1c's t3a.medium is 16.7% dearer than 1a's: the weight-90 term relaxes, the
		// weight-10 one, within the tolerance, is met.
		name:  "the heavier preference beyond the tolerance, the lighter within -> the lighter",
		pods:  preferredPods(1, "1", map[int32][]string{90: {"us-east-1c"}, 10: {"us-east-1b"}}),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []prefPlacement{{"default", "t3a.medium", "us-east-1b", 1}},
	},
	{
		name:  "a preferred zone far dearer than the tolerance -> the cheapest zone",
		pods:  preferredPods(1, "1", map[int32][]string{100: {"us-east-1b"}}),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		types: []*cloud.InstanceType{spotPrices(plantest.InstanceType("t3a.medium", "amd64", 2, 4, 0.012, 0.0376),
			map[string]float64{"us-east-1b": 0.02})},
		want: []prefPlacement{{"default", "t3a.medium", "us-east-1a", 1}},
	},
	{
		// t3a.medium costs the same in both zones, but the 3 pods need a t3a.xlarge,
		// whose 1b offering is 50% dearer than 1a's: the grown node is rehomed.
		name:  "a node that grows past the tolerance in its preferred zone -> rehomed to the cheapest",
		pods:  preferredPods(3, "1", map[int32][]string{100: {"us-east-1b"}}),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		types: []*cloud.InstanceType{
			spotPrices(plantest.InstanceType("t3a.medium", "amd64", 2, 4, 0.012, 0.0376), map[string]float64{"us-east-1b": 0.012}),
			spotPrices(plantest.InstanceType("t3a.xlarge", "amd64", 4, 16, 0.045, 0.1504), map[string]float64{"us-east-1b": 0.0675}),
		},
		want: []prefPlacement{{"default", "t3a.xlarge", "us-east-1a", 3}},
	},
	{
		// Both Provisioners weigh the same and "a-soft" comes first by name; "b-plain"
		// costs the same and has no taint the pod does not tolerate.
		name:  "a PreferNoSchedule taint not tolerated -> the other Provisioner",
		pods:  pods(1, "1"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("a-soft", spotOnly, taintedBy("example.com/soft")), plantest.Provisioner("b-plain", spotOnly)},
		want:  []prefPlacement{{"b-plain", "t3a.medium", "us-east-1a", 1}},
	},
	{
		name:  "a PreferNoSchedule taint tolerated -> the first Provisioner",
		pods:  []*v1.Pod{tolerates("example.com/soft")(plantest.PendingPod("a", "1")).Obj()},
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("a-soft", spotOnly, taintedBy("example.com/soft")), plantest.Provisioner("b-plain", spotOnly)},
		want:  []prefPlacement{{"a-soft", "t3a.medium", "us-east-1a", 1}},
	},
	{
		name: "a PreferNoSchedule taint of a heavier Provisioner: its weight outranks the preference",
		pods: pods(1, "1"),
		provs: []*v1alpha1.Provisioner{
			plantest.Provisioner("a-soft", spotOnly, taintedBy("example.com/soft"), func(p *v1alpha1.Provisioner) { p.Spec.Weight = ptr.To[int32](10) }),
			plantest.Provisioner("b-plain", spotOnly),
		},
		want: []prefPlacement{{"a-soft", "t3a.medium", "us-east-1a", 1}},
	},
	{
		// Three nodes are needed (a t3a.xlarge holds one 3-cpu pod): each one's zone is
		// scored with the pods planned before it in place.
		name: "preferred zone anti-affinity -> one node per zone within the tolerance",
		pods: func() []*v1.Pod {
			var out []*v1.Pod
			for _, p := range pods(3, "3") {
				out = append(out, (&st.PodWrapper{Pod: *p}).Label("app", "web").
					PodAntiAffinity(v1.LabelTopologyZone, st.MakeLabelSelector().Label("app", "web").Obj(), st.PodAntiAffinityWithPreferredReq).Obj())
			}
			return out
		}(),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly, xlargeOnly)},
		want: []prefPlacement{{"default", "t3a.xlarge", "us-east-1a", 1}, {"default", "t3a.xlarge", "us-east-1b", 1},
			{"default", "t3a.xlarge", "us-east-1c", 1}},
	},
	{
		name: "ScheduleAnyway spread over zones -> one node per zone within the tolerance",
		pods: func() []*v1.Pod {
			var out []*v1.Pod
			for _, p := range pods(3, "3") {
				out = append(out, (&st.PodWrapper{Pod: *p}).Label("app", "web").
					SpreadConstraint(1, v1.LabelTopologyZone, v1.ScheduleAnyway, st.MakeLabelSelector().Label("app", "web").Obj(), nil, nil, nil, nil).Obj())
			}
			return out
		}(),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly, xlargeOnly)},
		want: []prefPlacement{{"default", "t3a.xlarge", "us-east-1a", 1}, {"default", "t3a.xlarge", "us-east-1b", 1},
			{"default", "t3a.xlarge", "us-east-1c", 1}},
	},
}

// TestPlanPreferences: a new node is opened where its first pod's preferences score best
// among the templates that accept it, priced within PreferenceTolerance (10%) of the one
// price alone chooses, and stays there as it grows while its preferred offering stays in
// that tolerance. Spot t3a.medium costs 0.012 in us-east-1a, 0.013 (+8.3%) in us-east-1b and
// 0.014 (+16.7%) in us-east-1c; t3a.xlarge 0.045, 0.046 (+2.2%) and 0.047 (+4.4%) (see
// instanceType).
func TestPlanPreferences(t *testing.T) {
	tests := preferenceCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			in := planInput(tt.pods, tt.provs...)
			if tt.types != nil {
				for _, p := range tt.provs {
					in.InstanceTypes[p.Name] = tt.types
				}
			}
			plan, err := Plan(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Unplanned) > 0 {
				t.Errorf("%d pods unplanned: %s", len(plan.Unplanned), plan.Unplanned[0].Message())
			}
			var got []prefPlacement
			for _, n := range plan.Nodes {
				tmpl := n.Template
				got = append(got, prefPlacement{tmpl.Provisioner.Name, tmpl.InstanceType.Name, tmpl.Offering.Zone, len(n.Pods)})
				for _, o := range n.Options {
					if o.Offering.Zone != tmpl.Offering.Zone {
						t.Errorf("node %s in %s has an option in %s", n.Name, tmpl.Offering.Zone, o.Offering.Zone)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("planned nodes (-want, +got):\n%s", diff)
			}
		})
	}
}
