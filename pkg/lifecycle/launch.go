package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// reasonLaunched is the reason of the Launched condition once the instance exists.
const reasonLaunched = "Launched"

// launchFailure is why a launch attempt failed: the reason of the Launched condition and the
// reason label of the launch failures metric.
type launchFailure struct {
	condition, metric string
}

// The causes of a failed launch attempt.
var (
	failProvisionerNotFound = launchFailure{"ProvisionerNotFound", "provisioner_not_found"}
	failNodeClassNotFound   = launchFailure{"NodeClassNotFound", "nodeclass_not_found"}
	failNodeClassNotReady   = launchFailure{"NodeClassNotReady", "nodeclass_not_ready"}
	// failInsufficientCapacity is not recorded in the condition: the claim is deleted at once.
	failInsufficientCapacity = launchFailure{"InsufficientCapacity", "insufficient_capacity"}
	// failLaunch is any other error: the cloud's, or the API's.
	failLaunch = launchFailure{"LaunchFailed", "launch_failed"}
)

// launcher launches the instance of every NodeClaim that has none yet. A claim whose launch
// fails is tried again with backoff (launchBackoff), and deleted once its launch has kept
// failing for timeout, so that the Provision plugin plans its pods again.
type launcher struct {
	*deps
	// timeout is how long a claim's launch may keep failing, counted from its first failure
	// (the Launched condition turning False), before the claim is deleted.
	timeout time.Duration
	backoff *launchBackoff
}

func newLauncher(d *deps, timeout time.Duration) *launcher {
	return &launcher{deps: d, timeout: timeout, backoff: newLaunchBackoff()}
}

// reconcile launches the NodeClaim named name unless it is launched or being deleted. The
// cloud's Create is idempotent by NodeClaim UID, so a launch interrupted after the cloud call
// (a crash, a failed status write) finds the same instance on the next try.
func (l *launcher) reconcile(ctx context.Context, name string) (time.Duration, error) {
	nc, err := l.objects.getNodeClaim(ctx, name)
	if apierrors.IsNotFound(err) {
		l.backoff.forget(name)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting nodeclaim %s: %w", name, err)
	}
	if nc.DeletionTimestamp != nil || nc.IsTrue(v1alpha1.ConditionLaunched) {
		l.backoff.forget(name)
		return 0, nil
	}
	// Events on the claim (its own failure being recorded among them) do not cut a backoff
	// short.
	if wait := l.backoff.wait(nc, l.clock.Now()); wait > 0 {
		return wait, nil
	}
	logger := klog.FromContext(ctx).WithValues("nodeClaim", klog.KObj(nc), "provisioner", nc.Spec.Provisioner)

	// The finalizer goes on before the cloud call: from then on, deleting the NodeClaim
	// terminates whatever was launched for it.
	nc, err = l.ensureFinalizer(ctx, nc)
	switch {
	case apierrors.IsNotFound(err):
		return 0, nil // deleted meanwhile
	case apierrors.IsConflict(err):
		return 0, err // a stale read, retried by the queue without counting as a failure
	case err != nil:
		return l.launchFailed(ctx, nc, failLaunch, err)
	}

	kubelet, nodeClass, failure, err := l.launchInputs(ctx, nc)
	if err != nil {
		return l.launchFailed(ctx, nc, failure, err)
	}
	instance, err := l.cloud.Create(ctx, nc, nodeClass, kubelet)
	switch {
	case cloud.IsInsufficientCapacity(err):
		// No allowed offering has capacity: the plan is void. Deleting the NodeClaim frees its
		// pods, which the Provision plugin then plans again with the pools that ran out left out.
		logger.V(2).Info("Deleting nodeclaim: no capacity for any of its offerings", "err", err)
		l.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventInsufficientCapacity, actionLaunch, "Deleting: %v", err)
		launchFailures.WithLabelValues(nc.Spec.Provisioner, failInsufficientCapacity.metric).Inc()
		nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonInsufficientCap)...).Inc()
		l.backoff.forget(name)
		return 0, l.objects.deleteNodeClaim(ctx, nc.Name)
	case cloud.IsNodeClassNotReady(err):
		return l.launchFailed(ctx, nc, failNodeClassNotReady, err)
	case err != nil:
		return l.launchFailed(ctx, nc, failLaunch, err)
	}

	launchTime := instance.LaunchTime
	if launchTime.IsZero() {
		launchTime = l.clock.Now()
	}
	recorded := false
	if _, err := l.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
		// An earlier reconcile, from a claim read before this one, may have recorded the
		// same instance (Create is idempotent): it also logged and counted it.
		if recorded = !nc.IsTrue(v1alpha1.ConditionLaunched); !recorded {
			return false
		}
		nc.Status.ProviderID = instance.ProviderID
		nc.Status.InstanceID = instance.ID
		nc.Status.NodeName = instance.NodeName
		nc.Status.InstanceType = instance.InstanceType
		nc.Status.Zone = instance.Zone
		nc.Status.CapacityType = instance.CapacityType
		nc.Status.ImageID = instance.ImageID
		nc.Status.NodeClassHash = nodeClass.Spec.Hash()
		nc.Status.LaunchTime = &metav1.Time{Time: launchTime}
		l.setCondition(nc, v1alpha1.ConditionLaunched, metav1.ConditionTrue, reasonLaunched, "")
		return true
	}); err != nil {
		return 0, err
	}
	l.backoff.forget(name)
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
// references; on failure, its cause.
func (l *launcher) launchInputs(ctx context.Context, nc *v1alpha1.NodeClaim) (*v1alpha1.KubeletConfiguration, *v1alpha1.EC2NodeClass, launchFailure, error) {
	provisioner, err := l.objects.getProvisioner(ctx, nc.Spec.Provisioner)
	if apierrors.IsNotFound(err) {
		return nil, nil, failProvisionerNotFound, fmt.Errorf("provisioner %s not found", nc.Spec.Provisioner)
	}
	if err != nil {
		return nil, nil, failLaunch, fmt.Errorf("getting provisioner %s: %w", nc.Spec.Provisioner, err)
	}
	nodeClass, err := l.objects.getEC2NodeClass(ctx, nc.Spec.NodeClassRef.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil, failNodeClassNotFound, fmt.Errorf("ec2nodeclass %s not found", nc.Spec.NodeClassRef.Name)
	}
	if err != nil {
		return nil, nil, failLaunch, fmt.Errorf("getting ec2nodeclass %s: %w", nc.Spec.NodeClassRef.Name, err)
	}
	return provisioner.Spec.Kubelet, nodeClass, launchFailure{}, nil
}

