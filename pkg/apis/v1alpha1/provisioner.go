package v1alpha1

import (
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provisioner says which nodes nodewright may launch for the pods of nodewright-scheduler:
// the instance types and offerings its requirements allow, the labels and taints the nodes
// get, how much it may launch in total, when empty or old nodes go, and the EC2NodeClass that
// holds the cloud's settings. It is the seed's karpenter.sh/v1alpha5 Provisioner with the AWS
// parts moved to EC2NodeClass, as Karpenter's later API did.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=nodewright
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="NodeClass",type=string,JSONPath=`.spec.nodeClassRef.name`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.spec.weight`
// +kubebuilder:printcolumn:name="Nodes",type=integer,JSONPath=`.status.nodes`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="CPU",type=string,JSONPath=`.status.resources.cpu`,priority=1
// +kubebuilder:printcolumn:name="Memory",type=string,JSONPath=`.status.resources.memory`,priority=1
type Provisioner struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the user allows.
	//
	// +required
	Spec ProvisionerSpec `json:"spec"`

	// Status is what nodewright has launched for this Provisioner.
	//
	// +optional
	Status ProvisionerStatus `json:"status,omitzero"`
}

// ProvisionerSpec is what a Provisioner allows.
//
// +kubebuilder:validation:XValidation:rule="!has(self.disruption) || !has(self.ttlSecondsAfterEmpty)",message="ttlSecondsAfterEmpty is the seed's form of disruption.consolidateAfter: set disruption or ttlSecondsAfterEmpty, not both",fieldPath=".ttlSecondsAfterEmpty",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="!has(self.disruption) || !has(self.ttlSecondsUntilExpired)",message="ttlSecondsUntilExpired is the seed's form of disruption.expireAfter: set disruption or ttlSecondsUntilExpired, not both",fieldPath=".ttlSecondsUntilExpired",reason="FieldValueForbidden"
type ProvisionerSpec struct {
	// NodeClassRef names the EC2NodeClass with the cloud settings of this Provisioner's nodes.
	//
	// +required
	NodeClassRef NodeClassReference `json:"nodeClassRef"`

	// Requirements constrain the nodes launched: their instance types (by type, family, size,
	// CPUs, memory, GPUs), architecture, operating system, zone and capacity type, and any
	// label of the user's. A node satisfies every requirement; a pod's node selector and
	// node affinity narrow them further.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Requirements []NodeSelectorRequirement `json:"requirements,omitempty"`

	// Labels are put on every node launched, and pods may select them. The keys follow the
	// rules of requirements' keys.
	//
	// +optional
	// +kubebuilder:validation:MaxProperties=100
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 316 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))",message="label keys must be qualified names: an optional DNS subdomain prefix and '/', and a name of at most 63 alphanumerics, '-', '_' or '.'"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k != 'kubernetes.io/hostname')",message="label \"kubernetes.io/hostname\" is restricted: the node's name is not the provisioner's to choose",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['nodewright.dev/provisioner-name', 'nodewright.dev/nodeclaim']))",message="labels \"nodewright.dev/provisioner-name\" and \"nodewright.dev/nodeclaim\" are managed by nodewright",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['nodewright.dev/capacity-type', 'nodewright.dev/instance-family', 'nodewright.dev/instance-size', 'nodewright.dev/instance-cpu', 'nodewright.dev/instance-memory', 'nodewright.dev/instance-gpu-count', 'nodewright.dev/instance-gpu-name', 'nodewright.dev/instance-category', 'nodewright.dev/instance-generation', 'nodewright.dev/instance-hypervisor', 'nodewright.dev/instance-network-bandwidth', 'nodewright.dev/instance-local-nvme', 'nodewright.dev/provisioner-name', 'nodewright.dev/nodeclaim'] || !k.find('^[^/]*/').endsWith('nodewright.dev/'))",message="label domain \"nodewright.dev\" is restricted to nodewright's well-known labels",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['kubernetes.io/hostname', 'kubernetes.io/arch', 'kubernetes.io/os', 'node.kubernetes.io/instance-type', 'topology.kubernetes.io/zone', 'topology.kubernetes.io/region'] || k.find('^[^/]*/').endsWith('node.kubernetes.io/') || k.find('^[^/]*/').endsWith('node-restriction.kubernetes.io/') || !k.find('^[^/]*/').endsWith('kubernetes.io/'))",message="label domain \"kubernetes.io\" is restricted to the well-known labels and node.kubernetes.io",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.find('^[^/]*/').endsWith('k8s.io/'))",message="label domain \"k8s.io\" is restricted",reason="FieldValueForbidden"
	Labels map[string]LabelValue `json:"labels,omitempty"`

	// Taints are put on every node launched: only pods that tolerate them are provisioned for.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	Taints []Taint `json:"taints,omitempty"`

	// StartupTaints are put on every node launched and expected to be removed by something
	// else (a CNI or a storage driver's daemon) once the node is ready for pods. Pods need not
	// tolerate them; a node is Initialized only when they are gone.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	StartupTaints []Taint `json:"startupTaints,omitempty"`

	// Limits cap the resources of all nodes launched for this Provisioner together, counting
	// in-flight NodeClaims: cpu, memory, nvidia.com/gpu or any other resource the nodes have.
	// No limit on a resource means it is unbounded.
	//
	// +optional
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(r, !string(self[r]).startsWith('-'))",message="limits must not be negative"
	Limits corev1.ResourceList `json:"limits,omitempty"`

	// Disruption says when nodewright removes the Provisioner's nodes: consolidation,
	// expiry and their budgets. It replaces ttlSecondsAfterEmpty and ttlSecondsUntilExpired,
	// which cannot be set with it. Unset, those two say it (see ttlSecondsAfterEmpty).
	//
	// +optional
	Disruption *Disruption `json:"disruption,omitempty"`

	// TTLSecondsAfterEmpty is how long a node with no pods but DaemonSet and mirror pods
	// stays before nodewright deletes it. Unset, empty nodes are kept. It is the seed's form
	// of disruption.consolidationPolicy WhenEmpty with disruption.consolidateAfter that long,
	// and works the same way (budgets of 10 %).
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterEmpty *int64 `json:"ttlSecondsAfterEmpty,omitempty"`

	// TTLSecondsUntilExpired is how long after launch a node is drained and replaced. Unset,
	// nodes do not expire. It is the seed's form of disruption.expireAfter.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsUntilExpired *int64 `json:"ttlSecondsUntilExpired,omitempty"`

	// Weight orders Provisioners: a pod that several can serve is provisioned for by the one
	// with the highest weight. Unset is the lowest priority.
	//
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`

	// Kubelet is the kubelet configuration of the nodes launched, where it differs from the
	// AMI family's defaults.
	//
	// +optional
	Kubelet *KubeletConfiguration `json:"kubelet,omitempty"`

	// NodeCost is what each node costs beyond its instance and its volumes, in USD per hour,
	// as a decimal ("0.01"): per-host licences of monitoring or security agents, a public
	// IPv4 address (0.005), the work of running one more node. nodewright plans the fleet
	// whose instances, volumes and node costs add up to the least, so a higher NodeCost
	// favours fewer, larger nodes. Unset, DefaultNodeCost.
	//
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,4}(\.[0-9]{1,6})?$`
	NodeCost *string `json:"nodeCost,omitempty"`
}

// DefaultNodeCost is a Provisioner's NodeCost when unset, in USD per hour: 7.30 USD a month,
// the order of what a per-host monitoring or security agent's licence, or a public IPv4
// address (3.65 USD a month), adds to every node.
const DefaultNodeCost = 0.01

// NodeCostUSDPerHour returns the Provisioner's NodeCost, or DefaultNodeCost when it is unset
// or, which the apiserver's validation prevents, not a number.
func (s *ProvisionerSpec) NodeCostUSDPerHour() float64 {
	if s.NodeCost == nil {
		return DefaultNodeCost
	}
	v, err := strconv.ParseFloat(*s.NodeCost, 64)
	if err != nil || v < 0 {
		return DefaultNodeCost
	}
	return v
}

// NodeLabels returns the labels every node launched for the Provisioner carries besides
// those of its instance type: its labels, and the labels its requirements fix (see
// RequirementLabels), which take precedence, on keys of the user's (IsUserLabel). A label on
// a well-known key is left out: the instance decides it. The Provisioner's other requirements
// on keys of the user's leave the label open, for the plan to choose a value per node.
func (s *ProvisionerSpec) NodeLabels() map[string]string {
	labels := map[string]string{}
	for key, value := range s.Labels {
		if IsUserLabel(key) {
			labels[key] = string(value)
		}
	}
	maps.Copy(labels, RequirementLabels(s.Requirements, IsUserLabel))
	return labels
}

// NodeClassReference names the node class that holds a Provisioner's cloud settings.
type NodeClassReference struct {
	// Group is the node class's API group.
	//
	// +optional
	// +kubebuilder:default=nodewright.dev
	// +kubebuilder:validation:Enum=nodewright.dev
	Group string `json:"group,omitempty"`

	// Kind is the node class's kind.
	//
	// +optional
	// +kubebuilder:default=EC2NodeClass
	// +kubebuilder:validation:Enum=EC2NodeClass
	Kind string `json:"kind,omitempty"`

	// Name is the node class's name.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// KubeletConfiguration is the part of the kubelet's configuration a Provisioner sets. nodewright
// both writes it into the node's user data and uses it to compute the node's allocatable
// resources before the node exists.
type KubeletConfiguration struct {
	// ClusterDNS are the IP addresses of the cluster's DNS servers, for pods' resolv.conf.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:MaxLength=45
	ClusterDNS []string `json:"clusterDNS,omitempty"`

	// MaxPods is the most pods a node runs. Unset, the AMI family's default applies (on EKS,
	// derived from the instance type's network interfaces).
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxPods *int32 `json:"maxPods,omitempty"`

	// PodsPerCore caps the pods a node runs at this many per vCPU, if lower than MaxPods.
	// Zero means no cap.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	PodsPerCore *int32 `json:"podsPerCore,omitempty"`

	// SystemReserved is reserved for the operating system's daemons: cpu, memory,
	// ephemeral-storage or pid.
	//
	// +optional
	// +kubebuilder:validation:MaxProperties=4
	// +kubebuilder:validation:XValidation:rule="self.all(r, r in ['cpu', 'memory', 'ephemeral-storage', 'pid'])",message="only cpu, memory, ephemeral-storage and pid can be reserved"
	// +kubebuilder:validation:XValidation:rule="self.all(r, !string(self[r]).startsWith('-'))",message="reservations must not be negative"
	SystemReserved corev1.ResourceList `json:"systemReserved,omitempty"`

	// KubeReserved is reserved for Kubernetes' daemons (the kubelet, the container runtime):
	// cpu, memory, ephemeral-storage or pid.
	//
	// +optional
	// +kubebuilder:validation:MaxProperties=4
	// +kubebuilder:validation:XValidation:rule="self.all(r, r in ['cpu', 'memory', 'ephemeral-storage', 'pid'])",message="only cpu, memory, ephemeral-storage and pid can be reserved"
	// +kubebuilder:validation:XValidation:rule="self.all(r, !string(self[r]).startsWith('-'))",message="reservations must not be negative"
	KubeReserved corev1.ResourceList `json:"kubeReserved,omitempty"`

	// EvictionHard are the kubelet's hard eviction thresholds, by signal (memory.available,
	// nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree,
	// pid.available), each a quantity ("100Mi") or a percentage ("10%").
	//
	// +optional
	// +kubebuilder:validation:MaxProperties=6
	// +kubebuilder:validation:XValidation:rule="self.all(s, s in ['memory.available', 'nodefs.available', 'nodefs.inodesFree', 'imagefs.available', 'imagefs.inodesFree', 'pid.available'])",message="eviction signals must be memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree or pid.available"
	EvictionHard map[string]EvictionThreshold `json:"evictionHard,omitempty"`
}

// LabelValue is the value of a node label: at most 63 alphanumerics, '-', '_' or '.',
// beginning and ending with an alphanumeric, or empty.
//
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// EvictionThreshold is a kubelet eviction threshold: a quantity of what is left, e.g. "100Mi",
// or a percentage of the total, e.g. "10%".
//
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^([0-9]{1,2}(\.[0-9]+)?%|100%|[0-9]+(\.[0-9]+)?([KMGTPE]i|[kMGTPE])?)$`
type EvictionThreshold string

// ProvisionerStatus is what nodewright has launched for a Provisioner.
type ProvisionerStatus struct {
	// Resources is the sum of the capacity of the Provisioner's nodes and in-flight
	// NodeClaims: what its limits are counted against.
	//
	// +optional
	Resources corev1.ResourceList `json:"resources,omitempty"`

	// Nodes is the number of the Provisioner's nodes and in-flight NodeClaims.
	//
	// +optional
	Nodes int32 `json:"nodes,omitempty"`

	// Conditions are the Provisioner's conditions. Ready is true when its EC2NodeClass
	// exists and is ready, and it can launch nodes; its reason says why not otherwise.
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ProvisionerList is a list of Provisioners.
//
// +kubebuilder:object:root=true
type ProvisionerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the Provisioners.
	Items []Provisioner `json:"items"`
}
