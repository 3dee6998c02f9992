package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// placement is a planned node as the tests compare it.
type placement struct {
	Type, Zone, CapacityType string
	Pods                     int
}

// spotOnly restricts a Provisioner to spot.
func spotOnly(p *v1alpha1.Provisioner) {
	p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{"spot"}}}
}

// pods returns n pending pods requesting cpu each.
func pods(n int, cpu string) []*v1.Pod {
	var out []*v1.Pod
	for i := range n {
		out = append(out, plantest.PendingPod(fmt.Sprintf("inflate-%d", i), cpu).Obj())
	}
	return out
}

// planCase is a case of TestPlan.
type planCase struct {
	name       string
	pods       []*v1.Pod
	provs      []*v1alpha1.Provisioner
	daemonSets []*appsv1.DaemonSet
	used       map[string]v1.ResourceList
	want       []placement
	// wantUnplanned are substrings of the unplanned pods' messages, in order.
	wantUnplanned []string
	wantStatic    bool
}

// planCases are the cases of TestPlan.
var planCases = []planCase{
	{
		name:  "seed: 5 pods x 1 cpu, spot -> one t3a.2xlarge",
		pods:  pods(5, "1"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		// 5 cpu + 0.5 cpu of DaemonSet = 5.5 > t3a.xlarge's 4-0.1 = 3.9, <= t3a.2xlarge's 7.9.
		daemonSets: []*appsv1.DaemonSet{plantest.DaemonSet("kube-proxy", "500m")},
		want:       []placement{{"t3a.2xlarge", "us-east-1a", "spot", 5}},
	},
	{
		name:  "3 pods x 1 cpu fit a t3a.xlarge: 3 <= 3.9",
		pods:  pods(3, "1"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []placement{{"t3a.xlarge", "us-east-1a", "spot", 3}},
	},
	{
		name: "a DaemonSet requesting 1 cpu sizes the node: 3+1 = 4 > 3.9",
		pods: pods(3, "1"), provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		daemonSets: []*appsv1.DaemonSet{plantest.DaemonSet("agent", "1")},
		want:       []placement{{"t3a.2xlarge", "us-east-1a", "spot", 3}},
	},
	{
		name:  "arm64 only",
		pods:  []*v1.Pod{plantest.PendingPod("a", "1").NodeSelector(map[string]string{v1.LabelArchStable: "arm64"}).Obj()},
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []placement{{"m6g.xlarge", "us-east-1a", "spot", 1}},
	},
	{
		name: "a provisioner that names arm64 gets pods that select no architecture",
		pods: pods(1, "1"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("graviton", spotOnly, func(p *v1alpha1.Provisioner) {
			p.Spec.Requirements = append(p.Spec.Requirements, v1alpha1.NodeSelectorRequirement{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"arm64"}})
		})},
		want: []placement{{"m6g.xlarge", "us-east-1a", "spot", 1}},
	},
	{
		name: "a provisioner that allows only arm64 explains the default to an amd64 pod",
		pods: []*v1.Pod{plantest.PendingPod("a", "1").NodeSelector(map[string]string{v1.LabelArchStable: "amd64"}).Obj()},
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("graviton", spotOnly, func(p *v1alpha1.Provisioner) {
			p.Spec.Requirements = append(p.Spec.Requirements, v1alpha1.NodeSelectorRequirement{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"arm64"}})
		})},
		wantUnplanned: []string{`no instance type in provisioner "graviton" matches the pod's node selector and affinity`},
		wantStatic:    true,
	},
	{
		name:  "a GPU request -> the GPU type",
		pods:  []*v1.Pod{plantest.PendingPod("a", "1").Req(map[v1.ResourceName]string{"nvidia.com/gpu": "1"}).Obj()},
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []placement{{"g4dn.xlarge", "us-east-1a", "spot", 1}},
	},
	{
		name: "only GPU types: a pod without a GPU request is explained",
		pods: pods(1, "1"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("gpu", spotOnly, func(p *v1alpha1.Provisioner) {
			p.Spec.Requirements = append(p.Spec.Requirements, v1alpha1.NodeSelectorRequirement{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"g4dn.xlarge"}})
		})},
		wantUnplanned: []string{`no instance type in provisioner "gpu" matches the pod's node selection: pods that request no GPU are not planned onto GPU nodes`},
		wantStatic:    true,
	},
	{
		name:  "zone selector",
		pods:  []*v1.Pod{plantest.PendingPod("a", "1").NodeSelector(map[string]string{v1.LabelTopologyZone: "us-east-1c"}).Obj()},
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want:  []placement{{"t3a.medium", "us-east-1c", "spot", 1}},
	},
	{
		name:  "on-demand only",
		pods:  []*v1.Pod{plantest.PendingPod("a", "1").NodeSelector(map[string]string{v1alpha1.LabelCapacityType: "on-demand"}).Obj()},
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default")},
		want:  []placement{{"t3a.medium", "us-east-1a", "on-demand", 1}},
	},
	{
		name: "hostname anti-affinity: 4 pods -> 4 nodes",
		pods: func() []*v1.Pod {
			var out []*v1.Pod
			for i := range 4 {
				out = append(out, plantest.PendingPod(fmt.Sprintf("web-%d", i), "500m").Label("app", "web").
					PodAntiAffinityExists("app", v1.LabelHostname, st.PodAntiAffinityWithRequiredReq).Obj())
			}
			return out
		}(),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		want: []placement{
			{"t3a.medium", "us-east-1a", "spot", 1}, {"t3a.medium", "us-east-1a", "spot", 1},
			{"t3a.medium", "us-east-1a", "spot", 1}, {"t3a.medium", "us-east-1a", "spot", 1},
		},
	},
	{
		name: "topology spread maxSkew 1 over zones: 6 pods -> 3 zones",
		pods: func() []*v1.Pod {
			var out []*v1.Pod
			for i := range 6 {
				out = append(out, plantest.PendingPod(fmt.Sprintf("spread-%d", i), "500m").Label("app", "spread").
					SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule, st.MakeLabelSelector().Exists("app").Obj(), nil, nil, nil, nil).Obj())
			}
			return out
		}(),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly)},
		// 2 pods x 0.5 cpu per zone: a t3a.medium (1.9 cpu) each.
		want: []placement{{"t3a.medium", "us-east-1a", "spot", 2}, {"t3a.medium", "us-east-1b", "spot", 2}, {"t3a.medium", "us-east-1c", "spot", 2}},
	},
	{
		name: "provisioner taint not tolerated -> explained, static",
		pods: pods(1, "1"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("ml", func(p *v1alpha1.Provisioner) {
			p.Spec.Taints = []v1alpha1.Taint{{Key: "nodewright.dev/team", Value: "ml", Effect: v1.TaintEffectNoSchedule}}
		})},
		wantUnplanned: []string{`provisioner "ml": taint nodewright.dev/team=ml:NoSchedule not tolerated`},
		wantStatic:    true,
	},
	{
		name: "provisioner taint tolerated",
		pods: []*v1.Pod{plantest.PendingPod("a", "1").Toleration("nodewright.dev/team").Obj()},
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("ml", spotOnly, func(p *v1alpha1.Provisioner) {
			p.Spec.Taints = []v1alpha1.Taint{{Key: "nodewright.dev/team", Value: "ml", Effect: v1.TaintEffectNoSchedule}}
		})},
		want: []placement{{"t3a.medium", "us-east-1a", "spot", 1}},
	},
	{
		name:          "pod bigger than every type: 200 > 16-0.1",
		pods:          pods(1, "200"),
		provs:         []*v1alpha1.Provisioner{plantest.Provisioner("default")},
		wantUnplanned: []string{`no instance type in provisioner "default" satisfies: cpu request 200 > largest allocatable 15.9`},
		wantStatic:    true,
	},
	{
		name: "cpu limit 10, 6 used: one 4-cpu node fits, the second pod waits",
		pods: pods(2, "3"),
		provs: []*v1alpha1.Provisioner{plantest.Provisioner("default", spotOnly, func(p *v1alpha1.Provisioner) {
			p.Spec.Limits = v1.ResourceList{v1.ResourceCPU: resource.MustParse("10")}
		})},
		used: map[string]v1.ResourceList{"default": {v1.ResourceCPU: resource.MustParse("6")}},
		// 3+3 = 6 > 3.9 (xlarge) so a t3a.2xlarge (8 cpu) would hold both, but 6+8 > 10;
		// a t3a.xlarge holds one: 6+4 = 10 <= 10; then nothing is left.
		want:          []placement{{"t3a.xlarge", "us-east-1a", "spot", 1}},
		wantUnplanned: []string{`provisioner "default": limit cpu 10 reached`},
	},
	{
		name: "the heavier provisioner wins",
		pods: pods(1, "1"),
		provs: []*v1alpha1.Provisioner{
			plantest.Provisioner("cheap", spotOnly),
			plantest.Provisioner("heavy", func(p *v1alpha1.Provisioner) {
				p.Spec.Weight = ptr.To[int32](50)
				p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{"on-demand"}}}
			}),
		},
		want: []placement{{"t3a.medium", "us-east-1a", "on-demand", 1}},
	},
}

