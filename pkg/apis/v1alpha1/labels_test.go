package v1alpha1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestValidateLabelKey(t *testing.T) {
	tests := []struct {
		key        string
		restricted bool
	}{
		{key: "team"},
		{key: "example.com/pool"},
		{key: "karpenter.sh/capacity-type"},
		{key: LabelCapacityType},
		{key: LabelInstanceGPUName},
		{key: LabelInstanceCategory},
		{key: LabelInstanceLocalNVMe},
		{key: corev1.LabelArchStable},
		{key: corev1.LabelTopologyZone},
		{key: corev1.LabelInstanceTypeStable},
		{key: "node.kubernetes.io/lifecycle"},
		{key: "node-restriction.kubernetes.io/team"},
		{key: corev1.LabelHostname, restricted: true},
		{key: LabelProvisionerName, restricted: true},
		{key: LabelNodeClaim, restricted: true},
		{key: "nodewright.dev/instance-colour", restricted: true},
		{key: "team.nodewright.dev/pool", restricted: true},
		{key: "kubernetes.io/role", restricted: true},
		{key: "beta.kubernetes.io/arch", restricted: true},
		{key: "kops.k8s.io/instancegroup", restricted: true},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			err := ValidateLabelKey(tc.key)
			if got := err != nil; got != tc.restricted {
				t.Errorf("ValidateLabelKey(%q) = %v, want restricted %v", tc.key, err, tc.restricted)
			}
		})
	}
}

func TestCore(t *testing.T) {
	r := NodeSelectorRequirement{Key: LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{CapacityTypeSpot}}
	wantR := corev1.NodeSelectorRequirement{Key: "nodewright.dev/capacity-type", Operator: corev1.NodeSelectorOpIn, Values: []string{"spot"}}
	gotR := r.Core()
	if diff := cmp.Diff(wantR, gotR); diff != "" {
		t.Errorf("NodeSelectorRequirement.Core() (-want, +got):\n%s", diff)
	}
	gotR.Values[0] = "changed"
	if r.Values[0] != CapacityTypeSpot {
		t.Error("NodeSelectorRequirement.Core() shares its values with the requirement")
	}

	taint := Taint{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	wantT := corev1.Taint{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	if diff := cmp.Diff(wantT, taint.Core()); diff != "" {
		t.Errorf("Taint.Core() (-want, +got):\n%s", diff)
	}
}

func TestProvisionerNodeLabels(t *testing.T) {
	spec := ProvisionerSpec{
		Labels: map[string]LabelValue{"team": "a", "pool": "x", corev1.LabelArchStable: "arm64"},
		Requirements: []NodeSelectorRequirement{
			// A single-valued requirement fixes the label, over the Provisioner's label.
			{Key: "pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"y"}},
			{Key: "tier", Operator: corev1.NodeSelectorOpIn, Values: []string{"1", "2"}},
			{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1a"}},
		},
	}
	// The architecture and the zone are the instance's; tier is left open.
	want := map[string]string{"team": "a", "pool": "y"}
	if diff := cmp.Diff(want, spec.NodeLabels()); diff != "" {
		t.Errorf("NodeLabels (-want, +got):\n%s", diff)
	}
}
