package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestProcessNextRetries checks the queue's handling of a reconcile's result: an error is
// retried with backoff and logged, a conflict retried without an error log (a busy cluster
// has many), and the controller stopping is neither retried nor reported.
func TestProcessNextRetries(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Group: v1alpha1.GroupName, Resource: "nodeclaims"}, "a", errors.New("the object has been modified"))
	for _, tc := range []struct {
		name         string
		cancelled    bool
		err          error
		wantRetry    bool
		wantErrorLog bool
	}{
		{name: "error is retried", err: errors.New("apiserver unavailable"), wantRetry: true, wantErrorLog: true},
		{name: "conflict is retried quietly", err: fmt.Errorf("patching status: %w", conflict), wantRetry: true},
		{name: "success is not", err: nil},
		{name: "error while stopping is not", cancelled: true, err: fmt.Errorf("getting nodeclaim a: %w", context.Canceled)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
			ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
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
			if got := strings.Contains(logger.GetSink().(ktesting.Underlier).GetBuffer().String(), "ERROR"); got != tc.wantErrorLog {
				t.Errorf("error logged = %v, want %v", got, tc.wantErrorLog)
			}
		})
	}
}
