package lifecycle

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestRunLaunchesAfterAcquiringLease wires the Manager end to end on fakes: it takes the
// Lease, its informers see a new NodeClaim, the launch controller launches it, and Run
// returns once ctx is cancelled with every controller stopped.
func TestRunLaunchesAfterAcquiringLease(t *testing.T) {
	e := newEnv(t)
	e.add(t, provisioner("default"), nodeClass("default"))
	m, err := New(Options{
		// The fake cloud stamps launches with the fake clock: the Manager must tell time by it too.
		Client: e.kube, Dynamic: e.dyn, Cloud: e.cloud, Clock: e.clock, Recorder: events.NewFakeRecorder(100),
		LeaderElection: LeaderElectionOptions{Identity: "test", LeaseDuration: 4 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	e.add(t, claim("a"))

	err = wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		nc := e.getClaim(t, "a")
		return nc != nil && nc.IsTrue(v1alpha1.ConditionLaunched), nil
	})
	if err != nil {
		t.Fatalf("nodeclaim not launched: %v", err)
	}
	if _, err := e.kube.CoordinationV1().Leases("kube-system").Get(e.ctx, "nodewright-lifecycle", metav1GetOptions); err != nil {
		t.Errorf("lease: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if e.cloud.Creates() != 1 {
		t.Errorf("instances launched = %d, want 1", e.cloud.Creates())
	}
	// Once the caches synced, the controllers read the Provisioner and the EC2NodeClass from
	// them, not through the rate limit the scheduler binds with (the test reads the claim).
	for _, a := range e.dyn.Actions() {
		if r := a.GetResource().Resource; a.GetVerb() == "get" && r != "nodeclaims" {
			t.Errorf("get %s %s through the API, want it read from the cache", r, a.(clienttesting.GetAction).GetName())
		}
	}
}

// TestRunReturnsWhenLeaseLost: a Manager that cannot renew its Lease stops its controllers
// and its informers and returns errLostLease, for its caller to exit.
func TestRunReturnsWhenLeaseLost(t *testing.T) {
	e := newEnv(t)
	m, err := New(Options{
		Client: e.kube, Dynamic: e.dyn, Cloud: e.cloud, Clock: e.clock, Recorder: events.NewFakeRecorder(100),
		LeaderElection: LeaderElectionOptions{Identity: "test", LeaseDuration: 4 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fake's reactors may not change while it serves requests: this one is set up first.
	var refuse atomic.Bool
	e.kube.PrependReactor("update", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		if refuse.Load() {
			return true, nil, errors.New("refused")
		}
		return false, nil, nil
	})
	done := make(chan error, 1)
	go func() { done <- m.Run(e.ctx) }()
	leases := e.kube.CoordinationV1().Leases("kube-system")
	err = wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		lease, err := leases.Get(ctx, "nodewright-lifecycle", metav1GetOptions)
		return err == nil && ptr.Deref(lease.Spec.HolderIdentity, "") == "test", nil
	})
	if err != nil {
		t.Fatalf("lease not acquired: %v", err)
	}
	refuse.Store(true) // every renewal from now on
	select {
	case err := <-done:
		if !errors.Is(err, errLostLease) {
			t.Errorf("Run = %v, want %v", err, errLostLease)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the lease was lost")
	}
}
