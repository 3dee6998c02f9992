package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

// NodeSelectorRequirement constrains one node label: which values of Key a node nodewright
// launches may have. It is core/v1's NodeSelectorRequirement with the validation nodewright
// needs: the keys a Provisioner may not choose (kubernetes.io/hostname, the labels nodewright
// manages, the kubernetes.io, k8s.io and nodewright.dev domains beyond their well-known labels)
// and the value counts each operator takes.
//
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",message="operators In and NotIn need at least one value",fieldPath=".values",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]{1,18}$'))",message="operators Gt and Lt need exactly one integer value",fieldPath=".values"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",message="operators Exists and DoesNotExist take no values",fieldPath=".values",reason="FieldValueForbidden"
type NodeSelectorRequirement struct {
	// Key is the label the requirement applies to: one of the well-known labels
	// (node.kubernetes.io/instance-type, topology.kubernetes.io/zone, kubernetes.io/arch,
	// nodewright.dev/capacity-type, nodewright.dev/instance-family, ...) to choose instance
	// types and offerings, or a label of the user's that nodes get when the requirement
	// allows exactly one value.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self != 'kubernetes.io/hostname'",message="label \"kubernetes.io/hostname\" is restricted: the node's name is not the provisioner's to choose",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!(self in ['nodewright.dev/provisioner-name', 'nodewright.dev/nodeclaim'])",message="labels \"nodewright.dev/provisioner-name\" and \"nodewright.dev/nodeclaim\" are managed by nodewright",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self in ['nodewright.dev/capacity-type', 'nodewright.dev/instance-family', 'nodewright.dev/instance-size', 'nodewright.dev/instance-cpu', 'nodewright.dev/instance-memory', 'nodewright.dev/instance-gpu-count', 'nodewright.dev/instance-gpu-name', 'nodewright.dev/provisioner-name', 'nodewright.dev/nodeclaim'] || !self.find('^[^/]*/').endsWith('nodewright.dev/')",message="label domain \"nodewright.dev\" is restricted to nodewright's well-known labels",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self in ['kubernetes.io/hostname', 'kubernetes.io/arch', 'kubernetes.io/os', 'node.kubernetes.io/instance-type', 'topology.kubernetes.io/zone', 'topology.kubernetes.io/region'] || self.find('^[^/]*/').endsWith('node.kubernetes.io/') || self.find('^[^/]*/').endsWith('node-restriction.kubernetes.io/') || !self.find('^[^/]*/').endsWith('kubernetes.io/')",message="label domain \"kubernetes.io\" is restricted to the well-known labels and node.kubernetes.io",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!self.find('^[^/]*/').endsWith('k8s.io/')",message="label domain \"k8s.io\" is restricted",reason="FieldValueForbidden"
	Key string `json:"key"`

	// Operator relates the key to the values: In, NotIn, Exists, DoesNotExist, or Gt and Lt,
	// which compare an integer label (nodewright.dev/instance-cpu, ...) with the one value.
	//
	// +required
	// +kubebuilder:validation:Enum=In;NotIn;Exists;DoesNotExist;Gt;Lt
	Operator corev1.NodeSelectorOperator `json:"operator"`

	// Values are the label values: at least one for In and NotIn, exactly one integer for Gt
	// and Lt, none for Exists and DoesNotExist.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=500
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
	Values []string `json:"values,omitempty"`
}

// Core returns the requirement as core/v1's NodeSelectorRequirement, for node affinity and
// the scheduler's node selector helpers.
func (r NodeSelectorRequirement) Core() corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: r.Key, Operator: r.Operator, Values: append([]string(nil), r.Values...)}
}

// Taint is a taint nodewright puts on the nodes it launches. It is core/v1's Taint without
// TimeAdded, which only the node lifecycle controller sets, and with its effect validated.
type Taint struct {
	// Key is the taint's key.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Key string `json:"key"`

	// Value is the taint's value, empty if it has none.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
	Value string `json:"value,omitempty"`

	// Effect is what the taint does to pods that do not tolerate it: NoSchedule,
	// PreferNoSchedule or NoExecute.
	//
	// +required
	// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
	Effect corev1.TaintEffect `json:"effect"`
}

// Core returns the taint as core/v1's Taint, as it is put on the node.
func (t Taint) Core() corev1.Taint {
	return corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}
}
