package provision

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestLedgerAdd: pods added to a claim's spare room are reserved on it, are among its pods,
// are released with it, and are found again in the claim's annotation by a rebuilt ledger.
func TestLedgerAdd(t *testing.T) {
	l := NewLedger()
	l.Rebuild([]*v1alpha1.NodeClaim{plantest.Claim("c1", "node-1", "a")})
	if l.Add("gone", v1alpha1.PodReferencesTo([]*v1.Pod{plantest.PendingPod("x", "1").Obj()})) {
		t.Errorf("Add to a claim the ledger does not hold reported true")
	}
	if _, _, ok := l.Reservation("x"); ok {
		t.Errorf("pod x reserved on a claim the ledger does not hold")
	}
	l.settle("c1")
	if !l.Add("c1", v1alpha1.PodReferencesTo([]*v1.Pod{plantest.PendingPod("b", "1").Obj()})) {
		t.Fatalf("Add to c1 reported false")
	}
	if claim, node, ok := l.Reservation("b"); !ok || claim != "c1" || node != "node-1" {
		t.Errorf("pod b reserved on %q (node %q, %v), want c1 on node-1", claim, node, ok)
	}
	if l.isSettled("c1") {
		t.Errorf("c1 still settled with a pod added")
	}
	names := func(refs []v1alpha1.PodReference) []string {
		var out []string
		for _, ref := range refs {
			out = append(out, ref.Name)
		}
		return out
	}
	if got := names(l.Pods("c1")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("pods of c1 %v, want [a b]", got)
	}
	// An update of the claim the informer shows before the annotation keeps the added pod.
	l.Set(registeredAt(plantest.Claim("c1", "node-1", "a"), time.Now()))
	if _, _, ok := l.Reservation("b"); !ok {
		t.Errorf("pod b no longer reserved after an update of c1")
	}
	if released := l.Delete("c1"); len(released) != 2 {
		t.Errorf("deleting c1 released %d pods, want 2 (a and b)", len(released))
	}
	if _, _, ok := l.Reservation("b"); ok {
		t.Errorf("pod b still reserved after c1 was deleted")
	}

	// After a restart: the annotation the round wrote.
	c2 := plantest.Claim("c2", "node-2", "a")
	c2.Annotations = map[string]string{v1alpha1.AnnotationAddedPods: `[{"namespace":"default","name":"b","uid":"b"},{"namespace":"default","name":"c","uid":"c"}]`}
	l.Rebuild([]*v1alpha1.NodeClaim{c2})
	if got := names(l.Pods("c2")); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("pods of the rebuilt c2 %v, want [a b c]", got)
	}
	if claim, _, ok := l.Reservation("c"); !ok || claim != "c2" {
		t.Errorf("pod c reserved on %q (%v) after the rebuild, want c2", claim, ok)
	}
	// One it was told of twice is there once.
	l.Add("c2", v1alpha1.PodReferencesTo([]*v1.Pod{plantest.PendingPod("c", "1").Obj()}))
	if got := names(l.Added("c2")); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("pods added to c2 %v, want [b c]", got)
	}
	// A malformed annotation adds nothing.
	c3 := plantest.Claim("c3", "node-3", "a")
	c3.Annotations = map[string]string{v1alpha1.AnnotationAddedPods: `{`}
	l.Rebuild([]*v1alpha1.NodeClaim{c3})
	if got := names(l.Pods("c3")); !slices.Equal(got, []string{"a"}) {
		t.Errorf("pods of c3, whose annotation is malformed, %v, want [a]", got)
	}
}
