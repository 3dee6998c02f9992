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
	"github.com/nodewright/nodewright/pkg/cloud"
)

// Reasons of the Launched condition.
const (
	reasonLaunched            = "Launched"
	reasonLaunchFailed        = "LaunchFailed"
	reasonNodeClassNotReady   = "NodeClassNotReady"
	reasonNodeClassNotFound   = "NodeClassNotFound"
	reasonProvisionerNotFound = "ProvisionerNotFound"
)

// launcher launches the instance of every NodeClaim that has none yet.
type launcher struct {
	*deps
}

// reconcile launches the NodeClaim named name unless it is launched or being deleted. The
// cloud's Create is idempotent by NodeClaim UID, so a launch interrupted after the cloud call
// (a crash, a failed status write) finds the same instance on the next try.
func (l *launcher) reconcile(ctx context.Context, name string) (time.Duration, error) {
	nc, err := l.objects.getNodeClaim(ctx, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting nodeclaim %s: %w", name, err)
	}
	if nc.DeletionTimestamp != nil || isTrue(nc, v1alpha1.ConditionLaunched) {
		return 0, nil
	}
	logger := klog.FromContext(ctx).WithValues("nodeClaim", klog.KObj(nc), "provisioner", nc.Spec.Provisioner)

	// The finalizer goes on before the cloud call: from then on, deleting the NodeClaim
	// terminates whatever was launched for it.
	nc, err = l.ensureFinalizer(ctx, nc)
	switch {
	case apierrors.IsNotFound(err):
		return 0, nil // deleted meanwhile
	case err != nil:
		return 0, err
	}

	kubelet, nodeClass, reason, err := l.launchInputs(ctx, nc)
	if err != nil {
		return 0, l.launchFailed(ctx, nc, reason, err)
	}
	instance, err := l.cloud.Create(ctx, nc, nodeClass, kubelet)
	switch {
	case cloud.IsInsufficientCapacity(err):
		// No allowed offering has capacity: the plan is void. Deleting the NodeClaim frees its
		// pods, which the Provision plugin then plans again with the pools that ran out left out.
		logger.V(2).Info("Deleting nodeclaim: no capacity for any of its offerings", "err", err)
		l.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventInsufficientCapacity, actionLaunch, "Deleting: %v", err)
		nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonInsufficientCap)...).Inc()
		return 0, l.objects.deleteNodeClaim(ctx, nc.Name)
	case cloud.IsNodeClassNotReady(err):
		return 0, l.launchFailed(ctx, nc, reasonNodeClassNotReady, err)
	case err != nil:
		return 0, l.launchFailed(ctx, nc, reasonLaunchFailed, err)
	}

	launchTime := instance.LaunchTime
	if launchTime.IsZero() {
		launchTime = l.clock.Now()
	}
	recorded := false
	if _, err := l.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
		// An earlier reconcile, from a claim read before this one, may have recorded the
		// same instance (Create is idempotent): it also logged and counted it.
		if recorded = !isTrue(nc, v1alpha1.ConditionLaunched); !recorded {
			return false
		}
		nc.Status.ProviderID = instance.ProviderID
		nc.Status.InstanceID = instance.ID
		nc.Status.NodeName = instance.NodeName
		nc.Status.InstanceType = instance.InstanceType
		nc.Status.Zone = instance.Zone
		nc.Status.CapacityType = instance.CapacityType
		nc.Status.ImageID = instance.ImageID
		nc.Status.LaunchTime = &metav1.Time{Time: launchTime}
		l.setCondition(nc, v1alpha1.ConditionLaunched, metav1.ConditionTrue, reasonLaunched, "")
		return true
	}); err != nil {
		return 0, err
	}
	if !recorded {
		return 0, nil
	}
	logger.Info(fmt.Sprintf("Launched instance: %s, hostname: %s, type: %s, zone: %s, capacityType: %s",
		instance.ID, instance.NodeName, instance.InstanceType, instance.Zone, instance.CapacityType))
	l.recorder.Eventf(nc, nil, corev1.EventTypeNormal, eventLaunched, actionLaunch,
		"Launched instance %s (%s, %s, %s)", instance.ID, instance.InstanceType, instance.Zone, instance.CapacityType)
	nodeClaimsLaunched.WithLabelValues(claimLabelValues(nc)...).Inc()
	return 0, nil
}

// launchInputs returns the kubelet configuration of nc's Provisioner and the EC2NodeClass nc
// references; on failure, the reason for the Launched condition.
func (l *launcher) launchInputs(ctx context.Context, nc *v1alpha1.NodeClaim) (*v1alpha1.KubeletConfiguration, *v1alpha1.EC2NodeClass, string, error) {
	provisioner, err := l.objects.getProvisioner(ctx, nc.Spec.Provisioner)
	if apierrors.IsNotFound(err) {
		return nil, nil, reasonProvisionerNotFound, fmt.Errorf("provisioner %s not found", nc.Spec.Provisioner)
	}
	if err != nil {
		return nil, nil, reasonLaunchFailed, fmt.Errorf("getting provisioner %s: %w", nc.Spec.Provisioner, err)
	}
	nodeClass, err := l.objects.getEC2NodeClass(ctx, nc.Spec.NodeClassRef.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil, reasonNodeClassNotFound, fmt.Errorf("ec2nodeclass %s not found", nc.Spec.NodeClassRef.Name)
	}
	if err != nil {
		return nil, nil, reasonLaunchFailed, fmt.Errorf("getting ec2nodeclass %s: %w", nc.Spec.NodeClassRef.Name, err)
	}
	return provisioner.Spec.Kubelet, nodeClass, "", nil
}

// launchFailed records cause in the Launched condition and returns it, so the queue retries
// with backoff. A launch cut short by the lifecycle stopping records nothing.
func (l *launcher) launchFailed(ctx context.Context, nc *v1alpha1.NodeClaim, reason string, cause error) error {
	if ctx.Err() != nil {
		// The lifecycle is stopping and cut the launch short: that is no launch failure to
		// record, and the next leader launches again.
		return fmt.Errorf("launching nodeclaim %s: %w", nc.Name, cause)
	}
	changed := false
	if _, err := l.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
		// A launch recorded meanwhile (the claim read here was stale) stands.
		changed = !isTrue(nc, v1alpha1.ConditionLaunched) &&
			l.setCondition(nc, v1alpha1.ConditionLaunched, metav1.ConditionFalse, reason, cause.Error())
		return changed
	}); err != nil {
		klog.FromContext(ctx).Error(err, "Recording launch failure", "nodeClaim", klog.KObj(nc))
	}
	if changed {
		l.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventLaunchFailed, actionLaunch, "%v", cause)
	}
	return fmt.Errorf("launching nodeclaim %s: %w", nc.Name, cause)
}

// ensureFinalizer adds the termination finalizer to nc if it lacks it.
func (l *launcher) ensureFinalizer(ctx context.Context, nc *v1alpha1.NodeClaim) (*v1alpha1.NodeClaim, error) {
	for _, f := range nc.Finalizers {
		if f == v1alpha1.TerminationFinalizer {
			return nc, nil
		}
	}
	finalizers := append(slices.Clone(nc.Finalizers), v1alpha1.TerminationFinalizer)
	written, err := l.objects.patchNodeClaimFinalizers(ctx, nc, finalizers)
	if err != nil {
		return nc, err
	}
	return written, nil
}
