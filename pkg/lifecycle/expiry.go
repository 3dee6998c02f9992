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
	"github.com/nodewright/nodewright/pkg/disruption"
)

// reasonTTLExpired is the reason of the Expired condition.
const reasonTTLExpired = "TTLExpired"

// expiry replaces nodes older than their Provisioner's expireAfter (or the seed's
// ttlSecondsUntilExpired), oldest first, as many at a time as the Provisioner's disruption
// budgets allow (by default a tenth of its nodes, at least one), so a workload never loses
// its capacity to expiry all at once. Its keys are Provisioner names.
type expiry struct {
	*deps
}

// reconcile marks the expired NodeClaims of the Provisioner named name Expired, and deletes
// the oldest of them its budgets let go now.
func (e *expiry) reconcile(ctx context.Context, name string) (time.Duration, error) {
	provisioner, err := e.objects.getProvisioner(ctx, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting provisioner %s: %w", name, err)
	}
	settings := provisioner.Spec.DisruptionSettings()
	if settings.ExpireAfter == nil {
		return 0, nil
	}
	ttl := *settings.ExpireAfter
	all, err := e.objects.listNodeClaims(ctx)
	if err != nil {
		return 0, err
	}
	now := e.clock.Now()
	var expired []*v1alpha1.NodeClaim
	var next time.Duration // until the next NodeClaim expires
	for _, nc := range all {
		if nc.Spec.Provisioner != name || disruption.Disrupting(nc) {
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
	if len(expired) == 0 {
		return next, nil
	}
	slices.SortFunc(expired, func(a, b *v1alpha1.NodeClaim) int { return launchTime(a).Compare(launchTime(b)) })
	for _, nc := range expired {
		if ok, why := e.gate.Take(nc.Name, provisioner, all, v1alpha1.DisruptionExpired, now); !ok {
			klog.FromContext(ctx).V(2).Info("Expired nodes wait for their disruption budget", "nodeClaims", len(expired), "reason", why)
			break
		}
		klog.FromContext(ctx).Info("Deleting expired node", "nodeClaim", klog.KObj(nc), "node", nc.Status.NodeName, "ttl", ttl)
		e.recorder.Eventf(nc, nil, corev1.EventTypeNormal, eventExpired, actionDelete, "Node is older than %s", ttl)
		nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonExpired)...).Inc()
		if err := e.objects.deleteNodeClaim(ctx, nc.Name); err != nil {
			e.gate.Release(nc.Name)
			return 0, err
		}
	}
	// The rest wait for these to be gone; NodeClaim events bring us back.
	return drainPollInterval, nil
}
