package v1alpha1

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// NodeClaim is nodewright's ledger of one node it decided to launch: the Provision plugin
// writes it, with the requirements the node must meet, the instance types it may be and the
// pods it is for, before any cloud call, so a crash never loses track of a launch; the
// lifecycle then launches the instance, records it in the status, and follows the node from
// registration to termination. Its spec never changes once written.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=nodewright
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.status.instanceType`
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.status.zone`
// +kubebuilder:printcolumn:name="Capacity",type=string,JSONPath=`.status.capacityType`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.nodeName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Initialized")].status`
// +kubebuilder:printcolumn:name="Disruption",type=string,JSONPath=`.status.conditions[?(@.type=="Disrupting")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Provisioner",type=string,JSONPath=`.spec.provisioner`,priority=1
// +kubebuilder:printcolumn:name="Instance",type=string,JSONPath=`.status.instanceID`,priority=1
type NodeClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the node nodewright decided to launch. It is immutable.
	//
	// +required
	Spec NodeClaimSpec `json:"spec"`

	// Status is the instance launched for the claim and the node it became.
	//
	// +optional
	Status NodeClaimStatus `json:"status,omitzero"`
}

// NodeClaimSpec is a node nodewright decided to launch. It cannot be changed: a different node
// is a different NodeClaim.
//
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type NodeClaimSpec struct {
	// Provisioner is the name of the Provisioner the node is launched for.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Provisioner string `json:"provisioner"`

	// NodeClassRef names the node class with the cloud settings of the node.
	//
	// +required
	NodeClassRef NodeClassReference `json:"nodeClassRef"`

	// Requirements are what the node must satisfy: the Provisioner's requirements, with the
	// zone, the capacity type and the labels of the user's the node is planned with (the
	// Provisioner's labels, and the values chosen for the pods where its requirements allow
	// several) narrowed to one value each, In, which the node's labels get; and
	// node.kubernetes.io/instance-type In the candidate instance types, cheapest first, any of
	// which holds the pods.
	//
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	Requirements []NodeSelectorRequirement `json:"requirements"`

	// Resources are the resources the node is planned to need: the requests of its pods and of
	// the DaemonSet pods that will run on it.
	//
	// +optional
	Resources ResourceRequirements `json:"resources,omitzero"`

	// Taints are put on the node: the Provisioner's taints.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	Taints []Taint `json:"taints,omitempty"`

	// StartupTaints are put on the node and expected to be removed by something else once the
	// node is ready: the Provisioner's startup taints.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	StartupTaints []Taint `json:"startupTaints,omitempty"`

	// Pods are the pods the node was planned for, reserved on it until it registers.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Pods []PodReference `json:"pods,omitempty"`
}

// ResourceRequirements are the resources a NodeClaim's node is planned to need.
type ResourceRequirements struct {
	// Requests are the sum of the requests of the pods the node is for, DaemonSet pods
	// included.
	//
	// +optional
	// +kubebuilder:validation:MaxProperties=20
	Requests corev1.ResourceList `json:"requests,omitempty"`
}

// IsZero reports whether r requests nothing. An empty list of requests is then encoded as
// no list at all (resources is left out, as for nil requests): otherwise a claim planned
// for pods that request nothing is written with "resources: {}", reads back with nil
// requests, and encodes differently from what the API holds.
func (r ResourceRequirements) IsZero() bool {
	return len(r.Requests) == 0
}

// PodReference names a pod a NodeClaim's node is planned for.
type PodReference struct {
	// Namespace is the pod's namespace.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// Name is the pod's name.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// UID is the pod's UID, so a pod recreated under the same name is not mistaken for it.
	//
	// +optional
	UID types.UID `json:"uid,omitempty"`
}

// NodeClaim condition types, in the order a NodeClaim goes through them. Each condition's
// reason says why it is in its status; the lifecycle sets them.
const (
	// ConditionLaunched is true once the instance exists, false while launching fails.
	ConditionLaunched = "Launched"
	// ConditionRegistered is true once a Node with the instance's providerID has joined.
	ConditionRegistered = "Registered"
	// ConditionInitialized is true once the node is Ready and its startup taints are gone.
	ConditionInitialized = "Initialized"
	// ConditionEmpty is true while the node runs no pods but DaemonSet and mirror pods; its
	// last transition time starts the Provisioner's ttlSecondsAfterEmpty.
	ConditionEmpty = "Empty"
	// ConditionExpired is true once the node has outlived the Provisioner's
	// ttlSecondsUntilExpired.
	ConditionExpired = "Expired"
	// ConditionTerminating is true once the node is being drained and its instance
	// terminated.
	ConditionTerminating = "Terminating"
	// ConditionDisrupting is true from when nodewright decides to remove the node (its
	// reason is the DisruptionReason, its message the decision) until it is gone; a
	// disruption that is undone removes it.
	ConditionDisrupting = "Disrupting"
)

