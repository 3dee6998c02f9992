package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

func TestLaunch(t *testing.T) {
	launchedStatus := v1alpha1.NodeClaimStatus{
		// The fake cloud's first instance: the only allowed type's cheapest offering.
		ProviderID:   "aws:///us-east-1a/i-00000000000000001",
		InstanceID:   "i-00000000000000001",
		NodeName:     "ip-10-0-0-1.ec2.internal",
		InstanceType: "m5.large",
		Zone:         "us-east-1a",
		CapacityType: v1alpha1.CapacityTypeSpot,
		LaunchTime:   &metav1.Time{Time: t0},
		// What the claim's class had when it launched, for drift.
		NodeClassHash: nodeClass("default").Spec.Hash(),
		Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionLaunched, Status: metav1.ConditionTrue, Reason: reasonLaunched, LastTransitionTime: metav1.NewTime(t0),
		}},
	}
	tests := []struct {
		name      string
		claim     *v1alpha1.NodeClaim
		noClass   bool
		createErr error
		// reconciles is how many times the claim is reconciled; a second one must not launch again.
		reconciles int
		// wantRetry is when a failed launch is to be tried again.
		wantRetry   time.Duration
		wantDeleted bool
		wantStatus  *v1alpha1.NodeClaimStatus
		wantCreates int
	}{{
		name:        "launches and records the instance",
		claim:       claim("a"),
		reconciles:  1,
		wantStatus:  &launchedStatus,
		wantCreates: 1,
	}, {
		name:        "reconciling a launched claim again launches nothing",
		claim:       claim("a"),
		reconciles:  2,
		wantStatus:  &launchedStatus,
		wantCreates: 1,
	}, {
		name: "insufficient capacity deletes the claim so its pods are planned again",
		claim: claim("a", func(nc *v1alpha1.NodeClaim) {
			nc.Spec.Requirements[0].Values = []string{"p5.48xlarge"} // no offering anywhere
		}),
		reconciles:  1,
		wantDeleted: true,
	}, {
		name:       "missing node class is recorded and retried",
		claim:      claim("a"),
		noClass:    true,
		reconciles: 1,
		wantRetry:  launchRetryBase,
		wantStatus: &v1alpha1.NodeClaimStatus{Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionLaunched, Status: metav1.ConditionFalse, Reason: failNodeClassNotFound.condition,
			Message: "ec2nodeclass default not found", LastTransitionTime: metav1.NewTime(t0),
		}}},
	}, {
		name:       "cloud failure is recorded and retried",
		claim:      claim("a"),
		createErr:  errors.New("RequestLimitExceeded"),
		reconciles: 1,
		wantRetry:  launchRetryBase,
		wantStatus: &v1alpha1.NodeClaimStatus{Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionLaunched, Status: metav1.ConditionFalse, Reason: failLaunch.condition,
			Message: "RequestLimitExceeded", LastTransitionTime: metav1.NewTime(t0),
		}}},
	}, {
		name:        "a claim being deleted is not launched",
		claim:       claim("a", deleting, func(nc *v1alpha1.NodeClaim) { nc.Finalizers = []string{"other"} }),
		reconciles:  1,
		wantStatus:  &v1alpha1.NodeClaimStatus{},
		wantCreates: 0,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.add(t, tc.claim, provisioner("default"))
			if !tc.noClass {
				e.add(t, nodeClass("default"))
			}
			e.cloud.CreateErr = tc.createErr
			l := newLauncher(e.deps, DefaultLaunchTimeout)
			var retry time.Duration
			var err error
			for range tc.reconciles {
				if retry, err = l.reconcile(e.ctx, tc.claim.Name); err != nil {
					t.Fatalf("reconcile: %v", err)
				}
			}
			if retry != tc.wantRetry {
				t.Errorf("retry after %v, want %v", retry, tc.wantRetry)
			}
			if got := e.cloud.Creates(); got != tc.wantCreates {
				t.Errorf("instances launched = %d, want %d", got, tc.wantCreates)
			}
			got := e.getClaim(t, tc.claim.Name)
			if tc.wantDeleted {
				if got != nil {
					t.Errorf("nodeclaim still exists, want it deleted")
				}
				return
			}
			if got == nil {
				t.Fatal("nodeclaim was deleted")
			}
			if diff := cmp.Diff(*tc.wantStatus, got.Status); diff != "" {
				t.Errorf("status (-want, +got):\n%s", diff)
			}
			if tc.claim.DeletionTimestamp == nil {
				if diff := cmp.Diff([]string{v1alpha1.TerminationFinalizer}, got.Finalizers); diff != "" {
					t.Errorf("finalizers (-want, +got):\n%s", diff)
				}
			}
		})
	}
}

// TestLaunchAfterLostStatusWrite is a restart between the cloud call and the status write:
// Create is idempotent by NodeClaim UID, so the retry records the same instance.
func TestLaunchAfterLostStatusWrite(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	e.add(t, nc, provisioner("default"), nodeClass("default"))
	first, err := e.cloud.Create(e.ctx, nc, nil, nil) // the launch whose status write was lost
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newLauncher(e.deps, DefaultLaunchTimeout).reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := e.getClaim(t, "a").Status.ProviderID; got != first.ProviderID {
		t.Errorf("providerID = %q, want the first launch's %q", got, first.ProviderID)
	}
	if e.cloud.Creates() != 1 {
		t.Errorf("instances launched = %d, want 1", e.cloud.Creates())
	}
}

// TestLaunchCutShortByStop is the lifecycle stopping (the Lease lost, the process ending)
// while the cloud call is in flight: the cancelled call is not recorded as a launch failure
// on the NodeClaim, which the next leader launches as if nothing happened.
func TestLaunchCutShortByStop(t *testing.T) {
	e := newEnv(t)
	e.add(t, claim("a"), provisioner("default"), nodeClass("default"))
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	e.cloud.CreateErr = fmt.Errorf("creating fleet: %w", context.Canceled)
	if _, err := newLauncher(e.deps, DefaultLaunchTimeout).reconcile(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("reconcile = %v, want the cancellation", err)
	}
	if c := condition(e.getClaim(t, "a"), v1alpha1.ConditionLaunched); c != nil {
		t.Errorf("Launched condition %+v recorded for a launch cut short", c)
	}
}

// TestLaunchInsufficientCapacityError checks the typed error, not just an empty catalog.
func TestLaunchInsufficientCapacityError(t *testing.T) {
	e := newEnv(t)
	e.add(t, claim("a"), provisioner("default"), nodeClass("default"))
	e.cloud.CreateErr = &cloud.InsufficientCapacityError{Offerings: []string{"m5.large/us-east-1a/spot"}}
	if _, err := newLauncher(e.deps, DefaultLaunchTimeout).reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e.getClaim(t, "a") != nil {
		t.Error("nodeclaim still exists after insufficient capacity, want it deleted")
	}
}
