package v1alpha1

import (
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Disruption says when nodewright removes a Provisioner's nodes: empty ones, underutilized
// ones whose pods fit elsewhere or on one cheaper node (consolidation), old ones (expiry), and
// drifted ones, and how many at once (budgets). It is Karpenter v1's NodePool disruption
// block, with expireAfter beside it.
type Disruption struct {
	// ConsolidationPolicy says which nodes consolidation removes: WhenEmpty, only nodes
	// running nothing but DaemonSet and mirror pods; WhenEmptyOrUnderutilized, also nodes
	// whose pods the scheduler can place on the other nodes, or on one new node that costs
	// less than the nodes it replaces.
	//
	// +optional
	// +kubebuilder:default=WhenEmptyOrUnderutilized
	// +kubebuilder:validation:Enum=WhenEmpty;WhenEmptyOrUnderutilized
	ConsolidationPolicy ConsolidationPolicy `json:"consolidationPolicy,omitempty"`

	// ConsolidateAfter is how long a node's pods must have been as they are (no pod started
	// on it) before consolidation considers it: a duration ("30s", "5m", "1h30m"), or Never,
	// which turns consolidation off, empty nodes included.
	//
	// +optional
	// +kubebuilder:default="0s"
	ConsolidateAfter *NillableDuration `json:"consolidateAfter,omitempty"`

	// ExpireAfter is how long after launch a node is drained and replaced: a duration, or
	// Never.
	//
	// +optional
	// +kubebuilder:default=Never
	ExpireAfter *NillableDuration `json:"expireAfter,omitempty"`

	// Budgets bound how many of the Provisioner's nodes are disrupted at once. Each one that
	// holds (always, or within its schedule) and bounds a reason caps the nodes being
	// disrupted for it; the least cap wins. A node counts as disrupted from when nodewright
	// decides to remove it until it is gone.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:default={{nodes: "10%"}}
	// +kubebuilder:validation:MaxItems=50
	Budgets []Budget `json:"budgets,omitempty"`
}

// ConsolidationPolicy says which nodes consolidation removes.
type ConsolidationPolicy string

// The consolidation policies.
const (
	ConsolidationPolicyWhenEmpty                ConsolidationPolicy = "WhenEmpty"
	ConsolidationPolicyWhenEmptyOrUnderutilized ConsolidationPolicy = "WhenEmptyOrUnderutilized"
)

// NillableDuration is a duration such as "30s", "5m" or "1h30m", or Never.
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^(([0-9]+(\.[0-9]+)?(s|m|h))+|Never)$`
type NillableDuration string

// Never is the NillableDuration that does not end.
const Never NillableDuration = "Never"

// Duration returns d, and false when d is Never or, which the apiserver's validation
// prevents, not a duration.
func (d NillableDuration) Duration() (time.Duration, bool) {
	if d == Never {
		return 0, false
	}
	v, err := time.ParseDuration(string(d))
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// Budget bounds how many of a Provisioner's nodes may be disrupted at once, for some reasons,
// at some times.
//
// +kubebuilder:validation:XValidation:rule="has(self.schedule) == has(self.duration)",message="schedule and duration go together: a budget with a schedule holds for duration from each time the schedule names"
type Budget struct {
	// Nodes is a count ("3") or a percentage of the Provisioner's nodes ("10%", rounded up,
	// so that a small pool still moves). "0" stops disruption for the budget's reasons.
	//
	// +kubebuilder:default="10%"
	// +kubebuilder:validation:Pattern=`^((100|[0-9]{1,2})%|[0-9]+)$`
	Nodes string `json:"nodes"`

	// Schedule is when the budget starts to hold, a cron expression in UTC: five fields
	// (minute, hour, day of month, month, day of week) or a descriptor such as @daily. With
	// Duration; without either, the budget always holds.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$`
	Schedule *string `json:"schedule,omitempty"`

	// Duration is how long the budget holds from each time its schedule names ("8h", "30m").
	//
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(s|m|h))+$`
	Duration *metav1.Duration `json:"duration,omitempty"`

	// Reasons are the reasons of disruption the budget bounds: Empty, Underutilized, Drifted,
	// Expired. None bounds them all.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	Reasons []DisruptionReason `json:"reasons,omitempty"`
}

// DisruptionReason is why a node is disrupted, as budgets name it.
//
// +kubebuilder:validation:Enum=Empty;Underutilized;Drifted;Expired
type DisruptionReason string

// The reasons of disruption.
const (
	DisruptionEmpty         DisruptionReason = "Empty"
	DisruptionUnderutilized DisruptionReason = "Underutilized"
	DisruptionDrifted       DisruptionReason = "Drifted"
	DisruptionExpired       DisruptionReason = "Expired"
)

// DefaultBudget is the budget of a Provisioner that sets none: a tenth of its nodes.
var DefaultBudget = Budget{Nodes: "10%"}

// DisruptionSettings are a Provisioner's disruption settings as they apply, whichever way
// the Provisioner says them (see ProvisionerSpec.Settings).
type DisruptionSettings struct {
	// Policy is the consolidation policy.
	Policy ConsolidationPolicy
	// ConsolidateAfter is how long a node's pods must have been as they are before it is
	// consolidated; nil, Never: no node is consolidated, not even an empty one.
	ConsolidateAfter *time.Duration
	// ExpireAfter is how long after launch a node expires; nil, Never.
	ExpireAfter *time.Duration
	// Budgets bound the nodes disrupted at once.
	Budgets []Budget
}

// Consolidates reports whether nodes are removed for reason (Empty or Underutilized) under s.
func (s DisruptionSettings) Consolidates(reason DisruptionReason) bool {
	if s.ConsolidateAfter == nil {
		return false
	}
	return reason == DisruptionEmpty || s.Policy == ConsolidationPolicyWhenEmptyOrUnderutilized
}

// Disruption returns how the Provisioner's nodes are disrupted: as spec.disruption says, its
// unset fields defaulted as the apiserver does; or, without it, as the seed's TTLs say:
// ttlSecondsAfterEmpty is consolidationPolicy WhenEmpty with consolidateAfter that long,
// ttlSecondsUntilExpired is expireAfter, and unset they are Never (empty nodes are kept, nodes
// do not expire). Budgets default to DefaultBudget either way.
func (s *ProvisionerSpec) DisruptionSettings() DisruptionSettings {
	out := DisruptionSettings{Policy: ConsolidationPolicyWhenEmpty, Budgets: []Budget{DefaultBudget}}
	seconds := func(v *int64) *time.Duration {
		if v == nil {
			return nil
		}
		d := time.Duration(*v) * time.Second
		return &d
	}
	d := s.Disruption
	if d == nil {
		out.ConsolidateAfter = seconds(s.TTLSecondsAfterEmpty)
		out.ExpireAfter = seconds(s.TTLSecondsUntilExpired)
		return out
	}
	if d.ConsolidationPolicy != "" {
		out.Policy = d.ConsolidationPolicy
	} else {
		out.Policy = ConsolidationPolicyWhenEmptyOrUnderutilized
	}
	zero := time.Duration(0)
	out.ConsolidateAfter = &zero
	if d.ConsolidateAfter != nil {
		out.ConsolidateAfter = nil
		if v, ok := d.ConsolidateAfter.Duration(); ok {
			out.ConsolidateAfter = &v
		}
	}
	if d.ExpireAfter != nil {
		if v, ok := d.ExpireAfter.Duration(); ok {
			out.ExpireAfter = &v
		}
	}
	if d.Budgets != nil {
		out.Budgets = d.Budgets
	}
	return out
}

// String returns b as the budgets' events say it: "10% for Underutilized, Drifted from
// '0 9 * * 1-5' for 8h0m0s".
func (b Budget) String() string {
	s := b.Nodes
	if len(b.Reasons) > 0 {
		reasons := make([]string, len(b.Reasons))
		for i, r := range b.Reasons {
			reasons[i] = string(r)
		}
		s += " for " + strings.Join(reasons, ", ")
	}
	if b.Schedule != nil && b.Duration != nil {
		s += " from '" + *b.Schedule + "' for " + b.Duration.Duration.String()
	}
	return s
}
