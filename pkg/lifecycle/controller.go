package lifecycle

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// reconcileFunc brings the object named key to its desired state. A non-zero requeueAfter
// asks to be called again after that long even if nothing changes (a TTL or a timeout
// running); an error is retried with exponential backoff.
type reconcileFunc func(ctx context.Context, key string) (requeueAfter time.Duration, err error)

// controller is a work queue of object names and the reconcile function that drains it.
// Informer event handlers add names; workers run only while the Manager leads.
type controller struct {
	name      string
	queue     workqueue.TypedRateLimitingInterface[string]
	reconcile reconcileFunc
}

// Retries of a failing reconcile start at a second, not the workqueue's default 5ms: most
// failures here are cloud or API errors that a tight loop would only make worse.
const (
	retryBaseDelay = time.Second
	retryMaxDelay  = 5 * time.Minute
)

func newController(name string, clk clock.Clock, reconcile reconcileFunc) *controller {
	cfg := workqueue.TypedRateLimitingQueueConfig[string]{Name: name}
	if c, ok := clk.(clock.WithTicker); ok {
		cfg.Clock = c
	}
	return &controller{
		name:      name,
		queue:     workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemExponentialFailureRateLimiter[string](retryBaseDelay, retryMaxDelay), cfg),
		reconcile: reconcile,
	}
}

// enqueue adds key to the queue; an empty key is ignored so handlers need not check.
func (c *controller) enqueue(key string) {
	if key != "" {
		c.queue.Add(key)
	}
}

// run starts workers and blocks until ctx is done, then shuts the queue down.
func (c *controller) run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", c.name)
	ctx = klog.NewContext(ctx, logger)
	logger.V(2).Info("Starting lifecycle controller", "workers", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for c.processNext(ctx) {
				}
			}, time.Second)
		})
	}
	<-ctx.Done()
	logger.V(2).Info("Stopping lifecycle controller")
	c.queue.ShutDown()
	wg.Wait() // no reconcile outlives run
}

// processNext handles one key; it returns false once the queue is shut down.
func (c *controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	requeueAfter, err := c.reconcile(ctx, key)
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopping (the Lease lost or the process ending): the failure is the cancellation's,
		// not worth an error log or a retry; the next leader starts afresh.
		c.queue.Forget(key)
	case apierrors.IsConflict(err):
		// A write based on a stale read: expected while several controllers write the same
		// objects and the caches catch up with them. Tried again, without an error log.
		klog.FromContext(ctx).V(4).Info("Conflict, will retry", "controller", c.name, "key", key, "err", err)
		c.queue.AddRateLimited(key)
	case err != nil:
		utilruntime.HandleErrorWithContext(ctx, err, "Reconcile failed, will retry", "controller", c.name, "key", key)
		c.queue.AddRateLimited(key)
	case requeueAfter > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, requeueAfter)
	default:
		c.queue.Forget(key)
	}
	return true
}
