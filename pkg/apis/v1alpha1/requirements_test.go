package v1alpha1

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

func TestRequirementLabels(t *testing.T) {
	in := func(key string, values ...string) NodeSelectorRequirement {
		return NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}
	}
	tests := []struct {
		name string
		reqs []NodeSelectorRequirement
		keep func(string) bool
		want map[string]string
	}{
		{name: "none", want: map[string]string{}},
		{
			name: "one value In is a label, every key kept",
			reqs: []NodeSelectorRequirement{in("team", "a"), in(corev1.LabelTopologyZone, "us-east-1a")},
			want: map[string]string{"team": "a", corev1.LabelTopologyZone: "us-east-1a"},
		},
		{
			name: "several values, other operators: no label",
			reqs: []NodeSelectorRequirement{
				in("team", "a", "b"),
				{Key: "pool", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"x"}},
				{Key: "gpu", Operator: corev1.NodeSelectorOpExists},
				{Key: "rank", Operator: corev1.NodeSelectorOpGt, Values: []string{"3"}},
			},
			want: map[string]string{},
		},
		{
			name: "the key filter: keys of the user's",
			reqs: []NodeSelectorRequirement{in("team", "a"), in(corev1.LabelTopologyZone, "us-east-1a"), in(LabelCapacityType, "spot")},
			keep: IsUserLabel,
			want: map[string]string{"team": "a"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RequirementLabels(tc.reqs, tc.keep)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RequirementLabels (-want, +got):\n%s", diff)
			}
			// Every label comes back from its requirements.
			if diff := cmp.Diff(got, RequirementLabels(LabelRequirements(got), nil)); diff != "" {
				t.Errorf("RequirementLabels(LabelRequirements) (-want, +got):\n%s", diff)
			}
		})
	}
}

func TestLabelRequirements(t *testing.T) {
	got := LabelRequirements(map[string]string{"team": "a", "example.com/pool": "x"})
	want := []NodeSelectorRequirement{
		{Key: "example.com/pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"x"}},
		{Key: "team", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LabelRequirements (-want, +got):\n%s", diff)
	}
	if got := LabelRequirements(nil); got != nil {
		t.Errorf("LabelRequirements(nil) = %v, want nil", got)
	}
}

func TestMatches(t *testing.T) {
	req := func(op corev1.NodeSelectorOperator, values ...string) NodeSelectorRequirement {
		return NodeSelectorRequirement{Key: "k", Operator: op, Values: values}
	}
	tests := []struct {
		req   NodeSelectorRequirement
		value string
		has   bool
		want  bool
	}{
		{req: req(corev1.NodeSelectorOpIn, "a", "b"), value: "b", has: true, want: true},
		{req: req(corev1.NodeSelectorOpIn, "a", "b"), value: "c", has: true},
		{req: req(corev1.NodeSelectorOpIn, "a")},
		{req: req(corev1.NodeSelectorOpNotIn, "a"), value: "b", has: true, want: true},
		{req: req(corev1.NodeSelectorOpNotIn, "a"), value: "a", has: true},
		// Node affinity: NotIn holds for a node without the label.
		{req: req(corev1.NodeSelectorOpNotIn, "a"), want: true},
		{req: req(corev1.NodeSelectorOpExists), value: "", has: true, want: true},
		{req: req(corev1.NodeSelectorOpExists)},
		{req: req(corev1.NodeSelectorOpDoesNotExist), want: true},
		{req: req(corev1.NodeSelectorOpDoesNotExist), value: "a", has: true},
		{req: req(corev1.NodeSelectorOpGt, "4"), value: "5", has: true, want: true},
		{req: req(corev1.NodeSelectorOpGt, "4"), value: "4", has: true},
		{req: req(corev1.NodeSelectorOpGt, "4"), value: "five", has: true},
		{req: req(corev1.NodeSelectorOpLt, "4"), value: "-1", has: true, want: true},
		{req: req(corev1.NodeSelectorOpLt, "4")},
	}
	for _, tc := range tests {
		if got := tc.req.Matches(tc.value, tc.has); got != tc.want {
			t.Errorf("%v.Matches(%q, %v) = %v, want %v", tc.req, tc.value, tc.has, got, tc.want)
		}
	}
}

// TestNodeCostUSDPerHour: a Provisioner's node cost, DefaultNodeCost when unset.
func TestNodeCostUSDPerHour(t *testing.T) {
	for _, tc := range []struct {
		cost *string
		want float64
	}{{nil, DefaultNodeCost}, {new("0"), 0}, {new("0.25"), 0.25}, {new("junk"), DefaultNodeCost}} {
		spec := ProvisionerSpec{NodeCost: tc.cost}
		if got := spec.NodeCostUSDPerHour(); got != tc.want {
			t.Errorf("nodeCost %v: %v USD/h, want %v", tc.cost, got, tc.want)
		}
	}
}

// TestAllowedValues: a launch builds only the instance types its NodeClaim names, the
// intersection of its In requirements on the instance type label; with none, every type.
func TestAllowedValues(t *testing.T) {
	in := func(values ...string) NodeSelectorRequirement {
		return NodeSelectorRequirement{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: values}
	}
	tests := []struct {
		name string
		reqs []NodeSelectorRequirement
		want []string
	}{
		{"none", nil, nil},
		{"other keys and operators only", []NodeSelectorRequirement{
			{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1a"}},
			{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"m5.large"}},
		}, nil},
		{"one", []NodeSelectorRequirement{in("m5.large", "c5.large")}, []string{"c5.large", "m5.large"}},
		{"intersection", []NodeSelectorRequirement{in("m5.large", "c5.large"), in("c5.large", "r5.large")}, []string{"c5.large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AllowedValues(tt.reqs, corev1.LabelInstanceTypeStable)
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("AllowedValues = %v, want %v", got, tt.want)
			}
			if got != nil && !slices.Equal(sets.List(got), tt.want) {
				t.Errorf("AllowedValues = %v, want %v", sets.List(got), tt.want)
			}
		})
	}
}