// launchFailed reports a failed launch attempt (metric; Launched=False with the cause; an
// event and a log line when the cause is new) and returns when to try again, by the claim's
// backoff; once the launch has kept failing for the timeout, it deletes the claim instead. A
// launch cut short by the lifecycle stopping records nothing.
func (l *launcher) launchFailed(ctx context.Context, nc *v1alpha1.NodeClaim, failure launchFailure, cause error) (time.Duration, error) {
	if ctx.Err() != nil {
		// The lifecycle is stopping and cut the launch short: that is no launch failure to
		// record, and the next leader launches again.
		return 0, fmt.Errorf("launching nodeclaim %s: %w", nc.Name, cause)
	}
	logger := klog.FromContext(ctx).WithValues("nodeClaim", klog.KObj(nc), "provisioner", nc.Spec.Provisioner)
	launchFailures.WithLabelValues(nc.Spec.Provisioner, failure.metric).Inc()
	now := l.clock.Now()
	since := now
	old := meta.FindStatusCondition(nc.Status.Conditions, v1alpha1.ConditionLaunched)
	if old != nil && old.Status == metav1.ConditionFalse {
		since = old.LastTransitionTime.Time
	}
	if failingFor := now.Sub(since); failingFor >= l.timeout {
		return 0, l.giveUp(ctx, nc, failingFor, failure, cause)
	}
	retryAfter := l.backoff.failed(nc, now, since.Add(l.timeout))
	if old == nil || old.Status != metav1.ConditionFalse || old.Reason != failure.condition {
		logger.Info("Launch failed, will retry", "reason", failure.condition, "err", cause, "retryAfter", retryAfter,
			"deleteAfter", since.Add(l.timeout).Sub(now))
		l.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventLaunchFailed, actionLaunch, "%v", cause)
	} else {
		logger.V(2).Info("Launch failed again, will retry", "reason", failure.condition, "err", cause, "retryAfter", retryAfter)
	}
	if _, err := l.objects.updateNodeClaimStatus(ctx, nc, func(nc *v1alpha1.NodeClaim) bool {
		// A launch recorded meanwhile (the claim read here was stale) stands.
		return !nc.IsTrue(v1alpha1.ConditionLaunched) &&
			l.setCondition(nc, v1alpha1.ConditionLaunched, metav1.ConditionFalse, failure.condition, cause.Error())
	}); err != nil {
		// The launch is tried again all the same, after its backoff.
		return 0, fmt.Errorf("recording the launch failure of nodeclaim %s: %w", nc.Name, err)
	}
	return retryAfter, nil
}

// giveUp deletes nc, whose launch has kept failing for failingFor: the Provision plugin
// plans its pods again once it is gone (termination removes its finalizer at once, since it
// has no instance; garbage collection terminates an instance a failed call may have left).
func (l *launcher) giveUp(ctx context.Context, nc *v1alpha1.NodeClaim, failingFor time.Duration, failure launchFailure, cause error) error {
	klog.FromContext(ctx).Info("Deleting nodeclaim whose launch kept failing; its pods will be planned again",
		"nodeClaim", klog.KObj(nc), "provisioner", nc.Spec.Provisioner, "failingFor", failingFor.Round(time.Second),
		"reason", failure.condition, "err", cause)
	l.recorder.Eventf(nc, nil, corev1.EventTypeWarning, eventLaunchTimeout, actionDelete,
		"Launch failed for %s (%s: %v); deleting the claim so its pods are planned again", failingFor.Round(time.Second), failure.condition, cause)
	nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonLaunchTimeout)...).Inc()
	l.backoff.forget(nc.Name)
	return l.objects.deleteNodeClaim(ctx, nc.Name)
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
