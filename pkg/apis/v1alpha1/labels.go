package v1alpha1

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Well-known node labels that nodewright sets from the instance type it launches. Together
// with the Kubernetes labels in WellKnownLabels they are the keys a Provisioner's
// requirements select instance types by.
const (
	// LabelCapacityType is the capacity type of the node's instance: CapacityTypeSpot or
	// CapacityTypeOnDemand.
	LabelCapacityType = GroupName + "/capacity-type"
	// LabelInstanceFamily is the instance type's family, e.g. "m5" for m5.large.
	LabelInstanceFamily = GroupName + "/instance-family"
	// LabelInstanceSize is the instance type's size, e.g. "large" for m5.large.
	LabelInstanceSize = GroupName + "/instance-size"
	// LabelInstanceCPU is the instance type's number of vCPUs, e.g. "2" (Gt and Lt apply).
	LabelInstanceCPU = GroupName + "/instance-cpu"
	// LabelInstanceMemory is the instance type's memory in MiB, e.g. "8192" (Gt and Lt apply).
	LabelInstanceMemory = GroupName + "/instance-memory"
	// LabelInstanceGPUCount is the instance type's number of GPUs, "0" for none.
	LabelInstanceGPUCount = GroupName + "/instance-gpu-count"
	// LabelInstanceGPUName is the name of the instance type's GPU, e.g. "t4"; absent without one.
	LabelInstanceGPUName = GroupName + "/instance-gpu-name"
	// LabelInstanceCategory is the instance type's category, the letters its family starts
	// with, e.g. "m" for m5.large and "u" for u-6tb1.metal; absent for a name without a
	// generation number (mac-m4.metal).
	LabelInstanceCategory = GroupName + "/instance-category"
	// LabelInstanceGeneration is the generation of the instance type's family, the number
	// after the category, e.g. "5" for m5.large (Gt and Lt apply); absent with the category.
	LabelInstanceGeneration = GroupName + "/instance-generation"
	// LabelInstanceHypervisor is the instance type's hypervisor: "nitro", "xen", or "" for
	// bare metal.
	LabelInstanceHypervisor = GroupName + "/instance-hypervisor"
	// LabelInstanceNetworkBandwidth is the instance type's baseline network bandwidth in
	// Mbit/s, e.g. "750" for m5.large (Gt and Lt apply); absent for the older types AWS gives
	// only a level such as "Moderate" for.
	LabelInstanceNetworkBandwidth = GroupName + "/instance-network-bandwidth"
	// LabelInstanceLocalNVMe is the size of the instance type's local NVMe storage in GiB,
	// all disks together, e.g. "75" for m5d.large (Gt and Lt apply); absent without any.
	LabelInstanceLocalNVMe = GroupName + "/instance-local-nvme"
)

// Labels nodewright manages on the nodes it launches. No Provisioner may set or require them.
const (
	// LabelProvisionerName is the name of the Provisioner a node was launched for.
	LabelProvisionerName = GroupName + "/provisioner-name"
	// LabelNodeClaim is the name of the NodeClaim a node was launched for.
	LabelNodeClaim = GroupName + "/nodeclaim"
)

// Capacity types, the values of LabelCapacityType.
const (
	// CapacityTypeSpot is an EC2 spot instance.
	CapacityTypeSpot = "spot"
	// CapacityTypeOnDemand is an EC2 on-demand instance.
	CapacityTypeOnDemand = "on-demand"
)

// AnnotationDoNotEvict on a pod, with the value "true", keeps nodewright from draining the
// node the pod runs on for emptiness or expiry.
const AnnotationDoNotEvict = GroupName + "/do-not-evict"

// AnnotationAddedPods on a NodeClaim lists, as a JSON array of PodReferences, the pods a
// later provisioning round reserved in the room its node has left beyond the pods it was
// written for (spec.pods, which never changes). See NodeClaim.ReservedPods.
const AnnotationAddedPods = GroupName + "/added-pods"

// AnnotationDoNotDisrupt on a pod or a node, with the value "true", keeps nodewright from
// removing the node voluntarily: consolidation, drift or emptiness (expiry replaces nodes
// regardless, as Karpenter v1's does). Karpenter's karpenter.sh/do-not-disrupt and
// AnnotationDoNotEvict do the same.
const AnnotationDoNotDisrupt = GroupName + "/do-not-disrupt"

// TaintDisrupted, with effect NoSchedule, is on the nodes a disruption is removing, from its
// decision until they are gone: no new pod goes there. It goes again if the disruption is
// undone.
const TaintDisrupted = GroupName + "/disrupted"