func TestPlan(t *testing.T) {
	tests := planCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			in := planInput(tt.pods, tt.provs...)
			in.DaemonSets, in.Used = tt.daemonSets, tt.used
			plan, err := Plan(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			var got []placement
			for _, n := range plan.Nodes {
				got = append(got, placement{n.Template.InstanceType.Name, n.Template.Offering.Zone, n.Template.Offering.CapacityType, len(n.Pods)})
				if n.Options[0] != n.Template {
					t.Errorf("node %s: options start with %s, want the chosen %s", n.Name, n.Options[0].Key, n.Template.Key)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("planned nodes (-want, +got):\n%s", diff)
			}
			if len(plan.Unplanned) != len(tt.wantUnplanned) {
				t.Fatalf("unplanned = %d pods, want %d", len(plan.Unplanned), len(tt.wantUnplanned))
			}
			for i, u := range plan.Unplanned {
				if !strings.Contains(u.Message(), tt.wantUnplanned[i]) {
					t.Errorf("unplanned[%d] = %q, want it to contain %q", i, u.Message(), tt.wantUnplanned[i])
				}
				if u.Resolvable == tt.wantStatic {
					t.Errorf("unplanned[%d].Resolvable = %v, want %v", i, u.Resolvable, !tt.wantStatic)
				}
			}
		})
	}
}

