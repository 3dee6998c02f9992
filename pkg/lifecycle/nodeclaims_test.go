package lifecycle

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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

// TestReadsOwnWriteBeforeTheCache is a controller woken again before the claims cache shows
// its last write (registration's Registered, then Initialized, within a second): it reads
// the claim as written, so a write it already made is not made again from the version it
// replaced (a conflict and a GET, on a scale-up one claim in four), until the cache catches
// up or shows a version the lifecycle did not write.
func TestReadsOwnWriteBeforeTheCache(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	nc.ResourceVersion = "1"
	e.add(t, nc)
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	cacheAt := func(rv string, uid types.UID) {
		t.Helper()
		c := claim("a")
		c.ResourceVersion, c.UID = rv, uid
		u, err := toUnstructured(c, "NodeClaim")
		if err != nil {
			t.Fatal(err)
		}
		if err := claims.Update(u); err != nil {
			t.Fatal(err)
		}
	}
	cacheAt("1", nc.UID)
	e.deps.objects.claims, e.deps.objects.written = claims, newClaimWrites()
	// The API numbers its versions: each status write makes the next.
	rv, writes := 1, 0
	e.dyn.PrependReactor("patch", "nodeclaims", func(action clienttesting.Action) (bool, runtime.Object, error) {
		handled, obj, err := clienttesting.ObjectReaction(e.dyn.Tracker())(action)
		if err != nil || !handled {
			return handled, obj, err
		}
		rv++
		writes++
		obj.(metav1.Object).SetResourceVersion(strconv.Itoa(rv))
		return true, obj, nil
	})
	register := func(condType string) {
		t.Helper()
		got, err := e.deps.objects.getNodeClaim(e.ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.deps.objects.updateNodeClaimStatus(e.ctx, got, func(nc *v1alpha1.NodeClaim) bool {
			return e.deps.setCondition(nc, condType, metav1.ConditionTrue, "Test", "")
		}); err != nil {
			t.Fatal(err)
		}
	}
	register(v1alpha1.ConditionRegistered)
	register(v1alpha1.ConditionRegistered) // woken by the cache's older version: nothing to write
	register(v1alpha1.ConditionInitialized)
	if writes != 2 {
		t.Errorf("%d status writes, want 2 (Registered, Initialized)", writes)
	}
	got, err := e.deps.objects.getNodeClaim(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != "3" || !got.IsTrue(v1alpha1.ConditionRegistered) || !got.IsTrue(v1alpha1.ConditionInitialized) {
		t.Errorf("read resourceVersion %s, conditions %v; want the last write: 3, Registered and Initialized", got.ResourceVersion, conditions(got))
	}
	// The cache shows a version the lifecycle did not write (another writer's): it is read
	// as cached, and the write forgotten.
	cacheAt("9", nc.UID)
	if got, _ := e.deps.objects.getNodeClaim(e.ctx, "a"); got.ResourceVersion != "9" {
		t.Errorf("read resourceVersion %s with the cache at 9, want 9", got.ResourceVersion)
	}
	cacheAt("2", nc.UID)
	if got, _ := e.deps.objects.getNodeClaim(e.ctx, "a"); got.ResourceVersion != "2" {
		t.Errorf("read resourceVersion %s after the write was forgotten, want the cache's 2", got.ResourceVersion)
	}
	// A claim of the same name made anew is not the one written.
	register(v1alpha1.ConditionRegistered)
	cacheAt("2", "uid-other")
	if got, _ := e.deps.objects.getNodeClaim(e.ctx, "a"); got.UID != "uid-other" {
		t.Errorf("read uid %s, want the cache's new claim", got.UID)
	}
	if n := len(e.deps.objects.written.byName); n != 0 {
		t.Errorf("%d writes kept after the cache moved on, want 0", n)
	}
}
