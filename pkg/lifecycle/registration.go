package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	nodeutil "k8s.io/kubernetes/pkg/util/node"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// Reasons of the Registered and Initialized conditions.
const (
	reasonNodeJoined      = "NodeJoined"
	reasonNodeInitialized = "NodeInitialized"
)

// registrar follows a launched NodeClaim until its Node has joined and is initialized, and
// gives up on an instance whose Node never joins.
type registrar struct {
	*deps
	// timeout is how long after launch a Node may take to join.
	timeout time.Duration
}

// reconcile marks the NodeClaim named name Registered once a Node with its providerID
// exists, labelling the Node and putting the termination finalizer on it, and Initialized
// once that Node is Ready with none of the claim's startup taints left.
func (r *registrar) reconcile(ctx context.Context, name string) (time.Duration, error) {
	nc, err := r.objects.getNodeClaim(ctx, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting nodeclaim %s: %w", name, err)
	}
	if nc.DeletionTimestamp != nil || !nc.IsTrue(v1alpha1.ConditionLaunched) || nc.IsTrue(v1alpha1.ConditionInitialized) {
		return 0, nil
	}
	node, err := r.nodeForClaim(ctx, nc)
	if err != nil {
		return 0, err
	}
	if node == nil {
		if nc.IsTrue(v1alpha1.ConditionRegistered) {
			// The Node went away after joining; termination and GC own that case.
			return 0, nil
		}
		return r.waitOrTimeOut(ctx, nc)
	}
	if node.DeletionTimestamp != nil {
		return 0, nil
	}
	if err := r.adoptNode(ctx, nc, node); err != nil {
		return 0, err
	}

	ready := nodeutil.IsNodeReady(node) && !hasStartupTaint(node, nc.Spec.StartupTaints)
	// What this reconcile records, as the claim written says: a reconcile that read the claim
	// before an earlier one's write reports nothing twice.
	var registered, initialized bool
	if _, err := r.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
		registered = r.setCondition(nc, v1alpha1.ConditionRegistered, metav1.ConditionTrue, reasonNodeJoined, "")
		initialized = ready && r.setCondition(nc, v1alpha1.ConditionInitialized, metav1.ConditionTrue, reasonNodeInitialized, "")
		if registered || initialized {
			nc.Status.NodeName = node.Name
		}
		return registered || initialized
	}); err != nil {
		return 0, err
	}
	if registered || initialized {
		klog.FromContext(ctx).V(2).Info("Node joined", "nodeClaim", klog.KObj(nc), "node", klog.KObj(node), "initialized", ready)
	}
	if registered {
		nodeClaimsRegistered.WithLabelValues(claimLabelValues(nc)...).Inc()
		r.recorder.Eventf(nc, node, corev1.EventTypeNormal, eventRegistered, actionRegister, "Node %s joined", node.Name)
	}
	if initialized {
		if nc.Status.LaunchTime != nil {
			launchToReadySeconds.WithLabelValues(nc.Spec.Provisioner, nc.Status.InstanceType, nc.Status.CapacityType).
				Observe(r.clock.Since(nc.Status.LaunchTime.Time).Seconds())
		}
		r.recorder.Eventf(nc, node, corev1.EventTypeNormal, eventInitialized, actionRegister, "Node %s is ready", node.Name)
	}
	// Node events bring us back when it turns Ready or loses a startup taint.
	return 0, nil
}

// waitOrTimeOut waits for nc's Node until the registration timeout has passed since launch,
// then terminates the instance and deletes the NodeClaim so its pods are planned again.
func (r *registrar) waitOrTimeOut(ctx context.Context, nc *v1alpha1.NodeClaim) (time.Duration, error) {
	launched := launchTime(nc)
	if remaining := r.timeout - r.clock.Since(launched); remaining > 0 {
		return remaining, nil
	}
	logger := klog.FromContext(ctx)
	logger.Info("Node did not join in time, terminating its instance", "nodeClaim", klog.KObj(nc),
		"providerID", nc.Status.ProviderID, "timeout", r.timeout)
	if err := r.cloud.Delete(ctx, nc.Status.ProviderID); err != nil && !cloud.IsNotFound(err) {
		return 0, fmt.Errorf("terminating instance %s: %w", nc.Status.ProviderID, err)
	}
	r.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventRegistrationTimeout, actionTerminate,
		"No node joined within %s of launch; terminated instance %s", r.timeout, nc.Status.InstanceID)
	nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonRegistrationTimeout)...).Inc()
	return 0, r.objects.deleteNodeClaim(ctx, nc.Name)
}

// adoptNode puts the NodeClaim and Provisioner labels and the termination finalizer on node,
// and the labels the node was planned with (plannedLabels) that it lacks: the kubelet's own
// values are kept. It patches rather than updates, so that the kubelet's concurrent writes
// neither conflict with it nor are lost.
func (r *registrar) adoptNode(ctx context.Context, nc *v1alpha1.NodeClaim, node *corev1.Node) error {
	if node.Labels[v1alpha1.LabelNodeClaim] == nc.Name &&
		node.Labels[v1alpha1.LabelProvisionerName] == nc.Spec.Provisioner &&
		slices.Contains(node.Finalizers, v1alpha1.TerminationFinalizer) {
		return nil
	}
	planned, err := r.plannedLabels(ctx, nc)
	if err != nil {
		return err
	}
	labels := map[string]string{}
	for k, v := range planned {
		if _, ok := node.Labels[k]; !ok {
			labels[k] = v
		}
	}
	labels[v1alpha1.LabelNodeClaim] = nc.Name
	labels[v1alpha1.LabelProvisionerName] = nc.Spec.Provisioner
	// Finalizers merge in a strategic merge patch: the one listed is added to the others.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":     labels,
		"finalizers": []string{v1alpha1.TerminationFinalizer},
	}})
	if err != nil {
		return fmt.Errorf("encoding the patch of node %s: %w", node.Name, err)
	}
	if _, err := r.kube.CoreV1().Nodes().Patch(ctx, node.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("labelling node %s: %w", node.Name, err)
	}
	return nil
}

// hasStartupTaint reports whether node still carries one of the startup taints.
func hasStartupTaint(node *corev1.Node, startup []v1alpha1.Taint) bool {
	for _, st := range startup {
		for _, t := range node.Spec.Taints {
			if t.Key == st.Key && t.Effect == st.Effect {
				return true
			}
		}
	}
	return false
}

// launchTime is when nc's instance was launched: the status's launch time, or else when the
// Launched condition turned true.
func launchTime(nc *v1alpha1.NodeClaim) time.Time {
	if nc.Status.LaunchTime != nil {
		return nc.Status.LaunchTime.Time
	}
	if since, ok := nc.TrueSince(v1alpha1.ConditionLaunched); ok {
		return since
	}
	return nc.CreationTimestamp.Time
}
