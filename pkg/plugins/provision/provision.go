package provision

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/disruption"
	"github.com/nodewright/nodewright/pkg/lifecycle"
	"github.com/nodewright/nodewright/pkg/plan"
)

// Name is the plugin's name in the scheduler's registry and in KubeSchedulerConfiguration.
const Name = "Provision"

// Options are what the plugin needs beyond its args, for the binary's wiring and for tests.
type Options struct {
	// Cloud lists instance types. nil means it is built by NewCloud; when both are nil no
	// cloud is configured, and rounds only log and record an event saying so.
	Cloud cloud.Provider
	// NewCloud builds the cloud from the plugin's args when Cloud is nil: the plugin must not
	// build the AWS provider itself (it does not import pkg/aws), so cmd/scheduler passes
	// aws.NewCloud here through NewWithOptions. The plugin then also runs the lifecycle
	// (pkg/lifecycle) that launches, registers and terminates the nodes it plans.
	NewCloud cloud.Factory
	// Clock times the batch windows. Default the real clock.
	Clock clock.WithTicker
	// Dynamic writes NodeClaims and reads Provisioners and EC2NodeClasses. Default a client
	// from the handle's KubeConfig.
	Dynamic dynamic.Interface
	// OutOfTree are the scheduler's out-of-tree plugins besides Provision (those given to
	// app.WithPlugin), so that the profile's own PreFilter and Filter plugins judge the
	// templates too. An enabled plugin in neither registry is left out of the simulation.
	OutOfTree frameworkruntime.Registry
	// ConfigFile is the KubeSchedulerConfiguration the scheduler runs with (its --config):
	// the simulation gives the plugins the args of the plugin's profile there. Empty means
	// their defaults.
	ConfigFile string
}

// Provision is the plugin that plans nodes for pods no existing node can host. PostFilter
// answers from the ledger and triggers batched provisioning rounds (round.go), which plan with
// the scheduler's own plugins (pkg/plan) and write NodeClaims (claimWriter); PreFilter and
// Filter keep reserved pods to their claims' nodes and other pods out of the room reserved
// there (reservations, conflicts); pods stranded on the nodes launched for them are held
// back (strands). Each part guards its own state.
type Provision struct {
	*deps
	batcher   *batcher
	reserved  *reservations
	conflicts *conflicts
	strands   *strands
	writer    *claimWriter
	// holds are the pods PreEnqueue holds for a round; nil without a batcher.
	holds *holds
	// gangs finds the gangs among a round's pods.
	gangs *gangs
	// placing keeps a pod from being placed and reserved at once.
	placing *placing
	// unplannedPods are the pods the last round could not plan, and why.
	unplannedPods *unplannedMemo
	// waits times pods from unschedulable to bound (podUnschedulableToBound).
	waits *waitTimes
	// claimStore is the cache of NodeClaims, those being deleted too.
	claimStore cache.Store
	// typedInformers are the informers of Provisioners and EC2NodeClasses, which a round
	// lists (listTyped); none without a handle.
	typedInformers map[schema.GroupVersionResource]cache.SharedIndexInformer
	// pluginConfig are the plugin args of the profile (see Options.ConfigFile), nil for
	// the defaults.
	pluginConfig []config.PluginConfig
}

// newProvision returns the plugin's parts over d, with no batcher and no informers (see
// NewWithOptions); hardDefaultSpread is plan.HardDefaultSpread of the profile's args.
func newProvision(d *deps, hardDefaultSpread bool) *Provision {
	p := &Provision{deps: d, reserved: newReservations(d), strands: newStrands(d),
		unplannedPods: &unplannedMemo{last: map[types.UID]*plan.Unplanned{}}, waits: &waitTimes{since: map[types.UID]time.Time{}}}
	d.nodeHeld = p.reserved.holdsNode
	p.placing = newPlacing(d.opts.Clock)
	p.conflicts = newConflicts(d, p.reserved, p.placing, hardDefaultSpread)
	d.awaitsReserved = p.conflicts.awaitsReserved
	d.constrainsAny = p.conflicts.constrainsAny
	p.writer = &claimWriter{deps: d, placing: p.placing, trigger: func() { p.batcher.Trigger() }}
	p.gangs = &gangs{deps: d, activateGang: func(claims []string) {
		p.activateGang(klog.NewContext(context.Background(), klog.Background().WithName(Name)), claims)
	}}
	return p
}

var (
	_ fwk.PostFilterPlugin         = &Provision{}
	_ fwk.PodGroupPostFilterPlugin = &Provision{}
	_ fwk.PreEnqueuePlugin         = &Provision{}
	_ fwk.ReservePlugin            = &Provision{}
)

// New builds the plugin from its pluginConfig args, with no cloud provider (see Options).
// Invalid args are an error naming the field, which makes the scheduler exit at start-up
// rather than run misconfigured.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	return NewWithOptions(Options{})(ctx, obj, h)
}

