package disruption

import (
	"math"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestAllowed(t *testing.T) {
	// Saturday 2026-12-05 12:00 UTC.
	noon := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name              string
		budgets           []v1alpha1.Budget
		reason            v1alpha1.DisruptionReason
		total, disrupting int
		at                time.Time
		want              int
	}{
		{name: "no budget: no bound", total: 10, at: noon, want: math.MaxInt},
		{name: "10 % of 25 nodes, rounded up", budgets: []v1alpha1.Budget{{Nodes: "10%"}}, total: 25, at: noon, want: 3},
		{name: "10 % of 5 nodes: one still moves", budgets: []v1alpha1.Budget{{Nodes: "10%"}}, total: 5, at: noon, want: 1},
		{name: "those disrupting count", budgets: []v1alpha1.Budget{{Nodes: "3"}}, total: 30, disrupting: 2, at: noon, want: 1},
		{name: "never below 0", budgets: []v1alpha1.Budget{{Nodes: "1"}}, total: 30, disrupting: 2, at: noon, want: 0},
		{name: "the least of two", budgets: []v1alpha1.Budget{{Nodes: "50%"}, {Nodes: "2"}}, total: 30, at: noon, want: 2},
		{name: "a budget for other reasons does not bound", budgets: []v1alpha1.Budget{{Nodes: "0", Reasons: []v1alpha1.DisruptionReason{v1alpha1.DisruptionDrifted}}},
			reason: v1alpha1.DisruptionUnderutilized, total: 30, at: noon, want: math.MaxInt},
		{name: "a budget for this reason does", budgets: []v1alpha1.Budget{{Nodes: "0", Reasons: []v1alpha1.DisruptionReason{v1alpha1.DisruptionDrifted, v1alpha1.DisruptionUnderutilized}}},
			reason: v1alpha1.DisruptionUnderutilized, total: 30, at: noon, want: 0},
		{name: "business hours blocked: inside", budgets: []v1alpha1.Budget{{Nodes: "0", Schedule: ptr.To("0 9 * * *"), Duration: &metav1.Duration{Duration: 8 * time.Hour}}},
			total: 30, at: noon, want: 0},
		{name: "business hours blocked: after", budgets: []v1alpha1.Budget{{Nodes: "0", Schedule: ptr.To("0 9 * * *"), Duration: &metav1.Duration{Duration: 8 * time.Hour}}},
			total: 30, at: noon.Add(6 * time.Hour), want: math.MaxInt},
		{name: "business hours blocked: at the start", budgets: []v1alpha1.Budget{{Nodes: "0", Schedule: ptr.To("0 9 * * *"), Duration: &metav1.Duration{Duration: 8 * time.Hour}}},
			total: 30, at: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC), want: 0},
		{name: "weekdays only: Saturday is free", budgets: []v1alpha1.Budget{{Nodes: "0", Schedule: ptr.To("0 0 * * 1-5"), Duration: &metav1.Duration{Duration: 24 * time.Hour}}},
			total: 30, at: noon, want: math.MaxInt},
		{name: "a budget that does not parse stops disruption", budgets: []v1alpha1.Budget{{Nodes: "ten"}}, total: 30, at: noon, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason := tc.reason
			if reason == "" {
				reason = v1alpha1.DisruptionEmpty
			}
			if got := Allowed(tc.budgets, reason, tc.total, tc.disrupting, tc.at); got != tc.want {
				t.Errorf("Allowed = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBudgetValidate(t *testing.T) {
	for _, tc := range []struct {
		budget v1alpha1.Budget
		want   string // "" for valid; else a part of the error
	}{
		{v1alpha1.Budget{Nodes: "10%"}, ""},
		{v1alpha1.Budget{Nodes: "0", Schedule: ptr.To("@daily"), Duration: &metav1.Duration{Duration: time.Hour}, Reasons: []v1alpha1.DisruptionReason{v1alpha1.DisruptionExpired}}, ""},
		{v1alpha1.Budget{Nodes: "101%"}, "nodes \"101%\""},
		{v1alpha1.Budget{Nodes: "-1"}, "nodes \"-1\""},
		{v1alpha1.Budget{Nodes: "1", Schedule: ptr.To("0 9 * * *")}, "schedule and duration go together"},
		{v1alpha1.Budget{Nodes: "1", Duration: &metav1.Duration{Duration: time.Hour}}, "schedule and duration go together"},
		{v1alpha1.Budget{Nodes: "1", Schedule: ptr.To("61 * * * *"), Duration: &metav1.Duration{Duration: time.Hour}}, "schedule \"61 * * * *\""},
		{v1alpha1.Budget{Nodes: "1", Reasons: []v1alpha1.DisruptionReason{"Bored"}}, "reasons: \"Bored\""},
	} {
		err := ValidateBudget(tc.budget)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate = %v, want %q", tc.budget, err, tc.want)
		}
	}
}
