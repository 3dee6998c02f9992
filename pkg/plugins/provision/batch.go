package provision

import (
	"context"
	"time"

	"k8s.io/utils/clock"
)

// batcher runs a round once pods stop arriving for idle, or max after the first one, so
// that pods created together (a Deployment scaled up) are planned together. Trigger never
// blocks; one round runs at a time, and triggers during a round start the next window.
type batcher struct {
	clock     clock.WithTicker
	idle, max time.Duration
	round     func(ctx context.Context)

	pending chan struct{}
}

func newBatcher(c clock.WithTicker, idle, maxWait time.Duration, round func(ctx context.Context)) *batcher {
	return &batcher{clock: c, idle: idle, max: maxWait, round: round, pending: make(chan struct{}, 1)}
}

// Trigger says that a pod waits for a round.
func (b *batcher) Trigger() {
	select {
	case b.pending <- struct{}{}:
	default:
	}
}

// Run runs rounds until ctx ends.
func (b *batcher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.pending:
		}
		if !b.wait(ctx) {
			return
		}
		b.round(ctx)
	}
}

// wait returns once no trigger came for idle, or max after it started; false if ctx ended.
func (b *batcher) wait(ctx context.Context) bool {
	deadline := b.clock.NewTimer(b.max)
	defer deadline.Stop()
	for {
		idle := b.clock.NewTimer(b.idle)
		select {
		case <-ctx.Done():
			idle.Stop()
			return false
		case <-deadline.C():
			idle.Stop()
			return true
		case <-idle.C():
			return true
		case <-b.pending:
			idle.Stop()
		}
	}
}
