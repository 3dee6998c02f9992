package provision

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestNodeClaimForSeedPlan(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	var pods []*v1.Pod
	for _, name := range []string{"a", "b"} {
		pods = append(pods, pendingPod(name, "1").Obj())
	}
	prov := provisioner("default", func(p *v1alpha1.Provisioner) {
		p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{"spot", "on-demand"}}}
		p.Spec.StartupTaints = []v1alpha1.Taint{{Key: "cni", Effect: v1.TaintEffectNoSchedule}}
	})
	plan, err := Plan(ctx, planInput(pods, prov))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != 1 {
		t.Fatalf("planned %d nodes, want 1", len(plan.Nodes))
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{nodeClaimGVR: "NodeClaimList"})
	nc, err := createNodeClaim(ctx, client, NodeClaimFor(plan.Nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	// 2 pods x 1 cpu = 2 > t3a.medium's 1.9: t3a.xlarge, then every larger type in
	// us-east-1a spot, cheapest first. The capacity-type requirement is narrowed to the plan's.
	want := v1alpha1.NodeClaimSpec{
		Provisioner:  "default",
		NodeClassRef: v1alpha1.NodeClassReference{Name: "default"},
		Requirements: []v1alpha1.NodeSelectorRequirement{
			{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"t3a.xlarge", "t3a.2xlarge", "c5.4xlarge"}},
			{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{"us-east-1a"}},
			{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{"spot"}},
		},
		Resources:     v1alpha1.ResourceRequirements{Requests: plan.Nodes[0].Requests},
		StartupTaints: []v1alpha1.Taint{{Key: "cni", Effect: v1.TaintEffectNoSchedule}},
		Pods:          []v1alpha1.PodReference{{Namespace: "default", Name: "a", UID: "a"}, {Namespace: "default", Name: "b", UID: "b"}},
	}
	if diff := cmp.Diff(want, nc.Spec); diff != "" {
		t.Errorf("nodeclaim spec (-want, +got):\n%s", diff)
	}
	if nc.GenerateName != "default-" {
		t.Errorf("generateName = %q, want %q", nc.GenerateName, "default-")
	}
}
