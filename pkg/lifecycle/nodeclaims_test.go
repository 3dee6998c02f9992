package lifecycle

import (
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestStatusConflictIsRetried is a status write that meets a concurrent one: it is written
// again over the claim as the API has it, without an error.
func TestStatusConflictIsRetried(t *testing.T) {
	e := newEnv(t)
	e.add(t, claim("a"), provisioner("default"), nodeClass("default"))
	conflicts := 0
	e.dyn.PrependReactor("patch", "nodeclaims", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.(clienttesting.PatchAction).GetSubresource() != "status" || conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: v1alpha1.GroupName, Resource: "nodeclaims"}, "a",
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	})
	if _, err := newLauncher(e.deps, time.Minute).reconcile(e.ctx, "a"); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if conflicts != 1 {
		t.Fatalf("%d conflicts, want 1", conflicts)
	}
	if nc := e.getClaim(t, "a"); !nc.IsTrue(v1alpha1.ConditionLaunched) || e.cloud.Creates() != 1 {
		t.Errorf("Launched %v after %d launches, want launched once", conditions(nc), e.cloud.Creates())
	}
}

// TestLaunchFromStaleReadReportsOnce is a second reconcile that read the claim from a cache
// not yet showing the first one's launch: its status write conflicts, and on the claim read
// again it finds the launch recorded, so it logs, counts and records nothing a second time.
func TestLaunchFromStaleReadReportsOnce(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	e.add(t, nc, provisioner("default"), nodeClass("default"))
	l := newLauncher(e.deps, time.Minute)
	if _, err := l.reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// The claim as its finalizer was added, before the launch was recorded.
	nc.Finalizers = []string{v1alpha1.TerminationFinalizer}
	stale, err := toUnstructured(nc, "NodeClaim")
	if err != nil {
		t.Fatal(err)
	}
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := claims.Add(stale); err != nil {
		t.Fatal(err)
	}
	e.deps.objects.claims = claims
	e.dyn.PrependReactor("patch", "nodeclaims", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.(clienttesting.PatchAction).GetSubresource() != "status" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: v1alpha1.GroupName, Resource: "nodeclaims"}, "a", errors.New("modified"))
	})
	if _, err := l.reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := drainEvents(e); len(got) != 1 || !strings.HasPrefix(got[0], "Normal Launched") {
		t.Errorf("events %q, want one Launched", got)
	}
	if e.cloud.Creates() != 1 {
		t.Errorf("instances launched = %d, want 1", e.cloud.Creates())
	}
}
