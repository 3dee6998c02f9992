package disruption

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Results of a decision, the values of the decisions metric's result label.
const (
	resultExecuted    = "executed"
	resultInvalidated = "invalidated"
	resultBudget      = "budget"
	resultFailed      = "failed"
)

// Event reasons and the action of the disruption controller's events, on Nodes and
// NodeClaims.
const (
	eventDisrupting        = "Disrupting"
	eventDisruptionFailed  = "DisruptionFailed"
	eventDisruptionBlocked = "DisruptionBlocked"
	eventDriftUnresolved   = "DriftUnresolved"
	actionDisrupt          = "Disrupt"
)

var (
	decisions = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "nodewright",
		Name:           "disruption_decisions_total",
		Help:           "Disruption decisions, by reason (Underutilized, Drifted), method (delete, replace) and result: executed, invalidated (no longer held after the validation delay), budget (a disruption budget stopped it), failed (undone).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason", "method", "result"})
	nodesDisrupted = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "nodewright",
		Name:           "disruption_nodes_total",
		Help:           "Nodes removed by disruption decisions carried out, by reason. Their pods' evictions are nodewright_evictions_total.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	savings = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "nodewright",
		Name:           "disruption_savings_usd_per_hour_total",
		Help:           "What the disruption decisions carried out took off the fleet's price, in USD per hour, by reason (a drifted node's replacement may cost more: negative).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	passDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      "nodewright",
		Name:           "disruption_pass_duration_seconds",
		Help:           "How long a disruption pass took, its validation delay and the wait for a replacement included.",
		Buckets:        metrics.ExponentialBuckets(0.05, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
)

var registerOnce sync.Once

// registerMetrics registers the controller's metrics with the legacy registry, once.
func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(decisions, nodesDisrupted, savings, passDuration)
	})
}