// TestPlanOptions: 1 cpu fits every type in us-east-1a spot; the options are those that cost
// at most MaxOptionCostFactor times the chosen t3a.medium (0.012 USD/h and the default node
// cost of 0.01: 0.0264 at most), cheapest first, without the arm64 one (the pod selects no
// architecture) and the GPU one (it requests no GPU).
func TestPlanOptions(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	in := planInput([]*v1.Pod{plantest.PendingPod("a", "1").Obj()}, plantest.Provisioner("default"))
	in.InstanceTypes["default"] = append(in.InstanceTypes["default"],
		plantest.InstanceType("t3.medium", "amd64", 2, 4, 0.0135, 0.0416),  // 0.0235 with the node cost: an option
		plantest.InstanceType("m5a.large", "amd64", 2, 8, 0.0165, 0.086),   // 0.0265: just over
		plantest.InstanceType("t4g.medium", "arm64", 2, 4, 0.0101, 0.0336), // arm64
	)
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"t3a.medium", "t3.medium"}
	if diff := cmp.Diff(want, plan.Nodes[0].InstanceTypeNames()); diff != "" {
		t.Errorf("options (-want, +got):\n%s", diff)
	}
}

// TestPlanRehomesToTheCheapestZone: the first pod's cheapest offering is a small type in
// us-east-1a, but the node its 5 pods need is cheapest in us-east-1b: the plan launches it
// there.
func TestPlanRehomesToTheCheapestZone(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	small := plantest.InstanceType("t3a.medium", "amd64", 2, 4, 0.012, 0.0376, "us-east-1a", "us-east-1b")
	large := plantest.InstanceType("t3a.2xlarge", "amd64", 8, 32, 0.09, 0.3008, "us-east-1a", "us-east-1b")
	large.Offerings[2].Price = 0.07 // spot in us-east-1b
	in := planInput(pods(5, "1"), plantest.Provisioner("default", spotOnly))
	in.InstanceTypes["default"] = []*cloud.InstanceType{small, large}
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != 1 {
		t.Fatalf("planned %d nodes, want 1", len(plan.Nodes))
	}
	if got := plan.Nodes[0].Template.Key; got != "default/t3a.2xlarge/us-east-1b/spot" {
		t.Errorf("planned %s, want default/t3a.2xlarge/us-east-1b/spot", got)
	}
}

