package fake

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

func TestCreateIsCheapestAndIdempotent(t *testing.T) {
	ctx := t.Context()
	p := &Provider{Types: []*cloud.InstanceType{
		{Name: "m5.large", Offerings: []cloud.Offering{{Zone: "us-east-1a", CapacityType: "spot", Price: 0.04, Available: true}}},
		{Name: "c5.large", Offerings: []cloud.Offering{
			{Zone: "us-east-1a", CapacityType: "spot", Price: 0.03, Available: false}, // cheapest, but out of capacity
			{Zone: "us-east-1b", CapacityType: "on-demand", Price: 0.085, Available: true},
		}},
		{Name: "t3.nano", Offerings: []cloud.Offering{{Zone: "us-east-1a", CapacityType: "spot", Price: 0.001, Available: true}}},
	}}
	claim := &v1alpha1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "default-abc", UID: "uid-1"},
		Spec: v1alpha1.NodeClaimSpec{Provisioner: "default", Requirements: []v1alpha1.NodeSelectorRequirement{
			{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"m5.large", "c5.large"}},
		}},
	}
	first, err := p.Create(ctx, claim, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.InstanceType != "m5.large" || first.CapacityType != "spot" {
		t.Errorf("launched %s/%s, want the cheapest available allowed offering m5.large/spot", first.InstanceType, first.CapacityType)
	}
	again, err := p.Create(ctx, claim, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("second Create for the same NodeClaim (-first, +second):\n%s", diff)
	}
	if p.Creates() != 1 {
		t.Errorf("launched %d instances, want 1", p.Creates())
	}
	if err := p.Delete(ctx, first.ProviderID); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, first.ProviderID); !cloud.IsNotFound(err) {
		t.Errorf("second Delete = %v, want NotFound", err)
	}
}
