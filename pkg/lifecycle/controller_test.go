package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestProcessNextRetries checks the queue's handling of a reconcile's result: an error is
// retried with backoff, except when it is the controller stopping, which is neither retried
// nor reported.
func TestProcessNextRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cancelled bool
		err       error
		wantRetry bool
	}{
		{name: "error is retried", err: errors.New("apiserver unavailable"), wantRetry: true},
		{name: "success is not", err: nil},
		{name: "error while stopping is not", cancelled: true, err: fmt.Errorf("getting nodeclaim a: %w", context.Canceled)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			clk := clocktesting.NewFakeClock(t0)
			c := newController("test", clk, func(context.Context, string) (time.Duration, error) { return 0, tc.err })
			defer c.queue.ShutDown()
			c.enqueue("a")
			if tc.cancelled {
				cancel()
			}
			if !c.processNext(ctx) {
				t.Fatal("processNext found the queue shut down")
			}
			if got := c.queue.NumRequeues("a") > 0; got != tc.wantRetry {
				t.Errorf("retried = %v, want %v", got, tc.wantRetry)
			}
		})
	}
}
