package v1alpha1

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestFromUnstructured(t *testing.T) {
	want := &NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "c1", Labels: map[string]string{LabelProvisionerName: "default"}},
		Spec: NodeClaimSpec{
			Provisioner:  "default",
			Requirements: []NodeSelectorRequirement{{Key: "team", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
		},
		Status: NodeClaimStatus{Conditions: []metav1.Condition{{Type: ConditionLaunched, Status: metav1.ConditionTrue, Reason: "Launched"}}},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	before := u.DeepCopy()
	got, err := FromUnstructured[NodeClaim](u)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromUnstructured (-want, +got):\n%s", diff)
	}
	// The caller owns what it gets.
	got.Labels["team"] = "b"
	got.Spec.Requirements[0].Values[0] = "b"
	got.Status.Conditions[0].Status = metav1.ConditionFalse
	if diff := cmp.Diff(before, u); diff != "" {
		t.Errorf("changing the result changed the unstructured object (-before, +after):\n%s", diff)
	}

	u.SetKind("NodeClaim")
	u.Object["spec"] = "not an object"
	if _, err := FromUnstructured[NodeClaim](u); err == nil || !strings.Contains(err.Error(), "NodeClaim c1") {
		t.Errorf("FromUnstructured of a malformed object: error %v, want one naming NodeClaim c1", err)
	}
}
