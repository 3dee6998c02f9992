package disruption

import (
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// Drifted returns why nc's node no longer is what its Provisioner prov would launch; "" if
// it still is, or if nc tells nothing (written before claims carried the hash). A node
// drifts when the Provisioner's NodeHash has changed since the claim was written
// (v1alpha1.AnnotationProvisionerHash): its requirements, labels, taints, startup taints,
// kubelet configuration or node class.
func Drifted(nc *v1alpha1.NodeClaim, prov *v1alpha1.Provisioner) string {
	written, ok := nc.Annotations[v1alpha1.AnnotationProvisionerHash]
	if !ok || prov == nil {
		return ""
	}
	if now := prov.Spec.NodeHash(); now != written {
		return "its Provisioner's requirements, labels, taints, kubelet configuration or node class changed since it was launched"
	}
	return ""
}
