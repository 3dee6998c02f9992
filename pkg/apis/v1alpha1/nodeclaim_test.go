package v1alpha1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestNodeClaimReservedPods(t *testing.T) {
	nc := &NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c1"}, Spec: NodeClaimSpec{Pods: []PodReference{{Namespace: "default", Name: "a", UID: "a"}}}}
	if diff := cmp.Diff(nc.Spec.Pods, nc.ReservedPods()); diff != "" {
		t.Errorf("reserved pods without the annotation (-want, +got):\n%s", diff)
	}
	nc.Annotations = map[string]string{AnnotationAddedPods: `[{"namespace":"default","name":"b","uid":"b"}]`}
	want := []PodReference{{Namespace: "default", Name: "a", UID: "a"}, {Namespace: "default", Name: "b", UID: "b"}}
	if diff := cmp.Diff(want, nc.ReservedPods()); diff != "" {
		t.Errorf("reserved pods with the annotation (-want, +got):\n%s", diff)
	}
	if len(nc.Spec.Pods) != 1 {
		t.Errorf("ReservedPods changed spec.pods: %v", nc.Spec.Pods)
	}
	nc.Annotations[AnnotationAddedPods] = `{"name":"b"}`
	if _, err := nc.AddedPods(); err == nil || !strings.Contains(err.Error(), AnnotationAddedPods) || !strings.Contains(err.Error(), "c1") {
		t.Errorf("AddedPods of a malformed annotation: error %v, want one naming the claim and the annotation", err)
	}
	if diff := cmp.Diff(nc.Spec.Pods, nc.ReservedPods()); diff != "" {
		t.Errorf("reserved pods with a malformed annotation (-want, +got):\n%s", diff)
	}
}

func TestNodeClaimConditions(t *testing.T) {
	launched := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	failing := launched.Add(-time.Minute)
	nc := &NodeClaim{Status: NodeClaimStatus{Conditions: []metav1.Condition{
		{Type: ConditionLaunched, Status: metav1.ConditionTrue, Reason: "Launched", LastTransitionTime: metav1.NewTime(launched)},
		{Type: ConditionRegistered, Status: metav1.ConditionFalse, Reason: "NotJoined", LastTransitionTime: metav1.NewTime(failing)},
		{Type: ConditionInitialized, Status: metav1.ConditionUnknown, Reason: "Waiting", LastTransitionTime: metav1.NewTime(failing)},
	}}}
	tests := []struct {
		condType  string
		wantTrue  bool
		wantSince time.Time
	}{
		{condType: ConditionLaunched, wantTrue: true, wantSince: launched},
		// A condition that is false or unknown has a transition time, but is not true since it.
		{condType: ConditionRegistered},
		{condType: ConditionInitialized},
		{condType: ConditionTerminating},
	}
	for _, tc := range tests {
		t.Run(tc.condType, func(t *testing.T) {
			if got := nc.IsTrue(tc.condType); got != tc.wantTrue {
				t.Errorf("IsTrue(%s) = %v, want %v", tc.condType, got, tc.wantTrue)
			}
			since, ok := nc.TrueSince(tc.condType)
			if ok != tc.wantTrue || !since.Equal(tc.wantSince) {
				t.Errorf("TrueSince(%s) = %v, %v, want %v, %v", tc.condType, since, ok, tc.wantSince, tc.wantTrue)
			}
		})
	}
	if (&NodeClaim{}).IsTrue(ConditionLaunched) {
		t.Errorf("IsTrue(%s) of a claim without conditions = true, want false", ConditionLaunched)
	}
}

// TestNodeClaimSpecRoundTrip checks that a spec encodes, as the dynamic clients send it, to
// what it decodes from: the API compares a claim's spec with the one it holds (the spec is
// immutable), so an update that re-encodes the spec must not change it.
func TestNodeClaimSpecRoundTrip(t *testing.T) {
	base := NodeClaimSpec{
		Provisioner:  "default",
		NodeClassRef: NodeClassReference{Group: GroupName, Kind: "EC2NodeClass", Name: "default"},
		Requirements: []NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpExists}},
	}
	tests := []struct {
		name     string
		requests corev1.ResourceList
		// wantResources is whether the encoded spec has a resources field.
		wantResources bool
	}{
		// Pods that request nothing, and no DaemonSet: the plan's sum is an empty list.
		{name: "empty requests", requests: corev1.ResourceList{}},
		{name: "nil requests", requests: nil},
		{name: "requests", requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourcePods: resource.MustParse("3")}, wantResources: true},
		{name: "zero requests", requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0")}, wantResources: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			spec.Resources.Requests = tc.requests
			written, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&NodeClaim{Spec: spec})
			if err != nil {
				t.Fatal(err)
			}
			if _, got := written["spec"].(map[string]any)["resources"]; got != tc.wantResources {
				t.Errorf("encoded spec has resources: %v, want %v (%v)", got, tc.wantResources, written["spec"])
			}
			// What the API holds is what was written, read back through JSON.
			data, err := json.Marshal(written)
			if err != nil {
				t.Fatal(err)
			}
			var held map[string]any
			if err := json.Unmarshal(data, &held); err != nil {
				t.Fatal(err)
			}
			var read NodeClaim
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(held, &read); err != nil {
				t.Fatal(err)
			}
			again, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&read)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(held["spec"], again["spec"]); diff != "" {
				t.Errorf("spec re-encoded after reading (-held, +sent):\n%s", diff)
			}
		})
	}
}