// ConditionReady is the condition type of Provisioners and EC2NodeClasses that are ready to
// have nodes launched for them.
const ConditionReady = "Ready"

// NodeClaimStatus is the instance launched for a NodeClaim and the node it became.
type NodeClaimStatus struct {
	// ProviderID is the node's provider ID, aws:///<zone>/<instance ID>, by which the Node
	// that registers is matched to the claim.
	//
	// +optional
	ProviderID string `json:"providerID,omitempty"`

	// InstanceID is the EC2 instance's ID.
	//
	// +optional
	InstanceID string `json:"instanceID,omitempty"`

	// NodeName is the name of the node, as the instance's hostname makes it.
	//
	// +optional
	NodeName string `json:"nodeName,omitempty"`

	// InstanceType is the instance's type, one of the candidates in the requirements.
	//
	// +optional
	InstanceType string `json:"instanceType,omitempty"`

	// Zone is the instance's availability zone.
	//
	// +optional
	Zone string `json:"zone,omitempty"`

	// CapacityType is the instance's capacity type: spot or on-demand.
	//
	// +optional
	CapacityType string `json:"capacityType,omitempty"`

	// ImageID is the AMI the instance booted.
	//
	// +optional
	ImageID string `json:"imageID,omitempty"`

	// NodeClassHash is the Hash of the EC2NodeClass's spec the instance was launched with: a
	// node whose class's spec has another now has drifted.
	//
	// +optional
	NodeClassHash string `json:"nodeClassHash,omitempty"`

	// Capacity is the node's capacity, as the instance type promises it.
	//
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`

	// Allocatable is the node's allocatable resources, as nodewright computed them for the
	// plan: the capacity minus the kubelet's reservations and eviction thresholds.
	//
	// +optional
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`

	// LaunchTime is when the instance was launched.
	//
	// +optional
	LaunchTime *metav1.Time `json:"launchTime,omitempty"`

	// Conditions are Launched, Registered, Initialized, Empty, Expired, Terminating and
	// Disrupting.
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AddedPods returns the pods of the claim's AnnotationAddedPods, nil if it has none, and an
// error naming the annotation if it is not a JSON array of PodReferences.
func (nc *NodeClaim) AddedPods() ([]PodReference, error) {
	value, ok := nc.Annotations[AnnotationAddedPods]
	if !ok {
		return nil, nil
	}
	var refs []PodReference
	if err := json.Unmarshal([]byte(value), &refs); err != nil {
		return nil, fmt.Errorf("nodeclaim %s: annotation %s: %w", nc.Name, AnnotationAddedPods, err)
	}
	return refs, nil
}

// ReservedPods returns the pods the claim's node is for: spec.pods, then the pods added to
// its spare room since (AnnotationAddedPods; left out if malformed).
func (nc *NodeClaim) ReservedPods() []PodReference {
	added, err := nc.AddedPods()
	if err != nil || len(added) == 0 {
		return nc.Spec.Pods
	}
	return append(slices.Clone(nc.Spec.Pods), added...)
}

// LimitedResources is what nc holds of its Provisioner's limits: its capacity once launched,
// and before, its requests (the capacity of the instance type it was planned as).
func (nc *NodeClaim) LimitedResources() corev1.ResourceList {
	if nc.Status.Capacity != nil {
		return nc.Status.Capacity
	}
	return nc.Spec.Resources.Requests
}

// IsTrue reports whether the claim's condition condType (ConditionLaunched, ...) is true.
func (nc *NodeClaim) IsTrue(condType string) bool {
	return meta.IsStatusConditionTrue(nc.Status.Conditions, condType)
}

// TrueSince returns when the claim's condition condType turned true (its last transition
// time), and false if the condition is absent or not true.
func (nc *NodeClaim) TrueSince(condType string) (time.Time, bool) {
	c := meta.FindStatusCondition(nc.Status.Conditions, condType)
	if c == nil || c.Status != metav1.ConditionTrue {
		return time.Time{}, false
	}
	return c.LastTransitionTime.Time, true
}

// NodeClaimList is a list of NodeClaims.
//
// +kubebuilder:object:root=true
type NodeClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the NodeClaims.
	Items []NodeClaim `json:"items"`
}