// AnnotationReplaces on a NodeClaim written to replace other nodes names their NodeClaims,
// comma-separated: the disruption that removes them waits for it to be initialized.
const AnnotationReplaces = GroupName + "/replaces"

// AnnotationHeldPods on a replacement NodeClaim holds its room for the pods moved to it: a
// JSON object from hold key (the namespace, controller and pod template revision of the pods
// a controller recreates alike) to the number of such pods planned onto it, until
// AnnotationHeldUntil. Other pods do not go on the node while it holds room for pods not yet
// there.
const AnnotationHeldPods = GroupName + "/held-pods"

// AnnotationHeldUntil on a replacement NodeClaim is when its hold of room ends, RFC 3339.
const AnnotationHeldUntil = GroupName + "/held-until"

// TerminationFinalizer is on every Node and NodeClaim nodewright launched: it is removed once
// the node is drained and its instance terminated.
const TerminationFinalizer = GroupName + "/termination"

// EC2 tags nodewright puts on every instance and launch template it creates.
const (
	// TagCluster is the name of the cluster an instance belongs to.
	TagCluster = GroupName + "/cluster"
	// TagProvisionerName is the name of the Provisioner an instance was launched for.
	TagProvisionerName = LabelProvisionerName
	// TagNodeClaim is the name of the NodeClaim an instance was launched for.
	TagNodeClaim = LabelNodeClaim
)

// WellKnownLabels are the keys a requirement can constrain that every node nodewright launches
// carries, with a value derived from its instance type and offering.
var WellKnownLabels = sets.New(
	corev1.LabelInstanceTypeStable,
	corev1.LabelTopologyZone,
	corev1.LabelTopologyRegion,
	corev1.LabelArchStable,
	corev1.LabelOSStable,
	LabelCapacityType,
	LabelInstanceFamily,
	LabelInstanceSize,
	LabelInstanceCPU,
	LabelInstanceMemory,
	LabelInstanceGPUCount,
	LabelInstanceGPUName,
	LabelInstanceCategory,
	LabelInstanceGeneration,
	LabelInstanceHypervisor,
	LabelInstanceNetworkBandwidth,
	LabelInstanceLocalNVMe,
)

// IntegerLabels are the WellKnownLabels whose values are integers: of the well-known keys,
// the only ones the operators Gt and Lt apply to (the CRDs reject them on the others).
var IntegerLabels = sets.New(
	LabelInstanceCPU,
	LabelInstanceMemory,
	LabelInstanceGPUCount,
	LabelInstanceGeneration,
	LabelInstanceNetworkBandwidth,
	LabelInstanceLocalNVMe,
)

// RestrictedLabels may appear neither in a Provisioner's labels nor in any requirement:
// nodewright or the kubelet sets them.
var RestrictedLabels = sets.New(
	corev1.LabelHostname,
	LabelProvisionerName,
	LabelNodeClaim,
)

// IsUserLabel reports whether key is a label of the user's: neither one of WellKnownLabels,
// whose values a node's instance type and offering decide, nor one of RestrictedLabels. Only
// such keys of a Provisioner's labels and requirements become labels of its nodes (see
// ProvisionerSpec.NodeLabels).
func IsUserLabel(key string) bool {
	return !WellKnownLabels.Has(key) && !RestrictedLabels.Has(key)
}

// ValidateLabelKey returns an error saying why key may not be used in labels or requirements,
// or nil if it may. It is the Go twin of the CEL rules on the CRDs (see labelKeyRules in
// requirements.go), for callers such as `nodewright migrate` that check keys before the
// apiserver does; syntax is left to the apiserver.
func ValidateLabelKey(key string) error {
	domain, _, found := strings.Cut(key, "/")
	if !found {
		return nil
	}
	switch {
	case RestrictedLabels.Has(key):
		return fmt.Errorf("label %q is restricted: it is set by nodewright or the kubelet", key)
	case WellKnownLabels.Has(key):
		return nil
	case strings.HasSuffix(domain, GroupName):
		return fmt.Errorf("label domain %q is restricted to nodewright's well-known labels", GroupName)
	case strings.HasSuffix(domain, "node.kubernetes.io"), strings.HasSuffix(domain, "node-restriction.kubernetes.io"):
		return nil
	case strings.HasSuffix(domain, "kubernetes.io"):
		return fmt.Errorf("label domain %q is restricted to the well-known labels and node.kubernetes.io", "kubernetes.io")
	case strings.HasSuffix(domain, "k8s.io"):
		return fmt.Errorf("label domain %q is restricted", "k8s.io")
	}
	return nil
}
