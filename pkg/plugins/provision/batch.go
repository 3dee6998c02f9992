package provision

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// batcher runs a round once pods stop arriving for idle, or max after the first one, so
// that pods created together (a Deployment scaled up) are planned together. Trigger never
// blocks; one round runs at a time, and triggers during a round start the next window.
//
// A pod counts as arriving once per window (TriggerPod): the scheduler's attempts at the pods
// of a burst, and the status writes they bring, go on for seconds after the last pod was
// created, and must not hold the round back.
type batcher struct {
	clock     clock.WithTicker
	idle, max time.Duration
	round     func(ctx context.Context)

	pending chan struct{}

	mu sync.Mutex
	// window are the pods that triggered since the last round started.
	window map[types.UID]bool
}

func newBatcher(c clock.WithTicker, idle, maxWait time.Duration, round func(ctx context.Context)) *batcher {
	return &batcher{clock: c, idle: idle, max: maxWait, round: round, pending: make(chan struct{}, 1), window: map[types.UID]bool{}}
}

// Trigger says that pods wait for a round: pods released from a claim, or pods the caller
// cannot name.
func (b *batcher) Trigger() {
	select {
	case b.pending <- struct{}{}:
	default:
	}
}

// TriggerPod says that the pod with uid waits for a round. Only its first trigger since the
// last round started counts: later ones neither start a window nor extend one.
func (b *batcher) TriggerPod(uid types.UID) {
	b.mu.Lock()
	seen := b.window[uid]
	b.window[uid] = true
	b.mu.Unlock()
	if !seen {
		b.Trigger()
	}
}

// startRound forgets the pods of the window that ends: the round about to start sees them.
func (b *batcher) startRound() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.window)
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
		b.startRound()
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
