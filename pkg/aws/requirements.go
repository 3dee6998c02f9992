package aws

import (
	"strings"

	kubeletapis "k8s.io/kubelet/pkg/apis"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// allows reports whether every requirement on a well-known label accepts the labels of an
// offering. Requirements on other labels are about the node's own labels, which the
// launch sets (KubeletLabels), not about the offering.
func allows(reqs []v1alpha1.NodeSelectorRequirement, labels map[string]string) bool {
	for _, r := range reqs {
		if !v1alpha1.WellKnownLabels.Has(r.Key) {
			continue
		}
		value, has := labels[r.Key]
		if !r.Matches(value, has) {
			return false
		}
	}
	return true
}

// KubeletLabels returns the labels the kubelet registers a NodeClaim's node with, launched
// in capacityType: the labels of the user's its requirements give it
// (v1alpha1.RequirementLabels: the Provisioner's labels and the values the plan chose for
// its other requirements), the Provisioner's name and the capacity type. The launch passes
// them in the user data (--node-labels). Labels the kubelet may not set itself (kubernetes.io
// and k8s.io labels other than its own) are left out: the lifecycle puts them on the Node
// when it registers. The NodeClaim's name is not among them, so that launch templates can be
// shared; the node is matched to its claim by providerID.
func KubeletLabels(nodeClaim *v1alpha1.NodeClaim, capacityType string) map[string]string {
	labels := v1alpha1.RequirementLabels(nodeClaim.Spec.Requirements, func(key string) bool {
		return v1alpha1.IsUserLabel(key) && kubeletMaySet(key)
	})
	labels[v1alpha1.LabelProvisionerName] = nodeClaim.Spec.Provisioner
	labels[v1alpha1.LabelCapacityType] = capacityType
	return labels
}

// kubeletMaySet applies the NodeRestriction rule on --node-labels: in the kubernetes.io and
// k8s.io namespaces only the kubelet's own labels.
func kubeletMaySet(key string) bool {
	namespace, _, found := strings.Cut(key, "/")
	if !found {
		return true
	}
	for _, ns := range []string{"kubernetes.io", "k8s.io"} {
		if namespace == ns || strings.HasSuffix(namespace, "."+ns) {
			return kubeletapis.IsKubeletLabel(key)
		}
	}
	return true
}
