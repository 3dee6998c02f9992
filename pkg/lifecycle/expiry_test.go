package lifecycle

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestExpiry: three nodes launched at t0, t0+1m and t0+2m with a one-hour TTL. They are
// replaced one at a time, oldest first.
func TestExpiry(t *testing.T) {
	e := newEnv(t)
	for i, name := range []string{"old", "mid", "new"} {
		e.add(t, claim(name, launched("aws:///us-east-1a/i-0000000000000000"+string(rune('1'+i))), initialized,
			func(nc *v1alpha1.NodeClaim) { nc.Status.LaunchTime.Time = t0.Add(time.Duration(i) * time.Minute) }))
	}
	e.add(t, provisioner("default", func(p *v1alpha1.Provisioner) { p.Spec.TTLSecondsUntilExpired = ptr.To[int64](3600) }))
	ex := &expiry{deps: e.deps}

	requeue, err := ex.reconcile(e.ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if requeue != time.Hour {
		t.Errorf("requeue after %s, want 1h until the oldest expires", requeue)
	}

	e.clock.Step(time.Hour + 5*time.Minute) // all three expired
	if _, err := ex.reconcile(e.ctx, "default"); err != nil {
		t.Fatal(err)
	}
	if e.getClaim(t, "old") != nil {
		t.Error("oldest expired nodeclaim not deleted")
	}
	for _, name := range []string{"mid", "new"} {
		nc := e.getClaim(t, name)
		if nc == nil {
			t.Fatalf("nodeclaim %s deleted along with the oldest, want one at a time", name)
		}
		if !nc.IsTrue(v1alpha1.ConditionExpired) {
			t.Errorf("nodeclaim %s not marked Expired", name)
		}
	}

	// While one is being drained, no other goes.
	mid := e.getClaim(t, "mid")
	if _, err := e.deps.objects.updateNodeClaimStatus(e.ctx, mid, func(nc *v1alpha1.NodeClaim) bool {
		return e.deps.setCondition(nc, v1alpha1.ConditionTerminating, "True", reasonDraining, "")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.reconcile(e.ctx, "default"); err != nil {
		t.Fatal(err)
	}
	if e.getClaim(t, "new") == nil {
		t.Error("a second nodeclaim was deleted while one was terminating")
	}
}
