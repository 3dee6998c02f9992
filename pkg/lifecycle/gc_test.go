package lifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nodewright/nodewright/pkg/cloud"
)

func TestGCOrphanInstance(t *testing.T) {
	e := newEnv(t)
	owned, orphan := claim("owned"), claim("orphan")
	ownedID := e.launch(t, owned)
	orphanID := e.launch(t, orphan) // its NodeClaim was never written, or deleted mid-launch
	launched(ownedID)(owned)
	e.add(t, owned)
	gc := &collector{deps: e.deps, grace: 2 * time.Minute}

	e.clock.Step(2*time.Minute - time.Second)
	if err := gc.collect(e.ctx); err != nil {
		t.Fatal(err)
	}
	if !e.instanceExists(t, orphanID) {
		t.Fatal("orphan terminated within its grace period")
	}
	e.clock.Step(time.Second)
	if err := gc.collect(e.ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{ownedID: e.instanceExists(t, ownedID), orphanID: e.instanceExists(t, orphanID)}
	if diff := cmp.Diff(map[string]bool{ownedID: true, orphanID: false}, got); diff != "" {
		t.Errorf("instances exist (-want, +got):\n%s", diff)
	}
}

// TestGCMatchesByProviderID: an instance whose tag names another claim, but whose providerID
// a NodeClaim records, is owned.
func TestGCMatchesByProviderID(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	id := e.launch(t, nc)
	renamed := claim("b", launched(id))
	e.add(t, renamed)
	e.clock.Step(time.Hour)
	if err := (&collector{deps: e.deps, grace: 2 * time.Minute}).collect(e.ctx); err != nil {
		t.Fatal(err)
	}
	if !e.instanceExists(t, id) {
		t.Error("instance recorded by a NodeClaim was terminated")
	}
}

func TestGCClaimWithoutInstance(t *testing.T) {
	e := newEnv(t)
	gone := "aws:///us-east-1a/i-00000000000000009"
	e.add(t, claim("gone", launched(gone), initialized), claim("pending")) // pending: not launched yet
	gc := &collector{deps: e.deps, grace: 2 * time.Minute}

	if err := gc.collect(e.ctx); err != nil {
		t.Fatal(err)
	}
	if e.getClaim(t, "gone") == nil {
		t.Fatal("nodeclaim deleted within the grace period after launch")
	}
	e.clock.Step(2 * time.Minute)
	if err := gc.collect(e.ctx); err != nil {
		t.Fatal(err)
	}
	if e.getClaim(t, "gone") != nil {
		t.Error("nodeclaim whose instance is gone still exists")
	}
	if e.getClaim(t, "pending") == nil {
		t.Error("nodeclaim not launched yet was deleted")
	}
	if _, err := e.cloud.Get(e.ctx, gone); !cloud.IsNotFound(err) {
		t.Errorf("Get = %v, want NotFound", err)
	}
}
