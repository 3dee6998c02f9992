package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// drainPollInterval is how often a node being drained is looked at again while pods remain:
// evicted pods take their grace period to go, and a PodDisruptionBudget that refused an
// eviction (429) may allow it once another pod is ready elsewhere.
const drainPollInterval = 5 * time.Second

// reasonDraining is the reason of the Terminating condition.
const reasonDraining = "Draining"

// terminator finishes the deletion of Nodes and NodeClaims that carry the termination
// finalizer: drain, terminate the instance, release the finalizers.
type terminator struct {
	*deps
}

// reconcileNode drains the Node named name if it is being deleted, then terminates its
// instance, removes its finalizer and deletes its NodeClaim. A node whose instance is gone
// already has nothing to drain: its pods are gone with it.
func (t *terminator) reconcileNode(ctx context.Context, name string) (time.Duration, error) {
	node, err := t.getNode(ctx, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting node %s: %w", name, err)
	}
	if node.DeletionTimestamp == nil || !slices.Contains(node.Finalizers, v1alpha1.TerminationFinalizer) {
		return 0, nil
	}
	logger := klog.FromContext(ctx).WithValues("node", klog.KObj(node))
	nc, err := t.claimForNode(ctx, node)
	if err != nil {
		return 0, err
	}
	providerID := node.Spec.ProviderID
	if providerID == "" && nc != nil {
		providerID = nc.Status.ProviderID
	}

	gone := providerID == ""
	if !gone {
		if _, err := t.cloud.Get(ctx, providerID); cloud.IsNotFound(err) {
			gone = true
			logger.V(2).Info("Instance is gone, not draining", "providerID", providerID)
		} else if err != nil {
			return 0, fmt.Errorf("getting instance %s: %w", providerID, err)
		}
	}
	if !gone {
		if err := t.cordon(ctx, node, nc); err != nil {
			return 0, err
		}
		remaining, err := t.drain(ctx, node)
		if err != nil {
			return 0, err
		}
		if remaining > 0 {
			logger.V(4).Info("Waiting for pods to leave", "pods", remaining)
			return drainPollInterval, nil
		}
		if err := t.cloud.Delete(ctx, providerID); err != nil && !cloud.IsNotFound(err) {
			return 0, fmt.Errorf("terminating instance %s: %w", providerID, err)
		}
	}

	if err := t.removeNodeFinalizer(ctx, node.Name); err != nil {
		return 0, err
	}
	logger.Info("Deleted node", "providerID", providerID)
	if nc == nil {
		return 0, nil
	}
	t.recorder.Eventf(nc, node, corev1.EventTypeNormal, eventTerminated, actionTerminate, "Node %s drained and instance %s terminated", node.Name, providerID)
	return 0, t.objects.deleteNodeClaim(ctx, nc.Name)
}

// reconcileClaim finishes the deletion of the NodeClaim named name: its Node is deleted
// first (reconcileNode drains it), then the instance is terminated and the finalizer removed.
func (t *terminator) reconcileClaim(ctx context.Context, name string) (time.Duration, error) {
	nc, err := t.objects.getNodeClaim(ctx, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting nodeclaim %s: %w", name, err)
	}
	if nc.DeletionTimestamp == nil || !slices.Contains(nc.Finalizers, v1alpha1.TerminationFinalizer) {
		return 0, nil
	}
	node, err := t.nodeForClaim(ctx, nc)
	if err != nil {
		return 0, err
	}
	if node != nil {
		if node.DeletionTimestamp == nil {
			if err := t.kube.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("deleting node %s: %w", node.Name, err)
			}
		}
		// Node events bring us back once it is gone; the poll covers a missed one.
		return drainPollInterval, nil
	}
	if nc.Status.ProviderID != "" {
		if err := t.cloud.Delete(ctx, nc.Status.ProviderID); err != nil && !cloud.IsNotFound(err) {
			return 0, fmt.Errorf("terminating instance %s: %w", nc.Status.ProviderID, err)
		}
	}
	finalizers, _ := removeString(nc.Finalizers, v1alpha1.TerminationFinalizer)
	if _, err := t.objects.patchNodeClaimFinalizers(ctx, nc, finalizers); err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	klog.FromContext(ctx).V(2).Info("Removed nodeclaim", "nodeClaim", klog.KObj(nc), "providerID", nc.Status.ProviderID)
	return 0, nil
}

// cordon marks node unschedulable, and nc Terminating.
func (t *terminator) cordon(ctx context.Context, node *corev1.Node, nc *v1alpha1.NodeClaim) error {
	if !node.Spec.Unschedulable {
		patch := []byte(`{"spec":{"unschedulable":true}}`)
		if _, err := t.kube.CoreV1().Nodes().Patch(ctx, node.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("cordoning node %s: %w", node.Name, err)
		}
		klog.FromContext(ctx).Info("Cordoned node", "node", klog.KObj(node))
		t.recorder.Eventf(node, nil, corev1.EventTypeNormal, eventCordoned, actionCordon, "Cordoned for termination")
	}
	if nc != nil && !nc.IsTrue(v1alpha1.ConditionTerminating) {
		if _, err := t.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
			return t.setCondition(nc, v1alpha1.ConditionTerminating, metav1.ConditionTrue, reasonDraining, "")
		}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// removeNodeFinalizer removes the termination finalizer from the Node named name. It reads
// the Node afresh, and again on a conflict: the Node read at the start of the reconcile is
// stale once cordoned, and the kubelet keeps writing to it.
func (t *terminator) removeNodeFinalizer(ctx context.Context, name string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := t.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		finalizers, found := removeString(node.Finalizers, v1alpha1.TerminationFinalizer)
		if !found {
			return nil
		}
		node.Finalizers = finalizers
		_, err = t.kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer of node %s: %w", name, err)
	}
	return nil
}
