package disruption

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestDrifted: a claim written by a plan carries its Provisioner's hash; it drifts when the
// Provisioner's taints change, not when its limits do; a claim without the hash does not.
func TestDrifted(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	prov := plantest.Provisioner("default")
	in := plan.Input{Pods: []*v1.Pod{plantest.PendingPod("a", "1").Obj()}, Provisioners: []*v1alpha1.Provisioner{prov},
		InstanceTypes: plantest.Catalogs(prov), Region: "us-east-1"}
	result, err := plan.Plan(ctx, in)
	if err != nil || len(result.Nodes) != 1 {
		t.Fatalf("plan: %v, %d nodes", err, len(result.Nodes))
	}
	nc := plan.NodeClaimFor(result.Nodes[0])
	if got := Drifted(nc, prov); got != "" {
		t.Errorf("fresh claim drifted: %s", got)
	}
	prov.Spec.Limits = v1.ResourceList{v1.ResourceCPU: {}}
	if got := Drifted(nc, prov); got != "" {
		t.Errorf("claim drifted by a change of limits: %s", got)
	}
	prov.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Effect: v1.TaintEffectNoSchedule}}
	if got := Drifted(nc, prov); got == "" {
		t.Error("claim did not drift when its Provisioner's taints changed")
	}
	delete(nc.Annotations, v1alpha1.AnnotationProvisionerHash)
	if got := Drifted(nc, prov); got != "" {
		t.Errorf("claim without a hash drifted: %s", got)
	}
}
