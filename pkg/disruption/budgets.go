package disruption

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Reason is why a node is disrupted, as budgets name it.
type Reason string

// The reasons of disruption.
const (
	ReasonEmpty         Reason = "Empty"
	ReasonUnderutilized Reason = "Underutilized"
	ReasonDrifted       Reason = "Drifted"
	ReasonExpired       Reason = "Expired"
)

// Budget bounds how many of a Provisioner's nodes may be disrupted at once, for some reasons,
// at some times.
type Budget struct {
	// Nodes is a count ("3") or a percentage of the Provisioner's nodes ("10%", rounded up,
	// so that a small pool still moves).
	Nodes string
	// Schedule, a cron expression in UTC (five fields, or a descriptor such as @daily), with
	// Duration, makes the budget hold only from each time the schedule names for Duration;
	// "" holds always.
	Schedule string
	Duration time.Duration
	// Reasons are the reasons it bounds; none bounds them all.
	Reasons []Reason
}

// Allowed returns how many more of a Provisioner's total nodes may start being disrupted for
// reason at now, with disrupting of them being disrupted already (for any reason): the least,
// over the budgets that hold at now and bound reason, of what each allows less disrupting, and
// no fewer than 0; math.MaxInt when none holds. A budget that does not parse bounds to 0:
// a mistake in a budget stops disruption rather than lifting its bound.
func Allowed(budgets []Budget, reason Reason, total, disrupting int, now time.Time) int {
	allowed := math.MaxInt
	for _, b := range budgets {
		if len(b.Reasons) > 0 && !slices.Contains(b.Reasons, reason) {
			continue
		}
		holds, err := b.holds(now)
		if err != nil {
			return 0
		}
		if !holds {
			continue
		}
		n, err := b.limit(total)
		if err != nil {
			return 0
		}
		allowed = min(allowed, max(0, n-disrupting))
	}
	return allowed
}

// Validate returns what is wrong with b, naming the field, or nil.
func (b Budget) Validate() error {
	if _, err := b.limit(0); err != nil {
		return err
	}
	if (b.Schedule == "") != (b.Duration == 0) {
		return fmt.Errorf("schedule and duration go together: schedule %q, duration %s", b.Schedule, b.Duration)
	}
	if b.Duration < 0 {
		return fmt.Errorf("duration %s is negative", b.Duration)
	}
	if b.Schedule != "" {
		if _, err := cron.ParseStandard(b.Schedule); err != nil {
			return fmt.Errorf("schedule %q: %w", b.Schedule, err)
		}
	}
	for _, r := range b.Reasons {
		if !slices.Contains([]Reason{ReasonEmpty, ReasonUnderutilized, ReasonDrifted, ReasonExpired}, r) {
			return fmt.Errorf("reasons: %q is none of Empty, Underutilized, Drifted, Expired", r)
		}
	}
	return nil
}

// holds reports whether b bounds disruption at now: always without a schedule, else from
// a time its schedule names for its duration.
func (b Budget) holds(now time.Time) (bool, error) {
	if b.Schedule == "" {
		return true, nil
	}
	s, err := cron.ParseStandard(b.Schedule)
	if err != nil {
		return false, fmt.Errorf("schedule %q: %w", b.Schedule, err)
	}
	// The first time the schedule names after now - duration holds the budget until
	// duration after it: it does now if it is not after now.
	start := s.Next(now.UTC().Add(-b.Duration))
	return !start.After(now.UTC()), nil
}

// limit returns how many of total nodes b lets be disrupted at once.
func (b Budget) limit(total int) (int, error) {
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
