package plan

import (
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
)

// interaction says how a Filter plugin's verdict on a node for a pod can depend on the other
// pods: the audit behind the simulator's independence rule (Simulator.independent). A pod
// whose fit cannot depend on other pods is planned by arithmetic once its fit on an empty
// template is known (no Filter run per node, verdicts cached by signature); a plugin that
// compares pods on one node breaks that shortcut for the pods it compares.
type interaction int

const (
	// podLocal: the verdict reads the pod and the node, never another pod.
	podLocal interaction = iota
	// resourceSum: the verdict reads the node's pods only as the sum of their requests,
	// which the packer adds up itself (prescreen) before it trusts the shortcut.
	resourceSum
	// podToPod: the verdict compares the pod with other pods (on the node, in its topology
	// domain, or in the cluster); the pods it compares are constrained (see constrained).
	podToPod
)

// filterInteractions is the audit of the Filter plugins of kube-scheduler's default profile
// (and of those its feature gates add) for interactions between pods:
//
//	NodeUnschedulable, NodeName, NodeAffinity, TaintToleration  pod and node only
//	NodeDeclaredFeatures, DeferredPodScheduling                  pod and node only
//	NodeResourcesFit      the sum of the node's requests and its pod count
//	NodePorts             host ports in use on the node: two pods with one hostPort
//	                      (same IP and protocol) never share a node
//	VolumeRestrictions    same-disk conflicts of inline GCE PD, AWS EBS, ISCSI and RBD
//	                      volumes on the node; ReadWriteOncePod claims in the cluster
//	NodeVolumeLimits      attachable volumes counted per node (claims, generic ephemeral
//	                      volumes, inline volumes migrated to CSI)
//	VolumeBinding         claims bound or to bind, and the node's PVs; claims shared by
//	                      pods bind once
//	VolumeZone            the claim's PV zone against the node's
//	PodTopologySpread     matching pods per topology domain
//	InterPodAffinity      matching pods per topology domain, both ways
//	DynamicResources      devices allocated to claims on the node (not simulated: see
//	                      FrameworkFactoryWith; pods with resource claims are constrained)
//
// A profile with a Filter plugin not in this table (an out-of-tree one) may compare pods on
// a node in ways nodewright cannot know, so under it every pod counts as constrained
// (Simulator.allConstrained). TestFilterInteractionsCoverDefaultProfile fails when a
// Kubernetes upgrade adds a Filter plugin the table does not list.
var filterInteractions = map[string]interaction{
	names.NodeUnschedulable:     podLocal,
	names.NodeName:              podLocal,
	names.NodeAffinity:          podLocal,
	names.TaintToleration:       podLocal,
	names.NodeDeclaredFeatures:  podLocal,
	names.DeferredPodScheduling: podLocal,
	names.NodeResourcesFit:      resourceSum,
	names.NodePorts:             podToPod,
	names.VolumeRestrictions:    podToPod,
	names.NodeVolumeLimits:      podToPod,
	names.VolumeBinding:         podToPod,
	names.VolumeZone:            podToPod,
	names.PodTopologySpread:     podToPod,
	names.InterPodAffinity:      podToPod,
	names.DynamicResources:      podToPod,
}

// auditedFilters reports whether every Filter plugin of enabled is in filterInteractions.
func auditedFilters(enabled []string) bool {
	for _, name := range enabled {
		if _, ok := filterInteractions[name]; !ok {
			return false
		}
	}
	return true
}
