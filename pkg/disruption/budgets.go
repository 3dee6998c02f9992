package disruption

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// Allowed returns how many more of a Provisioner's total nodes may start being disrupted for
// reason at now, with disrupting of them being disrupted already (for any reason): the least,
// over the budgets that hold at now and bound reason, of what each allows less disrupting, and
// no fewer than 0; math.MaxInt when none holds. A budget that does not parse bounds to 0:
// a mistake in a budget stops disruption rather than lifting its bound.
func Allowed(budgets []v1alpha1.Budget, reason v1alpha1.DisruptionReason, total, disrupting int, now time.Time) int {
	allowed := math.MaxInt
	for _, b := range budgets {
		if len(b.Reasons) > 0 && !slices.Contains(b.Reasons, reason) {
			continue
		}
		holds, err := holds(b, now)
		if err != nil {
			return 0
		}
		if !holds {
			continue
		}
		n, err := limit(b, total)
		if err != nil {
			return 0
		}
		allowed = min(allowed, max(0, n-disrupting))
	}
	return allowed
}

// ValidateBudget returns what is wrong with b, naming the field, or nil: what the apiserver's
// validation checks, and whether its schedule parses, which the apiserver cannot check.
func ValidateBudget(b v1alpha1.Budget) error {
	if _, err := limit(b, 0); err != nil {
		return err
	}
	if (b.Schedule == nil) != (b.Duration == nil) {
		return fmt.Errorf("schedule and duration go together: a budget has both or neither")
	}
	if b.Duration != nil && b.Duration.Duration < 0 {
		return fmt.Errorf("duration %s is negative", b.Duration.Duration)
	}
	if b.Schedule != nil {
		if _, err := cron.ParseStandard(*b.Schedule); err != nil {
			return fmt.Errorf("schedule %q: %w", *b.Schedule, err)
		}
	}
	for _, r := range b.Reasons {
		if !slices.Contains([]v1alpha1.DisruptionReason{v1alpha1.DisruptionEmpty, v1alpha1.DisruptionUnderutilized, v1alpha1.DisruptionDrifted, v1alpha1.DisruptionExpired}, r) {
			return fmt.Errorf("reasons: %q is none of Empty, Underutilized, Drifted, Expired", r)
		}
	}
	return nil
}

// holds reports whether b bounds disruption at now: always without a schedule, else from
// a time its schedule names for its duration.
func holds(b v1alpha1.Budget, now time.Time) (bool, error) {
	if (b.Schedule == nil) != (b.Duration == nil) {
		return false, fmt.Errorf("schedule and duration go together")
	}
	if b.Schedule == nil {
		return true, nil
	}
	s, err := cron.ParseStandard(*b.Schedule)
	if err != nil {
		return false, fmt.Errorf("schedule %q: %w", *b.Schedule, err)
	}
	// The first time the schedule names after now - duration holds the budget until
	// duration after it: it does now if it is not after now.
	start := s.Next(now.UTC().Add(-b.Duration.Duration))
	return !start.After(now.UTC()), nil
}

// limit returns how many of total nodes b lets be disrupted at once.
func limit(b v1alpha1.Budget, total int) (int, error) {
	if p, ok := strings.CutSuffix(b.Nodes, "%"); ok {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 100 {
			return 0, fmt.Errorf("nodes %q: want a count or a percentage from 0%% to 100%%", b.Nodes)
		}
		return (total*v + 99) / 100, nil
	}
	v, err := strconv.Atoi(b.Nodes)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("nodes %q: want a count or a percentage from 0%% to 100%%", b.Nodes)
	}
	return v, nil
}
