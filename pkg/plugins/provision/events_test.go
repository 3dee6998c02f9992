package provision

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestDeletingClaimReleasesItsPods: a NodeClaim marked for deletion (the lifecycle gave up
// launching it; its finalizer is still on) releases its pods at once: they are activated and
// a round is triggered, and its final deletion later releases nothing twice.
func TestDeletingClaimReleasesItsPods(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, h, clk := activatingPlugin(ctx, plantest.PendingPod("a", "1").Obj())
	p.batcher = newBatcher(clk, time.Second, 10*time.Second, func(context.Context) {})
	nc := plantest.Claim("c1", "", "a")
	p.onNodeClaim(ctx, unstructuredClaim(t, nc))
	if _, _, ok := p.ledger.Reservation("a"); !ok {
		t.Fatal("pod a not reserved on its claim")
	}

	nc.DeletionTimestamp = &metav1.Time{Time: clk.Now()}
	nc.Finalizers = []string{v1alpha1.TerminationFinalizer}
	p.onNodeClaim(ctx, unstructuredClaim(t, nc))
	if _, _, ok := p.ledger.Reservation("a"); ok {
		t.Error("pod a still reserved on a claim being deleted")
	}
	if diff := cmp.Diff([]string{"default/a"}, h.activated); diff != "" {
		t.Errorf("activated pods (-want, +got):\n%s", diff)
	}
	if len(p.batcher.pending) != 1 {
		t.Error("no round triggered for the released pods")
	}
	p.onNodeClaimDeleted(ctx, unstructuredClaim(t, nc))
	if len(h.activated) != 1 {
		t.Errorf("activated %v, want pod a once", h.activated)
	}
}

func unstructuredClaim(t *testing.T, nc *v1alpha1.NodeClaim) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}
