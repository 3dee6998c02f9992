package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// reasonTTLExpired is the reason of the Expired condition.
const reasonTTLExpired = "TTLExpired"

// expiry replaces nodes older than their Provisioner's ttlSecondsUntilExpired, one node per
// Provisioner at a time, so a workload never loses its capacity to expiry all at once. Its
// keys are Provisioner names.
type expiry struct {
	*deps
}

// reconcile marks the expired NodeClaims of the Provisioner named name Expired, and deletes
// the oldest of them unless one of the Provisioner's NodeClaims is already going away.
func (e *expiry) reconcile(ctx context.Context, name string) (time.Duration, error) {
	provisioner, err := e.objects.getProvisioner(ctx, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting provisioner %s: %w", name, err)
	}
	if provisioner.Spec.TTLSecondsUntilExpired == nil {
		return 0, nil
	}
	ttl := time.Duration(*provisioner.Spec.TTLSecondsUntilExpired) * time.Second
	all, err := e.objects.listNodeClaims(ctx)
	if err != nil {
		return 0, err
	}
	now := e.clock.Now()
	var expired []*v1alpha1.NodeClaim
	var next time.Duration // until the next NodeClaim expires
	disrupting := false
	for _, nc := range all {
		if nc.Spec.Provisioner != name {
			continue
		}
		if nc.DeletionTimestamp != nil || nc.IsTrue(v1alpha1.ConditionTerminating) {
			disrupting = true
			continue
		}
		if !nc.IsTrue(v1alpha1.ConditionInitialized) {
			continue
		}
		left := ttl - now.Sub(launchTime(nc))
		if left > 0 {
			if next == 0 || left < next {
				next = left
			}
			continue
		}
		expired = append(expired, nc)
		if _, err := e.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
			return e.setCondition(nc, v1alpha1.ConditionExpired, metav1.ConditionTrue, reasonTTLExpired, "")
		}); err != nil {
			return 0, err
		}
	}
	if len(expired) == 0 || disrupting {
		if disrupting && len(expired) > 0 {
			return drainPollInterval, nil
		}
		return next, nil
	}
	slices.SortFunc(expired, func(a, b *v1alpha1.NodeClaim) int { return launchTime(a).Compare(launchTime(b)) })
	oldest := expired[0]
	klog.FromContext(ctx).Info("Deleting expired node", "nodeClaim", klog.KObj(oldest), "node", oldest.Status.NodeName, "ttl", ttl)
	e.recorder.Eventf(oldest, nil, corev1.EventTypeNormal, eventExpired, actionDelete, "Node is older than %s", ttl)
	nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(oldest), reasonExpired)...).Inc()
	if err := e.objects.deleteNodeClaim(ctx, oldest.Name); err != nil {
		return 0, err
	}
	// The next one waits for this one to be gone; NodeClaim events bring us back.
	return drainPollInterval, nil
}
