package v1alpha1

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
