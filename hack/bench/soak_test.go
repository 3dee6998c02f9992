package main

import (
	"strings"
	"testing"
)

// TestSoakMarkdown: the report shows every invariant's counter, what each violation was, the
// faults by kind and the timeline; a report with a violation is not clean (total).
func TestSoakMarkdown(t *testing.T) {
	r := &Soak{Seed: 7, DurationSeconds: 1800, MaxPods: 150, CPULimit: 2000, PodsCreated: 900, NodesLaunched: 120,
		Faults: map[string]int{faultSpot: 30, faultKill: 4}, SchedulerRestarts: 9, PeakRSSMiB: 210, PeakGoroutines: 600,
		Invariants: Invariants{DoubleLaunches: 1, LeakedInstances: 2},
		Violations: []string{`300s: nodeclaim "default-abc" has 2 instances: [i-1 i-2]`},
		Timeline:   []Event{{AtSeconds: 60, Kind: faultSpot, Detail: "i-1"}}}
	if got := r.Invariants.total(); got != 3 {
		t.Errorf("total() = %d, want 3 (1 double launch + 2 leaks)", got)
	}
	md := soakMarkdown(r, "docs/reliability.json")
	for _, want := range []string{
		"| seed | 7 |", "| duration | 30 min |",
		"| NodeClaims with two instances (non-idempotent launches) | 1 |",
		"| leaked instances (no NodeClaim past garbage collection's grace and interval, or left at the end) | 2 |",
		"| stranded pods (Pending past the bound, placed by a fresh plan) | 0 |",
		`- 300s: nodeclaim "default-abc" has 2 instances: [i-1 i-2]`,
		"| faults: scheduler-sigkill | 4 |", "| faults: spot-interruption | 30 |",
		"| scheduler goroutines, most in any process | 600 |",
		"| 60 | spot-interruption | i-1 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