// TestPlanCountsPodsAgainstMaxPods: 6 small pods on a type that takes 4 pods -> 2 nodes,
// every pod planned (the prescreen counts pods, not only CPU and memory).
func TestPlanCountsPodsAgainstMaxPods(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	it := plantest.InstanceType("t3a.2xlarge", "amd64", 8, 32, 0.09, 0.3008)
	it.Capacity[v1.ResourcePods] = resource.MustParse("4")
	in := planInput(pods(6, "100m"), plantest.Provisioner("default", spotOnly))
	in.InstanceTypes["default"] = []*cloud.InstanceType{it}
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != 2 || len(plan.Unplanned) != 0 {
		t.Errorf("planned %d nodes, %d pods unplanned; want 2 nodes, none unplanned", len(plan.Nodes), len(plan.Unplanned))
	}
}

// TestPlanPodsAlikeButForTheirTokenVolume: the apiserver gives every pod a service account
// token volume of its own name. Pods of one Deployment still share one PreFilter run and the
// verdicts on empty templates; with spread constraints too, they are confirmed with one
// PreFilter run per pass (a regression made the e2e round run one per check, 100 times
// slower than the benchmark of the same pods without such volumes).
func TestPlanPodsAlikeButForTheirTokenVolume(t *testing.T) {
	withToken := func(pods []*v1.Pod) []*v1.Pod {
		for i, p := range pods {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: fmt.Sprintf("kube-api-access-%05d", i),
				VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{}}})
		}
		return pods
	}
	spread := func(pods []*v1.Pod) []*v1.Pod {
		for _, p := range pods {
			p.Labels = map[string]string{"app": "web"}
			p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: v1.LabelTopologyZone,
				WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		}
		return pods
	}
	t.Run("independent", func(t *testing.T) {
		_, ctx := ktesting.NewTestContext(t)
		plan, err := Plan(ctx, planInput(withToken(pods(20, "1")), plantest.Provisioner("default", spotOnly)))
		if err != nil {
			t.Fatal(err)
		}
		// One to place them all, one to confirm them all.
		if plan.PreFilters > 2 || plan.CacheHits == 0 {
			t.Errorf("PreFilter runs = %d, verdicts reused = %d; want at most 2 and some", plan.PreFilters, plan.CacheHits)
		}
	})
	t.Run("spread", func(t *testing.T) {
		_, ctx := ktesting.NewTestContext(t)
		plan, err := Plan(ctx, planInput(spread(withToken(pods(20, "1"))), plantest.Provisioner("default", spotOnly)))
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Unplanned) != 0 {
			t.Fatalf("%d pods unplanned: %v", len(plan.Unplanned), plan.Unplanned[0].Message())
		}
		// Placing checks each pod about once per snapshot state it meets (26 today);
		// confirming takes one run per pass. Pods told apart by their volume: 45.
		if plan.PreFilters > 30 {
			t.Errorf("PreFilter runs = %d for 20 pods alike, want at most 30", plan.PreFilters)
		}
	})
}
