package provision

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/cloud"
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

// Provision is the PostFilter plugin that plans nodes for pods no existing node can host:
// PostFilter answers from the ledger and triggers batched provisioning rounds, which plan
// with the scheduler's Filter plugins (Plan) and write NodeClaims.
type Provision struct {
	args    *Args
	handle  fwk.Handle
	opts    Options
	ledger  *Ledger
	batcher *batcher

	mu            sync.Mutex
	lastUnplanned map[types.UID]*plan.Unplanned
	// activated are the NodeClaims whose pods were activated when their node registered.
	activated map[string]bool
	// unschedulableSince is when each unbound pod was first seen unschedulable.
	unschedulableSince map[types.UID]time.Time
	// terms caches constraintTerms by pod UID (see reservedConflict).
	terms map[types.UID]cachedTerms
	// graceTimers are the NodeClaims with a retryWhenGraceEnds pending.
	graceTimers map[string]bool
	// strands are the pods stranded on nodes launched for them (see strandRelease).
	strands map[types.UID]*strand
	// pluginConfig are the plugin args of the profile (see Options.ConfigFile), nil for
	// the defaults; hardDefaultSpread is HardDefaultSpread(pluginConfig).
	pluginConfig      []config.PluginConfig
	hardDefaultSpread bool
}

var _ fwk.PostFilterPlugin = &Provision{}

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
		logger := klog.FromContext(ctx)
		var queue cloud.InterruptionQueue
		startLifecycle := false
		if opts.Cloud == nil && opts.NewCloud != nil && h != nil {
			if opts.Cloud, queue, err = opts.NewCloud(ctx, args.cloudConfig()); err != nil {
				return nil, fmt.Errorf("building the cloud provider: %w", err)
			}
			startLifecycle = true
		}
		registerMetrics()
		logger.V(2).Info("Provision plugin configured",
			"clusterName", args.ClusterName, "region", args.Region, "endpoint", args.Endpoint,
			"batchIdleDuration", args.BatchIdleDuration.Duration, "batchMaxDuration", args.BatchMaxDuration.Duration,
			"launchTimeout", args.LaunchTimeout.Duration,
			"cloud", opts.Cloud != nil)
		p := &Provision{args: args, handle: h, opts: opts, ledger: NewLedger(), lastUnplanned: map[types.UID]*plan.Unplanned{}, activated: map[string]bool{},
			unschedulableSince: map[types.UID]time.Time{}}
		p.batcher = newBatcher(opts.Clock, args.BatchIdleDuration.Duration, args.BatchMaxDuration.Duration, p.round)
		if h == nil {
			return p, nil
		}
		if opts.ConfigFile != "" {
			if p.pluginConfig, err = plan.ProfilePluginConfig(opts.ConfigFile, h.ProfileName()); err != nil {
				return nil, fmt.Errorf("reading the profile's plugin args for the simulation: %w", err)
			}
			p.hardDefaultSpread = plan.HardDefaultSpread(p.pluginConfig)
		}
		if opts.Dynamic == nil {
			return nil, fmt.Errorf("no dynamic client for nodeclaims")
		}
		// One cache of NodeClaims for the plugin and the lifecycle: both register on it, then
		// start starts it.
		claimInformers := dynamicinformer.NewDynamicSharedInformerFactory(opts.Dynamic, 0)
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
}

// Name returns the plugin's name.
func (p *Provision) Name() string { return Name }

// pendingPods returns the pods of this profile that the scheduler could not place, that are
// not bound and have no reservation.
func (p *Provision) pendingPods(logger klog.Logger) []*v1.Pod {
	pods, err := p.handle.SharedInformerFactory().Core().V1().Pods().Lister().List(labels.Everything())
	if err != nil {
		logger.Error(err, "Listing pods")
		return nil
	}
	var out []*v1.Pod
	for _, pod := range pods {
		if !p.wantsNode(pod) {
			continue
		}
		if _, _, reserved := p.ledger.Reservation(pod.UID); reserved {
			continue
		}
		out = append(out, pod)
	}
	return out
}

// cloudConfig is the cloud's part of the args.
func (a *Args) cloudConfig() cloud.Config {
	return cloud.Config{
		ClusterName:       a.ClusterName,
		Region:            a.Region,
		Endpoint:          a.Endpoint,
		ClusterEndpoint:   a.ClusterEndpoint,
		ClusterCA:         a.ClusterCA,
		ClusterCIDR:       a.ClusterCIDR,
		KubernetesVersion: a.KubernetesVersion,
		InterruptionQueue: a.InterruptionQueue,
	}
}

// wantsNode reports whether pod is this profile's, unbound, and was found unschedulable by
// the scheduler: a pod not tried yet may well fit an existing node.
func (p *Provision) wantsNode(pod *v1.Pod) bool {
	if pod.Spec.SchedulerName != p.handle.ProfileName() || pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodScheduled {
			return c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable
		}
	}
	return false
}
