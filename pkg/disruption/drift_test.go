package disruption

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestDrifted: a claim a plan wrote, launched as its chosen offering, against changes of its
// Provisioner.
func TestDrifted(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	base := plantest.Provisioner("default")
	in := plan.Input{Pods: []*v1.Pod{plantest.PendingPod("a", "1").Obj()}, Provisioners: []*v1alpha1.Provisioner{base},
		InstanceTypes: plantest.Catalogs(base), Region: "us-east-1"}
	result, err := plan.Plan(ctx, in)
	if err != nil || len(result.Nodes) != 1 {
		t.Fatalf("plan: %v, %d nodes", err, len(result.Nodes))
	}
	node := result.Nodes[0]
	nc := plan.NodeClaimFor(node)
	nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType =
		node.Template.InstanceType.Name, node.Template.Offering.Zone, node.Template.Offering.CapacityType
	if nc.Status.CapacityType != v1alpha1.CapacityTypeSpot {
		t.Fatalf("planned %s, want spot", nc.Status.CapacityType)
	}
	req := func(key string, op v1.NodeSelectorOperator, values ...string) v1alpha1.NodeSelectorRequirement {
		return v1alpha1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*v1alpha1.Provisioner, *v1alpha1.NodeClaim)
		drifted string // "" for none; else a part of the reason
	}{
		{name: "unchanged"},
		{name: "limits", mutate: func(p *v1alpha1.Provisioner, _ *v1alpha1.NodeClaim) {
			p.Spec.Limits = v1.ResourceList{v1.ResourceCPU: {}}
		}},
		{name: "requirements widened", mutate: func(p *v1alpha1.Provisioner, _ *v1alpha1.NodeClaim) {
			p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelCapacityType, v1.NodeSelectorOpIn, "spot", "on-demand")}
		}},
		{name: "on-demand only", mutate: func(p *v1alpha1.Provisioner, _ *v1alpha1.NodeClaim) {
			p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelCapacityType, v1.NodeSelectorOpIn, "on-demand")}
		}, drifted: "its label nodewright.dev/capacity-type=spot no longer meets"},
		{name: "fewer CPUs", mutate: func(p *v1alpha1.Provisioner, _ *v1alpha1.NodeClaim) {
			p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceCPU, v1.NodeSelectorOpLt, "2")}
		}, drifted: "nodewright.dev/instance-cpu"},
		{name: "a label of the user's now required", mutate: func(p *v1alpha1.Provisioner, _ *v1alpha1.NodeClaim) {
			p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{req("team", v1.NodeSelectorOpIn, "a")}
		}, drifted: "it has no label team"},
		{name: "a region requirement is not judged", mutate: func(p *v1alpha1.Provisioner, _ *v1alpha1.NodeClaim) {
			p.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{req(v1.LabelTopologyRegion, v1.NodeSelectorOpIn, "eu-west-1")}
		}},
		{name: "taints", mutate: func(p *v1alpha1.Provisioner, _ *v1alpha1.NodeClaim) {
			p.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Effect: v1.TaintEffectNoSchedule}}
		}, drifted: "taints"},
		{name: "taints, of a claim without the hash", mutate: func(p *v1alpha1.Provisioner, nc *v1alpha1.NodeClaim) {
			p.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Effect: v1.TaintEffectNoSchedule}}
			delete(nc.Annotations, v1alpha1.AnnotationProvisionerHash)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prov, claim := base.DeepCopy(), nc.DeepCopy()
			if tc.mutate != nil {
				tc.mutate(prov, claim)
			}
			got := Drifted(claim, prov, node.Template.InstanceType)
			if (got == "") != (tc.drifted == "") || !strings.Contains(got, tc.drifted) {
				t.Errorf("Drifted = %q, want %q", got, tc.drifted)
			}
		})
	}
}

// TestDriftedFromClass: a node launched with a class drifts when the class's spec changes, or
// when the AMI it booted is no longer among those the class resolves.
func TestDriftedFromClass(t *testing.T) {
	class := &v1alpha1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec:   v1alpha1.EC2NodeClassSpec{AMIFamily: "AL2023", Tags: map[string]string{"team": "a"}},
		Status: v1alpha1.EC2NodeClassStatus{AMIs: []v1alpha1.AMI{{ID: "ami-new"}, {ID: "ami-arm"}}}}
	launched := &v1alpha1.NodeClaim{Status: v1alpha1.NodeClaimStatus{ImageID: "ami-new", NodeClassHash: class.Spec.Hash()}}
	for _, tc := range []struct {
		name    string
		mutate  func(*v1alpha1.EC2NodeClass, *v1alpha1.NodeClaim)
		drifted string
	}{
		{name: "unchanged"},
		{name: "a tag", mutate: func(c *v1alpha1.EC2NodeClass, _ *v1alpha1.NodeClaim) { c.Spec.Tags["team"] = "b" },
			drifted: "its EC2NodeClass default changed"},
		{name: "a tag, of a claim launched before the hash", mutate: func(c *v1alpha1.EC2NodeClass, nc *v1alpha1.NodeClaim) {
			c.Spec.Tags["team"] = "b"
			nc.Status.NodeClassHash = ""
		}},
		{name: "a new AMI released", mutate: func(c *v1alpha1.EC2NodeClass, _ *v1alpha1.NodeClaim) {
			c.Status.AMIs = []v1alpha1.AMI{{ID: "ami-newer"}}
		}, drifted: "its AMI ami-new is no longer one"},
		{name: "no AMI resolved yet", mutate: func(c *v1alpha1.EC2NodeClass, _ *v1alpha1.NodeClaim) { c.Status.AMIs = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, nc := class.DeepCopy(), launched.DeepCopy()
			if tc.mutate != nil {
				tc.mutate(c, nc)
			}
			got := DriftedFromClass(nc, c)
			if (got == "") != (tc.drifted == "") || !strings.Contains(got, tc.drifted) {
				t.Errorf("DriftedFromClass = %q, want %q", got, tc.drifted)
			}
		})
	}
}
