package provision

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// batcher runs a round once pods stop arriving for idle, or max after the first one, so
// that pods created together (a Deployment scaled up) are planned together. Trigger never
// blocks; one round runs at a time, and triggers during a round start the next window.
//
// A burst that arrives fast ends sooner: once a window has seen two arrivals, a pause of
// burstGaps times the longest gap between its arrivals, at least minBurstIdle, ends it too.
// The ReplicaSet controller creates a Deployment's pods in batches milliseconds apart, and
// a client creating pods one after another sends them as fast; a pause ten times the
// longest gap of the burst so far is the burst's end, not a hiccup within it. Pods that
// trickle in (gaps of idle/burstGaps or more) wait idle, as before.
//
// A pod counts as arriving once per window (TriggerPod): the scheduler's attempts at the pods
// of a burst, and the status writes they bring, go on for seconds after the last pod was
// created, and must not hold the round back.
//
// A window that opened while a round ran is timed from its own arrivals: if pods stopped
// arriving for idle, or it opened max ago, by the time the round ends, the next round starts
// at once.
type batcher struct {
	clock     clock.WithTicker
	idle, max time.Duration
	round     func(ctx context.Context)

	pending chan struct{}

	mu sync.Mutex
	// window are the pods that triggered since the last round started; arrivals counts the
	// triggers that counted, last is when the latest came, longest the longest gap between
	// two of them.
	window        map[types.UID]bool
	arrivals      int
	last          time.Time
	longest       time.Duration
	windowStarted time.Time
}

// The fast-burst rule (see batcher): the pause that ends a window is burstGaps times the
// longest gap between its arrivals, and at least minBurstIdle.
const (
	burstGaps    = 10
	minBurstIdle = 100 * time.Millisecond
)

func newBatcher(c clock.WithTicker, idle, maxWait time.Duration, round func(ctx context.Context)) *batcher {
	return &batcher{clock: c, idle: idle, max: maxWait, round: round, pending: make(chan struct{}, 1), window: map[types.UID]bool{}}
}

// Trigger says that pods wait for a round: pods released from a claim, or pods the caller
// cannot name.
func (b *batcher) Trigger() {
	b.mu.Lock()
	b.arrive()
	b.mu.Unlock()
	b.signal()
}

// arrive notes an arrival now. b.mu is held.
func (b *batcher) arrive() {
	now := b.clock.Now()
	if b.arrivals == 0 {
		b.windowStarted = now
	} else {
		b.longest = max(b.longest, now.Sub(b.last))
	}
	b.arrivals++
	b.last = now
}

// signal wakes the loop that runs rounds.
func (b *batcher) signal() {
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
	if !seen {
		b.arrive()
	}
	b.mu.Unlock()
	if !seen {
		b.signal()
	}
}

// idleWait is how long the window waits for another arrival: idle, or less for a fast burst.
// b.mu is held.
func (b *batcher) idleWait() time.Duration {
	if b.arrivals < 2 {
		return b.idle
	}
	return min(b.idle, max(minBurstIdle, burstGaps*b.longest))
}

// remaining is how long the open window lasts yet if no other pod arrives: until idleWait
// after its last arrival, and at most max after its first. A window that opened while a
// round ran may be over when the round ends. With no window open (the round that started
// last took the pods of a trigger that came as it started), it is 0 and open false.
func (b *batcher) remaining() (left time.Duration, open bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.arrivals == 0 {
		return 0, false
	}
	return min(b.idleWait()-b.clock.Since(b.last), b.max-b.clock.Since(b.windowStarted)), true
}

// startRound forgets the pods of the window that ends: the round about to start sees them.
func (b *batcher) startRound(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	klog.FromContext(ctx).V(4).Info("Batch window closed", "arrivals", b.arrivals, "window", b.clock.Since(b.windowStarted),
		"longestGap", b.longest, "sinceLast", b.clock.Since(b.last))
	clear(b.window)
	b.arrivals, b.longest = 0, 0
}

// Run runs rounds until ctx ends.
func (b *batcher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.pending:
		}
		open, ok := b.wait(ctx)
		if !ok {
			return
		}
		if !open {
			continue
		}
		b.startRound(ctx)
		b.round(ctx)
	}
}

// wait returns once the open window is over (remaining), with open false if none was open;
// ok is false if ctx ended.
func (b *batcher) wait(ctx context.Context) (open, ok bool) {
	for {
		left, open := b.remaining()
		if left <= 0 {
			return open, true
		}
		timer := b.clock.NewTimer(left)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false, false
		case <-timer.C():
		case <-b.pending:
			timer.Stop()
		}
	}
}