// NewWithOptions returns the plugin's factory with opts.
func NewWithOptions(opts Options) frameworkruntime.PluginFactory {
	return func(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		// Each profile, and each scheduler of a process, gets its own cloud and clients.
		opts := opts
		args, err := decodeArgs(obj)
		if err != nil {
			return nil, err
		}
		args.SetDefaults()
		if errs := args.Validate(); len(errs) > 0 {
			return nil, errs.ToAggregate()
		}
		if opts.Clock == nil {
			opts.Clock = clock.RealClock{}
		}
		if opts.Dynamic == nil && h != nil && h.KubeConfig() != nil {
			if opts.Dynamic, err = dynamic.NewForConfig(h.KubeConfig()); err != nil {
				return nil, err
			}
		}
		var queue cloud.InterruptionQueue
		startLifecycle := false
		if opts.Cloud == nil && opts.NewCloud != nil && h != nil {
			if opts.Cloud, queue, err = opts.NewCloud(ctx, args.cloudConfig()); err != nil {
				return nil, fmt.Errorf("building the cloud provider: %w", err)
			}
			startLifecycle = true
		}
		registerMetrics()
		klog.FromContext(ctx).V(2).Info("Provision plugin configured",
			"clusterName", args.ClusterName, "region", args.Region, "endpoint", args.Endpoint,
			"batchIdleDuration", args.BatchIdleDuration.Duration, "batchMaxDuration", args.BatchMaxDuration.Duration,
			"launchTimeout", args.LaunchTimeout.Duration,
			"cloud", opts.Cloud != nil)
		return build(ctx, &deps{args: args, handle: h, opts: opts, ledger: NewLedger(), spread: newSpreadGate()}, queue, startLifecycle)
	}
}

// build makes the plugin over d and, with a handle, reads the profile's plugin args, starts
// the lifecycle if it is to run (queue is its interruption queue) and starts following
// NodeClaims, Nodes and pods.
func build(ctx context.Context, d *deps, queue cloud.InterruptionQueue, startLifecycle bool) (*Provision, error) {
	var pluginConfig []config.PluginConfig
	if d.handle != nil && d.opts.ConfigFile != "" {
		var err error
		if pluginConfig, err = plan.ProfilePluginConfig(d.opts.ConfigFile, d.handle.ProfileName()); err != nil {
			return nil, fmt.Errorf("reading the profile's plugin args for the simulation: %w", err)
		}
	}
	p := newProvision(d, plan.HardDefaultSpread(pluginConfig))
	p.pluginConfig = pluginConfig
	p.batcher = newBatcher(d.opts.Clock, d.args.BatchIdleDuration.Duration, d.args.BatchMaxDuration.Duration, p.round)
	if d.handle == nil {
		return p, nil
	}
	p.holds = newHolds(d, p.batcher.TriggerPod, p.reserved.holdsBack)
	p.reserved.onSettle = p.holds.nodesChanged
	if d.opts.Dynamic == nil {
		return nil, fmt.Errorf("no dynamic client for nodeclaims")
	}
	// One cache of NodeClaims for the plugin and the lifecycle: both register on it, then
	// start starts it.
	claimInformers := dynamicinformer.NewDynamicSharedInformerFactory(d.opts.Dynamic, 0)
	p.claimStore = claimInformers.ForResource(v1alpha1.NodeClaimGVR).Informer().GetStore()
	p.typedInformers = map[schema.GroupVersionResource]cache.SharedIndexInformer{}
	for _, gvr := range []schema.GroupVersionResource{v1alpha1.ProvisionerGVR, v1alpha1.EC2NodeClassGVR} {
		p.typedInformers[gvr] = claimInformers.ForResource(gvr).Informer()
	}
	if startLifecycle {
		if err := p.startLifecycle(ctx, queue, claimInformers); err != nil {
			return nil, err
		}
	}
	// The scheduler's context ends the informers and the round loop.
	if err := p.start(ctx, claimInformers); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the plugin's name.
func (p *Provision) Name() string { return Name }

// startLifecycle runs the lifecycle's controllers (launch, registration, termination, GC),
// which turn the NodeClaims the rounds write into nodes, until ctx ends. They act only while
// this replica holds the lifecycle's Lease.
//
// The lifecycle shares the process's caches: it registers on the scheduler's informer
// factory, which the scheduler starts once every plugin is built, and on claimInformers,
// which start starts. Both run whether this replica leads or not (unless the scheduler's
// delayCacheUntilActive holds its informers back until it leads; the lifecycle then waits
// for them before it competes for its own Lease).
func (p *Provision) startLifecycle(ctx context.Context, queue cloud.InterruptionQueue, claimInformers dynamicinformer.DynamicSharedInformerFactory) error {
	gate := disruption.NewGate()
	disrupter, err := p.disruptionController(gate)
	if err != nil {
		return fmt.Errorf("building the disruption controller: %w", err)
	}
	mgr, err := lifecycle.New(lifecycle.Options{
		Leading:          []func(context.Context){disrupter.Run},
		Gate:             gate,
		Client:           p.handle.ClientSet(),
		Dynamic:          p.opts.Dynamic,
		Informers:        p.handle.SharedInformerFactory(),
		DynamicInformers: claimInformers,
		Cloud:            p.opts.Cloud,
		Queue:            queue,
		Clock:            p.opts.Clock,
		// Launches that keep failing end with the claim deleted: onNodeClaimDeleted then
		// releases its pods to the next round.
		LaunchTimeout: p.args.LaunchTimeout.Duration,
	})
	if err != nil {
		return fmt.Errorf("building the lifecycle manager: %w", err)
	}
	go func() {
		if err := mgr.Run(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Lifecycle manager stopped")
		}
	}()
	return nil
}
