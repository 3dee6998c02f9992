package integration

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestLaunchPodsRequestingNothing is issue 13's defect 6: 50 pods whose containers request
// nothing. Their NodeClaims plan no resources at all, an empty list the lifecycle must launch
// from like any other: every pod runs.
func TestLaunchPodsRequestingNothing(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{
		Requirements: []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)},
	})
	env.inflate(50, func(s *corev1.PodSpec) {
		s.Containers[0].Resources = corev1.ResourceRequirements{}
	})
	env.runningPods(50)
}
