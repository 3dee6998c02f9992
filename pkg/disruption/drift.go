package disruption

import (
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// Drifted returns why nc's node no longer is what its Provisioner prov would launch; "" if
// it still is. it is the node's instance type as the Provisioner's catalog has it (nil if
// the catalog no longer has it: then its labels are not judged). A node drifts when:
//   - the Provisioner's NodeHash has changed since the claim was written
//     (v1alpha1.AnnotationProvisionerHash; a claim written before carries none): its labels,
//     taints, startup taints, kubelet configuration or node class;
//   - its labels no longer meet the Provisioner's requirements: its type's labels, its
//     instance type, zone and capacity type, and the labels of the user's its claim carries.
//     A requirement on a well-known key those do not say (the region) is not judged.
func Drifted(nc *v1alpha1.NodeClaim, prov *v1alpha1.Provisioner, it *cloud.InstanceType) string {
	if prov == nil {
		return ""
	}
	if written, ok := nc.Annotations[v1alpha1.AnnotationProvisionerHash]; ok && written != prov.Spec.NodeHash() {
		return "its Provisioner's labels, taints, kubelet configuration or node class changed since it was launched"
	}
	labels := v1alpha1.RequirementLabels(nc.Spec.Requirements, func(key string) bool { return !v1alpha1.WellKnownLabels.Has(key) })
	if it != nil {
		for k, v := range it.Labels {
			labels[k] = v
		}
	}
	labels[v1.LabelInstanceTypeStable], labels[v1.LabelTopologyZone], labels[v1alpha1.LabelCapacityType] =
		nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType
	for _, r := range prov.Spec.Requirements {
		value, has := labels[r.Key]
		if !has && v1alpha1.WellKnownLabels.Has(r.Key) {
			continue
		}
		if !r.Matches(value, has) {
			if has {
				return fmt.Sprintf("its label %s=%s no longer meets its Provisioner's requirement %s", r.Key, value, r)
			}
			return fmt.Sprintf("it has no label %s, which its Provisioner's requirement %s now asks for", r.Key, r)
		}
	}
	return ""
}

// DriftedFromClass returns why nc's node no longer is what its EC2NodeClass class would
// launch; "" if it still is, or if nothing tells (a claim launched before claims recorded the
// class's hash; a class that resolved no AMI yet). A node drifts when the class's spec has
// changed since it launched (NodeClaimStatus.NodeClassHash), or when the AMI it booted is no
// longer one the class resolves (EC2NodeClassStatus.AMIs): a new AMI was released, or the
// selector changed what it selects.
func DriftedFromClass(nc *v1alpha1.NodeClaim, class *v1alpha1.EC2NodeClass) string {
	if class == nil {
		return ""
	}
	if h := nc.Status.NodeClassHash; h != "" && h != class.Spec.Hash() {
		return fmt.Sprintf("its EC2NodeClass %s changed since it was launched", class.Name)
	}
	if image := nc.Status.ImageID; image != "" && len(class.Status.AMIs) > 0 &&
		!slices.ContainsFunc(class.Status.AMIs, func(a v1alpha1.AMI) bool { return a.ID == image }) {
		return fmt.Sprintf("its AMI %s is no longer one its EC2NodeClass %s resolves", image, class.Name)
	}
	return ""
}
