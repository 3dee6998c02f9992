package lifecycle

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

const metricsSubsystem = "nodewright"

// Label names. Every value is bounded: provisioners and instance types are few, reasons are
// the constants below.
const (
	labelProvisioner  = "provisioner"
	labelInstanceType = "instance_type"
	labelZone         = "zone"
	labelCapacityType = "capacity_type"
	labelReason       = "reason"
	labelResult       = "result"
	labelKind         = "kind"
)

// Reasons a NodeClaim is terminated, the values of the reason label.
const (
	reasonEmpty               = "empty"
	reasonExpired             = "expired"
	reasonRegistrationTimeout = "registration_timeout"
	reasonInstanceGone        = "instance_gone"
	reasonInterrupted         = "interrupted"
	reasonInsufficientCap     = "insufficient_capacity"
	reasonLaunchTimeout       = "launch_timeout"
	reasonProvisionerDeleted  = "provisioner_deleted"
)

var claimLabels = []string{labelProvisioner, labelInstanceType, labelZone, labelCapacityType}

var (
	nodeClaimsLaunched = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "nodeclaims_launched_total",
		Help:           "NodeClaims whose instance was launched, by provisioner, instance type, zone and capacity type.",
		StabilityLevel: metrics.ALPHA,
	}, claimLabels)
	nodeClaimsRegistered = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "nodeclaims_registered_total",
		Help:           "NodeClaims whose Node joined the cluster, by provisioner, instance type, zone and capacity type.",
		StabilityLevel: metrics.ALPHA,
	}, claimLabels)
	nodeClaimsTerminated = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "nodeclaims_terminated_total",
		Help:           "NodeClaims nodewright decided to remove, by provisioner, instance type, zone, capacity type and reason; removals by users are not counted.",
		StabilityLevel: metrics.ALPHA,
	}, append(append([]string{}, claimLabels...), labelReason))
	launchFailures = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "nodeclaim_launch_failures_total",
		Help:           "Failed launch attempts of NodeClaims, by provisioner and reason: provisioner_not_found, nodeclass_not_found, nodeclass_not_ready, insufficient_capacity, launch_failed.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelProvisioner, labelReason})
	launchToReadySeconds = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      metricsSubsystem,
		Name:           "nodeclaim_launch_to_ready_seconds",
		Help:           "Time from an instance's launch to its Node being Ready with no startup taint left.",
		Buckets:        metrics.ExponentialBuckets(10, 1.5, 12), // 10s .. ~14m
		StabilityLevel: metrics.ALPHA,
	}, []string{labelProvisioner, labelInstanceType, labelCapacityType})
	evictions = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "evictions_total",
		Help:           "Pod evictions requested while draining nodes, by result: evicted, blocked (a PodDisruptionBudget refused it, 429), error.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelResult})
	interruptionMessages = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "interruption_messages_total",
		Help:           "Messages received from the interruption queue, by kind.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelKind})
	instancesGarbageCollected = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "instances_garbage_collected_total",
		Help:           "Instances terminated because no NodeClaim owned them.",
		StabilityLevel: metrics.ALPHA,
	})
)

var registerMetricsOnce sync.Once

// registerMetrics registers the lifecycle's metrics with the legacy registry, once.
func registerMetrics() {
	registerMetricsOnce.Do(func() {
		legacyregistry.MustRegister(nodeClaimsLaunched, nodeClaimsRegistered, nodeClaimsTerminated,
			launchFailures, launchToReadySeconds, evictions, interruptionMessages, instancesGarbageCollected)
	})
}

// claimLabelValues returns the values of claimLabels for nc.
func claimLabelValues(nc *v1alpha1.NodeClaim) []string {
	return []string{nc.Spec.Provisioner, nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType}
}
