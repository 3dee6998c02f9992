package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// Run starts the informers of the Manager's own factories, waits for every cache to sync and
// to hold the Lease (unless leader election is disabled), and runs the controllers until ctx
// is done or the Lease is lost. The informers run whether this replica leads or not. It returns an error when
// the Lease is lost: the caller should exit, as kube-scheduler does, rather than act
// without it.
func (m *Manager) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("lifecycle")
	ctx = klog.NewContext(ctx, logger)
	if m.broadcaster != nil {
		if err := m.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
			return fmt.Errorf("starting event recording: %w", err)
		}
		defer m.broadcaster.Shutdown()
	}

	stopInformers := m.caches.start(ctx)
	defer stopInformers()
	if !m.caches.waitForSync(ctx) {
		return fmt.Errorf("waiting for informers: %w", ctx.Err())
	}
	// From now on the controllers read from the caches: a round of 1,000 pods made them send
	// 11,000 GETs in a minute, through the rate limit the scheduler binds with.
	m.deps.nodes, m.deps.pods = corelisters.NewNodeLister(m.caches.nodes.GetIndexer()), m.caches.pods.GetIndexer()
	m.deps.objects.claims, m.deps.objects.provisioners = m.caches.claims.GetIndexer(), m.caches.provisioners.GetIndexer()
	m.deps.objects.nodeClasses = m.caches.nodeClasses.GetIndexer()

	if m.opts.LeaderElection.Disabled {
		m.runControllers(ctx)
		return nil
	}
	return m.runLeading(ctx)
}

// runLeading runs the controllers while this replica holds the Lease.
func (m *Manager) runLeading(ctx context.Context) error {
	le := m.opts.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.LeaseNamespace, le.LeaseName,
		m.opts.Client.CoreV1(), m.opts.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return fmt.Errorf("creating lease lock: %w", err)
	}
	// The elector calls OnStartedLeading on a goroutine of its own with a context it cancels
	// when the lease is lost; the controllers run here instead, so Run returns only once they
	// have stopped.
	leading := make(chan context.Context, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            le.LeaseName,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { leading <- ctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("creating leader elector: %w", err)
	}
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		elector.Run(ctx)
	}()
	select {
	case leaderCtx := <-leading:
		klog.FromContext(ctx).Info("Acquired lifecycle lease", "lease", klog.KRef(le.LeaseNamespace, le.LeaseName), "identity", le.Identity)
		m.runControllers(leaderCtx)
		<-electorDone
	case <-electorDone:
	}
	if ctx.Err() != nil {
		return nil
	}
	return errLostLease
}

// runControllers runs every controller and periodic loop until ctx is done.
func (m *Manager) runControllers(ctx context.Context) {
	var wg sync.WaitGroup
	start := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	workers := m.opts.Workers
	for _, c := range []*controller{m.launch, m.register, m.empty, m.nodeTermination, m.claimTermination, m.orphan} {
		start(func(ctx context.Context) { c.run(ctx, workers) })
	}
	for _, f := range m.opts.Leading {
		start(f)
	}
	// One expiry worker: it is what keeps disruption to one node per Provisioner at a time.
	start(func(ctx context.Context) { m.expire.run(ctx, 1) })
	start(func(ctx context.Context) { m.caches.resyncEvery(ctx, m.opts.Clock, resyncPeriod) })
	start(func(ctx context.Context) {
		wait.UntilWithContext(ctx, func(ctx context.Context) {
			if err := m.collector.collect(ctx); err != nil {
				utilruntime.HandleErrorWithContext(ctx, err, "Garbage collection failed")
			}
		}, m.opts.GCInterval)
	})
	if m.interrupter != nil {
		// Receive long-polls, so the period only spaces out retries after an error.
		start(func(ctx context.Context) {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				if err := m.interrupter.poll(ctx); err != nil {
					utilruntime.HandleErrorWithContext(ctx, err, "Handling interruption messages failed")
				}
			}, time.Second)
		})
	}
	wg.Wait()
}
