package lifecycle

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// interrupter reacts to the cloud's warnings that it is about to take instances away.
type interrupter struct {
	*deps
	queue cloud.InterruptionQueue
}

// poll receives one batch of messages and handles each; a message is deleted from the queue
// only once handled, so a failure has it delivered again.
func (i *interrupter) poll(ctx context.Context) error {
	msgs, err := i.queue.Receive(ctx)
	if err != nil {
		return fmt.Errorf("receiving interruption messages: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}
	claims, err := i.objects.listNodeClaims(ctx)
	if err != nil {
		return err
	}
	byInstance := map[string]*v1alpha1.NodeClaim{}
	for _, nc := range claims {
		if nc.Status.InstanceID != "" {
			byInstance[nc.Status.InstanceID] = nc
		}
	}
	var errs []error
	for _, msg := range msgs {
		interruptionMessages.WithLabelValues(string(msg.Kind)).Inc()
		if err := i.handle(ctx, msg, byInstance); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := i.queue.Delete(ctx, msg); err != nil {
			errs = append(errs, fmt.Errorf("deleting interruption message: %w", err))
		}
	}
	return errors.Join(errs...)
}

// handle acts on one message: an instance about to go has its NodeClaim deleted, which
// cordons and drains its node at once; a rebalance recommendation is only recorded.
func (i *interrupter) handle(ctx context.Context, msg cloud.InterruptionMessage, byInstance map[string]*v1alpha1.NodeClaim) error {
	logger := klog.FromContext(ctx)
	var errs []error
	for _, id := range msg.InstanceIDs {
		nc := byInstance[id]
		if nc == nil {
			continue // not ours, or already handled
		}
		switch {
		case msg.Kind == cloud.InterruptionRebalance:
			i.recorder.Eventf(nc, nil, corev1.EventTypeNormal, eventRebalance, actionObserve, "Instance %s is at elevated risk of interruption", id)
		case disrupts(msg):
			if nc.DeletionTimestamp != nil {
				continue
			}
			logger.Info("Deleting interrupted node", "nodeClaim", klog.KObj(nc), "instanceID", id, "kind", msg.Kind, "state", msg.State)
			i.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventInterrupted, actionDelete, "%s for instance %s", msg.Kind, id)
			nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonInterrupted)...).Inc()
			if err := i.objects.deleteNodeClaim(ctx, nc.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// disrupts reports whether msg means the instance is going away.
func disrupts(msg cloud.InterruptionMessage) bool {
	switch msg.Kind {
	case cloud.InterruptionSpot, cloud.InterruptionScheduledChange:
		return true
	case cloud.InterruptionStateChange:
		switch msg.State {
		case "stopping", "stopped", "shutting-down", "terminated":
			return true
		}
	}
	return false
}
