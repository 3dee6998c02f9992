package v1alpha1

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestNodeHash: what a node takes at launch changes the hash; requirements, and what
// changes only what is launched next or when nodes go, do not; nor does the order of taints.
func TestNodeHash(t *testing.T) {
	base := func() *ProvisionerSpec {
		return &ProvisionerSpec{
			NodeClassRef: NodeClassReference{Name: "default"},
			Requirements: []NodeSelectorRequirement{
				{Key: LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{"spot", "on-demand"}},
				{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}},
			},
			Labels: map[string]LabelValue{"team": "a", "tier": "web"},
			Taints: []Taint{{Key: "b", Effect: corev1.TaintEffectNoSchedule}, {Key: "a", Effect: corev1.TaintEffectNoSchedule}},
		}
	}
	want := base().NodeHash()
	for _, tc := range []struct {
		name    string
		mutate  func(*ProvisionerSpec)
		changes bool
	}{
		{"nothing", func(*ProvisionerSpec) {}, false},
		{"requirements (nodes meet them or not: disruption.Drifted)", func(s *ProvisionerSpec) { s.Requirements = s.Requirements[:1] }, false},
		{"taints reordered", func(s *ProvisionerSpec) { s.Taints[0], s.Taints[1] = s.Taints[1], s.Taints[0] }, false},
		{"limits", func(s *ProvisionerSpec) { s.Limits = corev1.ResourceList{corev1.ResourceCPU: {}} }, false},
		{"weight", func(s *ProvisionerSpec) { w := int32(10); s.Weight = &w }, false},
		{"node cost", func(s *ProvisionerSpec) { c := "0.05"; s.NodeCost = &c }, false},
		{"TTL after empty", func(s *ProvisionerSpec) { v := int64(30); s.TTLSecondsAfterEmpty = &v }, false},
		{"a label's value", func(s *ProvisionerSpec) { s.Labels["team"] = "b" }, true},
		{"a taint", func(s *ProvisionerSpec) { s.Taints = s.Taints[:1] }, true},
		{"a startup taint", func(s *ProvisionerSpec) {
			s.StartupTaints = []Taint{{Key: "boot", Effect: corev1.TaintEffectNoSchedule}}
		}, true},
		{"the kubelet", func(s *ProvisionerSpec) { m := int32(50); s.Kubelet = &KubeletConfiguration{MaxPods: &m} }, true},
		{"the node class", func(s *ProvisionerSpec) { s.NodeClassRef.Name = "other" }, true},
	} {
		s := base()
		tc.mutate(s)
		if got := s.NodeHash(); (got != want) != tc.changes {
			t.Errorf("%s: hash %s, base %s: want changed %v", tc.name, got, want, tc.changes)
		}
	}
}
