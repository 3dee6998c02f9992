package provision

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const metricsSubsystem = "nodewright"

// Label names; their values are bounded (provisioners and instance types are few).
const (
	labelProvisioner  = "provisioner"
	labelInstanceType = "instance_type"
	labelResult       = "result"
	labelReserved     = "reserved"
	// labelPlugin is the scheduler plugin that rejected a pod: the profile's few.
	labelPlugin = "plugin"
)

// Values of the result label of provisioningRounds.
const (
	resultPlanned = "planned"
	resultNoPods  = "no_pods"
	resultError   = "error"
	resultNoCloud = "no_cloud"
)

var (
	roundDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      metricsSubsystem,
		Name:           "provisioning_round_duration_seconds",
		Help:           "Time a provisioning round takes, from listing the pending pods to writing the NodeClaims.",
		Buckets:        metrics.ExponentialBuckets(0.01, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
	provisioningRounds = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "provisioning_rounds_total",
		Help:           "Provisioning rounds, by result.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelResult})
	podsPerRound = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      metricsSubsystem,
		Name:           "provisioning_round_pods",
		Help:           "Pending pods a provisioning round planned for.",
		Buckets:        metrics.ExponentialBuckets(1, 2, 12),
		StabilityLevel: metrics.ALPHA,
	})
	nodesPlanned = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "nodes_planned_total",
		Help:           "Nodes planned and written as NodeClaims, by provisioner and cheapest instance type.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelProvisioner, labelInstanceType})
	podsReserved = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "pods_reserved_total",
		Help:           "Pods a provisioning round reserved on a NodeClaim, written for them or launched earlier, by provisioner.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelProvisioner})
	podsAddedToClaims = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "pods_reserved_in_spare_room_total",
		Help:           "Pods a provisioning round reserved in the spare room of a NodeClaim launched earlier, by provisioner.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelProvisioner})
	podsUnplanned = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "pods_unplanned_total",
		Help:           "Pods a provisioning round could plan no node for.",
		StabilityLevel: metrics.ALPHA,
	})
	podUnschedulableToBound = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem: metricsSubsystem,
		Name:      "pod_unschedulable_to_bound_seconds",
		Help: "Time from the scheduler first finding a pod of this profile unschedulable to its binding, " +
			"by whether it was reserved on a NodeClaim (reserved) or bound to room that appeared otherwise.",
		Buckets:        metrics.ExponentialBuckets(0.25, 2, 12),
		StabilityLevel: metrics.ALPHA,
	}, []string{labelReserved})
	podsReleased = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "pods_released_total",
		Help:           "Pods released from their NodeClaim because they did not fit on its node in time after it registered.",
		StabilityLevel: metrics.ALPHA,
	})
	podsHeld = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "pods_held_total",
		Help:           "Pods PreEnqueue held for a provisioning round: not tried yet, and fitting the free room of no node or waiting for a pod reserved on a new node.",
		StabilityLevel: metrics.ALPHA,
	})
	podsSpreadWaits = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "pods_spread_waits_total",
		Help:           "Reserved pods kept back, once their node registered, until their topology spread takes them there; by how the wait ended.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	podsUnplannedLast = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem:      metricsSubsystem,
		Name:           "pods_unplanned",
		Help:           "Pods the last provisioning round could plan no node for.",
		StabilityLevel: metrics.ALPHA,
	})
	podsStranded = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: metricsSubsystem,
		Name:      "pods_stranded_total",
		Help: "Pods the node launched for them rejected until their reservation's grace ran out (a broken plan), " +
			"by provisioner and by the scheduler plugin that rejected them.",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelProvisioner, labelPlugin})
	gangsPlanned = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: metricsSubsystem,
		Name:      "gangs_planned_total",
		Help: "Gangs (PodGroups of gang policy) a round planned, by result: written (every pod planned, every claim written), " +
			"unplanned (a pod could not be planned: no claim written), write_failed (a claim could not be written: those written deleted).",
		StabilityLevel: metrics.ALPHA,
	}, []string{labelResult})
	gangsReleased = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem: metricsSubsystem,
		Name:      "gangs_released_total",
		Help: "Gangs whose nodes were not all initialized within gangLaunchTimeout of their first NodeClaims: " +
			"every NodeClaim of theirs was deleted, those launched included.",
		StabilityLevel: metrics.ALPHA,
	})
	gangReleasedResourceHours = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: metricsSubsystem,
		Name:      "gang_released_resource_hours_total",
		Help: "Resource-hours launched for gangs that never started: for each node of a released gang, its capacity " +
			"(cpu, and each extended resource such as nvidia.com/gpu) times the hours from its launch to its release.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource"})
)

// Values of the result label of gangsPlanned.
const (
	gangWritten     = "written"
	gangUnplanned   = "unplanned"
	gangWriteFailed = "write_failed"
)

var registerOnce sync.Once

// registerMetrics registers the plugin's metrics with the scheduler's registry, once.
func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(roundDuration, provisioningRounds, podsPerRound, nodesPlanned, podsReserved, podsAddedToClaims, podsUnplanned, podsUnplannedLast, podsStranded, podUnschedulableToBound, podsReleased, podsHeld, podsSpreadWaits, gangsPlanned,
			gangsReleased, gangReleasedResourceHours)
	})
}
