package provision

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

func TestNodeClaimForSeedPlan(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	var pods []*v1.Pod
	for _, name := range []string{"a", "b", "c"} {
		pods = append(pods, plantest.PendingPod(name, "1").Obj())
	}
	prov := plantest.Provisioner("default", func(p *v1alpha1.Provisioner) {
		p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{"spot", "on-demand"}}}
		p.Spec.StartupTaints = []v1alpha1.Taint{{Key: "cni", Effect: v1.TaintEffectNoSchedule}}
	})
	result, err := plan.Plan(ctx, plan.Input{Pods: pods, Provisioners: []*v1alpha1.Provisioner{prov}, InstanceTypes: plantest.Catalogs(prov), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Nodes) != 1 {
		t.Fatalf("planned %d nodes, want 1", len(result.Nodes))
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{v1alpha1.NodeClaimGVR: "NodeClaimList"})
	nc, err := v1alpha1.CreateNodeClaim(ctx, client, plan.NodeClaimFor(result.Nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	// 3 pods x 1 cpu: one t3a.xlarge (3.9 cpu, 0.055 USD/h with the default node cost) costs
	// less than three t3a.medium (1.9 cpu, 0.022 each); no larger type in us-east-1a spot is
	// within plan.MaxOptionCostFactor of it. The capacity-type requirement is narrowed to the
	// plan's.
	want := v1alpha1.NodeClaimSpec{
		Provisioner:  "default",
		NodeClassRef: v1alpha1.NodeClassReference{Name: "default"},
		Requirements: []v1alpha1.NodeSelectorRequirement{
			{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"t3a.xlarge"}},
			{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{"us-east-1a"}},
			{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{"spot"}},
		},
		Resources:     v1alpha1.ResourceRequirements{Requests: result.Nodes[0].Requests},
		StartupTaints: []v1alpha1.Taint{{Key: "cni", Effect: v1.TaintEffectNoSchedule}},
		Pods: []v1alpha1.PodReference{{Namespace: "default", Name: "a", UID: "a"}, {Namespace: "default", Name: "b", UID: "b"},
			{Namespace: "default", Name: "c", UID: "c"}},
	}
	if diff := cmp.Diff(want, nc.Spec); diff != "" {
		t.Errorf("nodeclaim spec (-want, +got):\n%s", diff)
	}
	if nc.GenerateName != "default-" {
		t.Errorf("generateName = %q, want %q", nc.GenerateName, "default-")
	}
}

// TestRecordAddedPods: the pods added to a claim's spare room are written into its
// annotation, where the ledger and the lifecycle read them.
func TestRecordAddedPods(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{v1alpha1.NodeClaimGVR: "NodeClaimList"})
	nc := plantest.Claim("c1", "", "a")
	nc.GenerateName = ""
	if _, err := v1alpha1.CreateNodeClaim(ctx, client, nc); err != nil {
		t.Fatal(err)
	}
	refs := v1alpha1.PodReferencesTo([]*v1.Pod{plantest.PendingPod("b", "1").Obj(), plantest.PendingPod("c", "1").Obj()})
	if err := recordAddedPods(ctx, client, "c1", refs); err != nil {
		t.Fatal(err)
	}
	u, err := client.Resource(v1alpha1.NodeClaimGVR).Get(ctx, "c1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := toNodeClaim(u)
	if !ok {
		t.Fatalf("the stored nodeclaim does not convert")
	}
	if diff := cmp.Diff(append(nc.Spec.Pods, refs...), got.ReservedPods()); diff != "" {
		t.Errorf("reserved pods of the stored nodeclaim (-want, +got):\n%s", diff)
	}
	if err := recordAddedPods(ctx, client, "gone", refs); err == nil || !strings.Contains(err.Error(), "nodeclaim gone") {
		t.Errorf("recording on a missing nodeclaim: error %v, want one naming it", err)
	}
}
