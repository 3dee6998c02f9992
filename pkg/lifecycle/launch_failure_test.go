package lifecycle

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics/testutil"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestLaunchFailureBackoffAndBound is a claim that can never launch: each failed attempt is
// counted, the next waits twice as long as the last (whatever events on the claim ask), the
// first is reported by a Launched=False condition and an event, and once the launch has
// kept failing for the timeout the claim is deleted, which releases its pods.
func TestLaunchFailureBackoffAndBound(t *testing.T) {
	registerMetrics()
	e := newEnv(t)
	e.add(t, claim("a"), provisioner("default"), nodeClass("default"))
	e.cloud.CreateErr = errors.New("UnauthorizedOperation: not allowed to CreateFleet")
	const timeout = 30 * time.Second
	l := newLauncher(e.deps, timeout)
	failures := launchFailures.WithLabelValues("default", failLaunch.metric)
	before, err := testutil.GetCounterMetricValue(failures)
	if err != nil {
		t.Fatal(err)
	}

	// Attempts at 0, 1, 3, 7 and 15s: 1, 2, 4, 8s apart, then 15s to the deadline (not 16).
	var retries []time.Duration
	for attempt := 1; ; attempt++ {
		retry, err := l.reconcile(e.ctx, "a")
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if e.getClaim(t, "a") == nil {
			break
		}
		retries = append(retries, retry)
		if attempt == 1 {
			c := condition(e.getClaim(t, "a"), v1alpha1.ConditionLaunched)
			want := &metav1.Condition{Type: v1alpha1.ConditionLaunched, Status: metav1.ConditionFalse, Reason: failLaunch.condition,
				Message: "UnauthorizedOperation: not allowed to CreateFleet", LastTransitionTime: metav1.NewTime(t0)}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("Launched condition after the first failure (-want, +got):\n%s", diff)
			}
		}
		// An event on the claim (its own status write) brings it back before its time:
		// nothing is tried.
		calls := e.cloud.CreateCalls()
		if early, err := l.reconcile(e.ctx, "a"); err != nil || early != retry {
			t.Errorf("attempt %d: reconcile during the backoff = %v, %v; want %v, nil", attempt, early, err, retry)
		}
		if e.cloud.CreateCalls() != calls {
			t.Errorf("attempt %d: launched during the backoff", attempt)
		}
		if attempt > 10 {
			t.Fatalf("claim not deleted after %d attempts", attempt)
		}
		e.clock.Step(retry)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second}
	if diff := cmp.Diff(want, retries); diff != "" {
		t.Errorf("retry delays (-want, +got):\n%s", diff)
	}
	if got := e.cloud.CreateCalls(); got != 6 {
		t.Errorf("launch attempts = %d, want 6", got)
	}
	after, err := testutil.GetCounterMetricValue(failures)
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 6 {
		t.Errorf("%s{reason=%q} grew by %v, want 6", "nodeclaim_launch_failures_total", failLaunch.metric, after-before)
	}
	// One event for the failure (the same cause again is no news), one for the deletion.
	got := drainEvents(e)
	if len(got) != 2 || !strings.HasPrefix(got[0], "Warning LaunchFailed") ||
		!strings.HasPrefix(got[1], "Warning LaunchTimeout") || !strings.Contains(got[1], "planned again") {
		t.Errorf("events %q, want one LaunchFailed, then a LaunchTimeout saying the pods are planned again", got)
	}
}

// TestLaunchFailureBoundSurvivesRestart is a new leader, whose backoff starts empty: the
// bound counts from the first failure the claim records, so a claim failing for longer than
// the timeout is deleted at its next failed attempt, not kept for another timeout.
func TestLaunchFailureBoundSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	failing := func(nc *v1alpha1.NodeClaim) {
		nc.Finalizers = []string{v1alpha1.TerminationFinalizer}
		nc.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionLaunched, Status: metav1.ConditionFalse,
			Reason: failLaunch.condition, Message: "earlier", LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute))}}
	}
	e.add(t, claim("a", failing), claim("b", failing), provisioner("default"), nodeClass("default"))
	e.cloud.CreateErr = errors.New("still failing")
	if _, err := newLauncher(e.deps, time.Minute).reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e.getClaim(t, "a") != nil {
		t.Error("claim failing for the timeout still exists after another failed attempt")
	}
	// Under a longer timeout the same claim is tried again with backoff, its first failure kept.
	retry, err := newLauncher(e.deps, 2*time.Minute).reconcile(e.ctx, "b")
	if err != nil || retry != launchRetryBase {
		t.Errorf("reconcile = %v, %v; want a retry after %v", retry, err, launchRetryBase)
	}
	if c := condition(e.getClaim(t, "b"), v1alpha1.ConditionLaunched); c == nil || !c.LastTransitionTime.Time.Equal(t0.Add(-time.Minute)) || c.Message != "still failing" {
		t.Errorf("Launched condition %+v, want the new message since the first failure", c)
	}
}

// TestLaunchFailureReportsNewCause checks that a failure with another cause than the last
// is reported again (event), while the condition keeps the time of the first failure.
func TestLaunchFailureReportsNewCause(t *testing.T) {
	e := newEnv(t)
	e.add(t, claim("a"), provisioner("default"))
	l := newLauncher(e.deps, time.Minute)
	if _, err := l.reconcile(e.ctx, "a"); err != nil { // no node class
		t.Fatal(err)
	}
	e.add(t, nodeClass("default"))
	e.cloud.CreateErr = errors.New("boom")
	e.clock.Step(time.Second)
	if _, err := l.reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	c := condition(e.getClaim(t, "a"), v1alpha1.ConditionLaunched)
	if c == nil || c.Reason != failLaunch.condition || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Launched condition %+v, want reason %s since %v", c, failLaunch.condition, t0)
	}
	got := drainEvents(e)
	if len(got) != 2 || !strings.Contains(got[0], "ec2nodeclass default not found") || !strings.Contains(got[1], "boom") {
		t.Errorf("events %q, want one per cause", got)
	}
}
