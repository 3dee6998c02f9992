package aws

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubeletapis "k8s.io/kubelet/pkg/apis"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// allows reports whether every requirement on a well-known label accepts the labels of an
// offering. Requirements on other labels are about the node's own labels, which the
// launch sets (nodeLabels), not about the offering.
func allows(reqs []v1alpha1.NodeSelectorRequirement, labels map[string]string) bool {
	for _, r := range reqs {
		if !v1alpha1.WellKnownLabels.Has(r.Key) {
			continue
		}
		value, has := labels[r.Key]
		if !matches(r, value, has) {
			return false
		}
	}
	return true
}

// matches evaluates one requirement against a label's value, as node affinity does.
func matches(r v1alpha1.NodeSelectorRequirement, value string, has bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return has && slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpNotIn:
		return !has || !slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpExists:
		return has
	case corev1.NodeSelectorOpDoesNotExist:
		return !has
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !has || len(r.Values) != 1 {
			return false
		}
		v, err1 := strconv.ParseInt(value, 10, 64)
		bound, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return v > bound
		}
		return v < bound
	}
	return false
}

// nodeLabels are the labels the kubelet registers a NodeClaim's node with: every requirement
// with operator In and one value on a label that is not well-known (the Provisioner's labels
// and the pods' selections), the Provisioner's name and the capacity type. Labels the kubelet
// may not set itself (kubernetes.io and k8s.io labels other than its own) are left out:
// something else must put them on the Node. The NodeClaim's name is not among them, so that
// launch templates can be shared; the node is matched to its claim by providerID.
func nodeLabels(nodeClaim *v1alpha1.NodeClaim, capacityType string) map[string]string {
	labels := map[string]string{}
	for _, r := range nodeClaim.Spec.Requirements {
		if r.Operator != corev1.NodeSelectorOpIn || len(r.Values) != 1 ||
			v1alpha1.WellKnownLabels.Has(r.Key) || v1alpha1.RestrictedLabels.Has(r.Key) || !kubeletMaySet(r.Key) {
			continue
		}
		labels[r.Key] = r.Values[0]
	}
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
