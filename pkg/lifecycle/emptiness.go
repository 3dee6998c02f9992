package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/disruption"
)

// reasonNoPods is the reason of the Empty condition.
const reasonNoPods = "NoPods"

// emptiness deletes nodes that have run nothing but DaemonSet and mirror pods for their
// Provisioner's ttlSecondsAfterEmpty. Its keys are Node names, since pods name their node.
type emptiness struct {
	*deps
}

// reconcile sets or clears the Empty condition of the NodeClaim of the Node named name, and
// deletes the Node once it has been empty for the TTL; termination drains and terminates it.
func (e *emptiness) reconcile(ctx context.Context, name string) (time.Duration, error) {
	node, err := e.getNode(ctx, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting node %s: %w", name, err)
	}
	if node.DeletionTimestamp != nil {
		return 0, nil
	}
	nc, err := e.claimForNode(ctx, node)
	if err != nil || nc == nil || nc.DeletionTimestamp != nil || !nc.IsTrue(v1alpha1.ConditionInitialized) {
		// Not ours, going away, or not yet initialized: a node still booting is not empty.
		return 0, err
	}
	provisioner, err := e.objects.getProvisioner(ctx, nc.Spec.Provisioner)
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("getting provisioner %s: %w", nc.Spec.Provisioner, err)
	}
	var settings v1alpha1.DisruptionSettings
	if provisioner != nil {
		settings = provisioner.Spec.DisruptionSettings()
	}
	if provisioner == nil || !settings.Consolidates(v1alpha1.DisruptionEmpty) {
		// Empty nodes of this Provisioner are kept: no timestamp to keep either. A node
		// whose Provisioner is gone is deleted with its claim (orphans), empty or not.
		return 0, e.clearEmpty(ctx, nc)
	}
	pods, err := e.cachedPodsOnNode(ctx, node.Name)
	if err != nil {
		return 0, err
	}
	empty, blocked := nodeIsEmpty(pods)
	if !empty || blocked || disruption.DoNotDisrupt(node.Annotations) != "" || disruption.Disrupting(nc) {
		return 0, e.clearEmpty(ctx, nc)
	}
	// A replacement is not empty while it holds room for the pods a disruption moves to it.
	if disruption.Holding(nc, e.clock.Now()) {
		return reservedRecheck, e.clearEmpty(ctx, nc)
	}
	// A fresh node is not empty while pods it was launched for are still on their way to it.
	if pending, err := e.reservedPending(ctx, nc); err != nil || pending != "" {
		if pending != "" {
			klog.FromContext(ctx).V(4).Info("Node has no pods yet but a reserved pod is pending", "node", klog.KObj(node), "pod", pending)
		}
		return reservedRecheck, errors.Join(err, e.clearEmpty(ctx, nc))
	}

	logger := klog.FromContext(ctx).WithValues("node", klog.KObj(node), "nodeClaim", klog.KObj(nc))
	ttl := *settings.ConsolidateAfter
	emptySince, ttlStarted := nc.TrueSince(v1alpha1.ConditionEmpty)
	if !ttlStarted {
		// The condition's time is stored to the second: rounding it up, rather than letting
		// the API round it down, keeps the TTL from ending up to a second early.
		now := e.clock.Now()
		since := now.Truncate(time.Second)
		if since.Before(now) {
			since = since.Add(time.Second)
		}
		added := false
		if _, err := e.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
			if added = !nc.IsTrue(v1alpha1.ConditionEmpty); !added {
				return false
			}
			meta.SetStatusCondition(&nc.Status.Conditions, metav1.Condition{
				Type: v1alpha1.ConditionEmpty, Status: metav1.ConditionTrue, Reason: reasonNoPods,
				ObservedGeneration: nc.Generation, LastTransitionTime: metav1.NewTime(since),
			})
			return true
		}); err != nil {
			return 0, err
		}
		if added {
			logger.Info("Added TTL to empty node", "ttl", ttl)
			e.recorder.Eventf(node, nc, corev1.EventTypeNormal, eventEmpty, actionObserve, "Node is empty; deleting it in %s unless a pod arrives", ttl)
			return ttl + since.Sub(now), nil
		}
		// An earlier reconcile, of a claim read before this one, started the TTL.
		emptySince, _ = nc.TrueSince(v1alpha1.ConditionEmpty)
	}
	if remaining := ttl - e.clock.Since(emptySince); remaining > 0 {
		return remaining, nil
	}
	// The cache may lag a pod that has just been bound: ask the API before deleting.
	if e.pods != nil {
		pods, err := e.podsOnNode(ctx, node.Name)
		if err != nil {
			return 0, err
		}
		if empty, blocked := nodeIsEmpty(pods); !empty || blocked {
			return 0, e.clearEmpty(ctx, nc)
		}
	}
	claims, err := e.objects.listNodeClaims(ctx)
	if err != nil {
		return 0, err
	}
	if ok, why := e.gate.Take(nc.Name, provisioner, claims, v1alpha1.DisruptionEmpty, e.clock.Now()); !ok {
		logger.V(2).Info("Empty node waits for its disruption budget", "reason", why)
		return budgetRecheck, nil
	}
	logger.Info(fmt.Sprintf("Triggering termination after %s for empty node", ttl))
	e.recorder.Eventf(node, nc, corev1.EventTypeNormal, eventEmptyTTLExpired, actionDelete, "Node was empty for %s", ttl)
	nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonEmpty)...).Inc()
	if err := e.kube.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("deleting empty node %s: %w", node.Name, err)
	}
	return 0, nil
}

// budgetRecheck is how soon a node that waits for its Provisioner's disruption budget is
// looked at again: the nodes being disrupted going away does not name it.
const budgetRecheck = 10 * time.Second

// reservedRecheck is how soon a node that is empty but for reserved pods still pending is
// looked at again: those pods' deletion does not name the node.
const reservedRecheck = 10 * time.Second

// reservedPending returns the namespace/name of a pod reserved on nc (launched for, or added
// to its spare room since) that still exists unbound and not deleting, or "" if none does.
func (e *emptiness) reservedPending(ctx context.Context, nc *v1alpha1.NodeClaim) (string, error) {
	for _, ref := range nc.ReservedPods() {
		pod, err := e.getPod(ctx, ref.Namespace, ref.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("getting reserved pod %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if pod.UID == ref.UID && pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && !isTerminal(pod) {
			return ref.Namespace + "/" + ref.Name, nil
		}
	}
	return "", nil
}

// clearEmpty removes nc's Empty condition, if it has one, so a later emptiness starts a new TTL.
func (e *emptiness) clearEmpty(ctx context.Context, nc *v1alpha1.NodeClaim) error {
	_, err := e.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
		return meta.RemoveStatusCondition(&nc.Status.Conditions, v1alpha1.ConditionEmpty)
	})
	return err
}

// nodeIsEmpty reports whether pods are only DaemonSet, mirror and finished pods, and whether
// one of them forbids disrupting the node.
func nodeIsEmpty(pods []*corev1.Pod) (empty, blocked bool) {
	empty = true
	for _, pod := range pods {
		if hasDoNotEvict(pod) && !isTerminal(pod) {
			blocked = true
		}
		if isEvictable(pod) {
			empty = false
		}
	}
	return empty, blocked
}
