package disruption

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	// Saturday 2026-12-05 12:00 UTC.
	noon := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name              string
		budgets           []Budget
		reason            Reason
		total, disrupting int
		at                time.Time
		want              int
	}{
		{name: "no budget: no bound", total: 10, at: noon, want: math.MaxInt},
		{name: "10 % of 25 nodes, rounded up", budgets: []Budget{{Nodes: "10%"}}, total: 25, at: noon, want: 3},
		{name: "10 % of 5 nodes: one still moves", budgets: []Budget{{Nodes: "10%"}}, total: 5, at: noon, want: 1},
		{name: "those disrupting count", budgets: []Budget{{Nodes: "3"}}, total: 30, disrupting: 2, at: noon, want: 1},
		{name: "never below 0", budgets: []Budget{{Nodes: "1"}}, total: 30, disrupting: 2, at: noon, want: 0},
		{name: "the least of two", budgets: []Budget{{Nodes: "50%"}, {Nodes: "2"}}, total: 30, at: noon, want: 2},
		{name: "a budget for other reasons does not bound", budgets: []Budget{{Nodes: "0", Reasons: []Reason{ReasonDrifted}}},
			reason: ReasonUnderutilized, total: 30, at: noon, want: math.MaxInt},
		{name: "a budget for this reason does", budgets: []Budget{{Nodes: "0", Reasons: []Reason{ReasonDrifted, ReasonUnderutilized}}},
			reason: ReasonUnderutilized, total: 30, at: noon, want: 0},
		{name: "business hours blocked: inside", budgets: []Budget{{Nodes: "0", Schedule: "0 9 * * *", Duration: 8 * time.Hour}},
			total: 30, at: noon, want: 0},
		{name: "business hours blocked: after", budgets: []Budget{{Nodes: "0", Schedule: "0 9 * * *", Duration: 8 * time.Hour}},
			total: 30, at: noon.Add(6 * time.Hour), want: math.MaxInt},
		{name: "business hours blocked: at the start", budgets: []Budget{{Nodes: "0", Schedule: "0 9 * * *", Duration: 8 * time.Hour}},
			total: 30, at: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC), want: 0},
		{name: "weekdays only: Saturday is free", budgets: []Budget{{Nodes: "0", Schedule: "0 0 * * 1-5", Duration: 24 * time.Hour}},
			total: 30, at: noon, want: math.MaxInt},
		{name: "a budget that does not parse stops disruption", budgets: []Budget{{Nodes: "ten"}}, total: 30, at: noon, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason := tc.reason
			if reason == "" {
				reason = ReasonEmpty
			}
			if got := Allowed(tc.budgets, reason, tc.total, tc.disrupting, tc.at); got != tc.want {
				t.Errorf("Allowed = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBudgetValidate(t *testing.T) {
	for _, tc := range []struct {
		budget Budget
		want   string // "" for valid; else a part of the error
	}{
		{Budget{Nodes: "10%"}, ""},
		{Budget{Nodes: "0", Schedule: "@daily", Duration: time.Hour, Reasons: []Reason{ReasonExpired}}, ""},
		{Budget{Nodes: "101%"}, "nodes \"101%\""},
		{Budget{Nodes: "-1"}, "nodes \"-1\""},
		{Budget{Nodes: "1", Schedule: "0 9 * * *"}, "schedule and duration go together"},
		{Budget{Nodes: "1", Duration: time.Hour}, "schedule and duration go together"},
		{Budget{Nodes: "1", Schedule: "61 * * * *", Duration: time.Hour}, "schedule \"61 * * * *\""},
		{Budget{Nodes: "1", Reasons: []Reason{"Bored"}}, "reasons: \"Bored\""},
	} {
		err := tc.budget.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate = %v, want %q", tc.budget, err, tc.want)
		}
	}
}
