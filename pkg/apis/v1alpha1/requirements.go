package v1alpha1

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// NodeSelectorRequirement constrains one node label: which values of Key a node nodewright
// launches may have. It is core/v1's NodeSelectorRequirement with the validation nodewright
// needs: the keys a Provisioner may not choose (kubernetes.io/hostname, the labels nodewright
// manages, the kubernetes.io, k8s.io and nodewright.dev domains beyond their well-known labels),
// the value counts each operator takes, and the keys Gt and Lt apply to: labels of the
// user's, and of the well-known labels those whose values are integers (IntegerLabels).
//
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",message="operators In and NotIn need at least one value",fieldPath=".values",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]{1,18}$'))",message="operators Gt and Lt need exactly one integer value",fieldPath=".values"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['Gt', 'Lt']) || !(self.key in ['kubernetes.io/arch', 'kubernetes.io/os', 'node.kubernetes.io/instance-type', 'topology.kubernetes.io/zone', 'topology.kubernetes.io/region', 'nodewright.dev/capacity-type', 'nodewright.dev/instance-family', 'nodewright.dev/instance-size', 'nodewright.dev/instance-gpu-name', 'nodewright.dev/instance-category', 'nodewright.dev/instance-hypervisor'])",message="operators Gt and Lt compare integers: of the well-known labels they apply only to nodewright.dev/instance-cpu, instance-memory, instance-gpu-count, instance-generation, instance-network-bandwidth and instance-local-nvme",fieldPath=".operator"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",message="operators Exists and DoesNotExist take no values",fieldPath=".values",reason="FieldValueForbidden"
type NodeSelectorRequirement struct {
	// Key is the label the requirement applies to: one of the well-known labels
	// (node.kubernetes.io/instance-type, topology.kubernetes.io/zone, kubernetes.io/arch,
	// nodewright.dev/capacity-type, nodewright.dev/instance-family, ...) to choose instance
	// types and offerings, or a label of the user's, which the nodes get: the one value an
	// In requirement allows, else a value the plan chooses for each node's pods, or none
	// where the requirement allows that (NotIn, DoesNotExist).
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self != 'kubernetes.io/hostname'",message="label \"kubernetes.io/hostname\" is restricted: the node's name is not the provisioner's to choose",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!(self in ['nodewright.dev/provisioner-name', 'nodewright.dev/nodeclaim'])",message="labels \"nodewright.dev/provisioner-name\" and \"nodewright.dev/nodeclaim\" are managed by nodewright",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self in ['nodewright.dev/capacity-type', 'nodewright.dev/instance-family', 'nodewright.dev/instance-size', 'nodewright.dev/instance-cpu', 'nodewright.dev/instance-memory', 'nodewright.dev/instance-gpu-count', 'nodewright.dev/instance-gpu-name', 'nodewright.dev/instance-category', 'nodewright.dev/instance-generation', 'nodewright.dev/instance-hypervisor', 'nodewright.dev/instance-network-bandwidth', 'nodewright.dev/instance-local-nvme', 'nodewright.dev/provisioner-name', 'nodewright.dev/nodeclaim'] || !self.find('^[^/]*/').endsWith('nodewright.dev/')",message="label domain \"nodewright.dev\" is restricted to nodewright's well-known labels",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self in ['kubernetes.io/hostname', 'kubernetes.io/arch', 'kubernetes.io/os', 'node.kubernetes.io/instance-type', 'topology.kubernetes.io/zone', 'topology.kubernetes.io/region'] || self.find('^[^/]*/').endsWith('node.kubernetes.io/') || self.find('^[^/]*/').endsWith('node-restriction.kubernetes.io/') || !self.find('^[^/]*/').endsWith('kubernetes.io/')",message="label domain \"kubernetes.io\" is restricted to the well-known labels and node.kubernetes.io",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!self.find('^[^/]*/').endsWith('k8s.io/')",message="label domain \"k8s.io\" is restricted",reason="FieldValueForbidden"
	Key string `json:"key"`

	// Operator relates the key to the values: In, NotIn, Exists, DoesNotExist, or Gt and Lt,
	// which compare an integer label (nodewright.dev/instance-cpu, instance-memory,
	// instance-gpu-count, instance-generation, instance-network-bandwidth, instance-local-nvme,
	// or a label of the user's) with the one value.
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

// String returns the requirement as `key In [a b]`, `key Exists`, for messages.
func (r NodeSelectorRequirement) String() string {
	if len(r.Values) == 0 {
		return fmt.Sprintf("%s %s", r.Key, r.Operator)
	}
	return fmt.Sprintf("%s %s %v", r.Key, r.Operator, r.Values)
}

// Matches reports whether a node whose label Key has value (has: the node has the label at
// all) satisfies the requirement, as node affinity decides it: NotIn and DoesNotExist hold
// for a node without the label, Gt and Lt compare integers.
func (r NodeSelectorRequirement) Matches(value string, has bool) bool {
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

// Label returns the node label the requirement amounts to: the one value of an In
// requirement with a single value. Any other requirement leaves a node's label open (several
// values, or none, satisfy it) and ok is false.
func (r NodeSelectorRequirement) Label() (value string, ok bool) {
	if r.Operator != corev1.NodeSelectorOpIn || len(r.Values) != 1 {
		return "", false
	}
	return r.Values[0], true
}

// RequirementLabels returns the labels reqs give a node: the value of each requirement that
// amounts to a label (see Label) whose key keep accepts; nil keep accepts every key. It is how
// a Provisioner's requirements fix labels of its nodes, and how a NodeClaim carries the
// labels its node was planned with (see LabelRequirements): the plugin, the launch's
// --node-labels and the registration read them here, each with its own key filter, and
// test/agreement checks that the filters agree.
func RequirementLabels(reqs []NodeSelectorRequirement, keep func(key string) bool) map[string]string {
	labels := map[string]string{}
	for _, r := range reqs {
		if value, ok := r.Label(); ok && (keep == nil || keep(r.Key)) {
			labels[r.Key] = value
		}
	}
	return labels
}

// AllowedValues returns the values of key that reqs allow by name, the intersection of their
// In requirements on key; nil if none names them. A launch builds only the instance types its
// NodeClaim allows this way.
func AllowedValues(reqs []NodeSelectorRequirement, key string) sets.Set[string] {
	var allowed sets.Set[string]
	for _, r := range reqs {
		if r.Key != key || r.Operator != corev1.NodeSelectorOpIn {
			continue
		}
		if allowed == nil {
			allowed = sets.New(r.Values...)
		} else {
			allowed = allowed.Intersection(sets.New(r.Values...))
		}
	}
	return allowed
}

// LabelRequirements returns the requirements that give a node labels, sorted by key: one In
// requirement with the one value per label, which RequirementLabels reads back.
func LabelRequirements(labels map[string]string) []NodeSelectorRequirement {
	var reqs []NodeSelectorRequirement
	for _, key := range slices.Sorted(maps.Keys(labels)) {
		reqs = append(reqs, NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: []string{labels[key]}})
	}
	return reqs
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
