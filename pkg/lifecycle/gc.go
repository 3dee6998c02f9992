package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// collector reconciles the cloud's instances with the NodeClaims: an instance no NodeClaim
// owns is terminated, and a NodeClaim whose instance is gone is deleted with its Node.
type collector struct {
	*deps
	// grace is how old an instance or a launch must be before it is judged: a launch records
	// its instance on the NodeClaim only after the cloud call returns, and the cloud's list is
	// only eventually consistent.
	grace time.Duration
}

// collect runs one pass of garbage collection.
func (g *collector) collect(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	instances, err := g.cloud.List(ctx)
	if err != nil {
		return fmt.Errorf("listing instances: %w", err)
	}
	claims, err := g.objects.listNodeClaims(ctx)
	if err != nil {
		return err
	}
	claimNames := map[string]bool{}
	providerIDs := map[string]bool{}
	for _, nc := range claims {
		claimNames[nc.Name] = true
		if nc.Status.ProviderID != "" {
			providerIDs[nc.Status.ProviderID] = true
		}
	}

	now := g.clock.Now()
	var errs []error
	listed := map[string]bool{}
	for _, inst := range instances {
		listed[inst.ProviderID] = true
		if claimNames[inst.NodeClaim] || providerIDs[inst.ProviderID] || now.Sub(inst.LaunchTime) < g.grace {
			continue
		}
		logger.Info("Terminating instance that no nodeclaim owns", "providerID", inst.ProviderID,
			"nodeClaim", inst.NodeClaim, "launchTime", inst.LaunchTime)
		if err := g.cloud.Delete(ctx, inst.ProviderID); err != nil && !cloud.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("terminating orphan instance %s: %w", inst.ProviderID, err))
			continue
		}
		instancesGarbageCollected.Inc()
	}

	for _, nc := range claims {
		if nc.DeletionTimestamp != nil || nc.Status.ProviderID == "" || listed[nc.Status.ProviderID] ||
			!nc.IsTrue(v1alpha1.ConditionLaunched) || now.Sub(launchTime(nc)) < g.grace {
			continue
		}
		// Absent from the list; Get confirms it is gone rather than just missed.
		if _, err := g.cloud.Get(ctx, nc.Status.ProviderID); !cloud.IsNotFound(err) {
			if err != nil {
				errs = append(errs, fmt.Errorf("getting instance %s: %w", nc.Status.ProviderID, err))
			}
			continue
		}
		logger.Info("Deleting nodeclaim whose instance is gone", "nodeClaim", klog.KObj(nc), "providerID", nc.Status.ProviderID)
		g.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventInstanceGone, actionDelete, "Instance %s no longer exists", nc.Status.InstanceID)
		nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonInstanceGone)...).Inc()
		// Termination deletes its Node first, and sees the instance gone, so does not drain.
		if err := g.objects.deleteNodeClaim(ctx, nc.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
