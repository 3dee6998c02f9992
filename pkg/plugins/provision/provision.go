package provision

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/cloud"
)

// Name is the plugin's name in the scheduler's registry and in KubeSchedulerConfiguration.
const Name = "Provision"

// Options are what the plugin needs beyond its args, for the binary's wiring and for tests.
type Options struct {
	// Cloud lists instance types. nil means none is configured: rounds then only log and
	// record an event saying so. The plugin must not build the AWS provider itself (it does
	// not import pkg/aws); cmd/scheduler passes it through NewWithOptions.
	Cloud cloud.Provider
	// Clock times the batch windows. Default the real clock.
	Clock clock.WithTicker
	// Dynamic writes NodeClaims and reads Provisioners and EC2NodeClasses. Default a client
	// from the handle's KubeConfig.
	Dynamic dynamic.Interface
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
	lastUnplanned map[types.UID]*Unplanned
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
		logger.V(2).Info("Provision plugin configured",
			"clusterName", args.ClusterName, "region", args.Region, "endpoint", args.Endpoint,
			"batchIdleDuration", args.BatchIdleDuration.Duration, "batchMaxDuration", args.BatchMaxDuration.Duration,
			"cloud", opts.Cloud != nil)
		p := &Provision{args: args, handle: h, opts: opts, ledger: NewLedger(), lastUnplanned: map[types.UID]*Unplanned{}}
		p.batcher = newBatcher(opts.Clock, args.BatchIdleDuration.Duration, args.BatchMaxDuration.Duration, p.round)
		if h != nil {
			// The scheduler's context ends the round loop.
			go p.batcher.Run(ctx)
		}
		return p, nil
	}
}

// Name returns the plugin's name.
func (p *Provision) Name() string { return Name }

// round plans nodes for every pending pod of this scheduler without a reservation.
func (p *Provision) round(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if p.opts.Cloud == nil {
		logger.Error(nil, "Provision: no cloud provider configured; no node can be planned")
		for _, pod := range p.pendingPods(logger) {
			p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning",
				"%s: no cloud provider configured", Name)
		}
		return
	}
	// Not built yet: listing Provisioners and node classes, calling Plan, writing NodeClaims
	// and recording lastUnplanned (see the report of issue 6).
	logger.Error(nil, "Provision: provisioning rounds are not wired to the cloud yet")
}

// pendingPods returns the pods of this profile that are not bound and have no reservation.
func (p *Provision) pendingPods(logger klog.Logger) []*v1.Pod {
	pods, err := p.handle.SharedInformerFactory().Core().V1().Pods().Lister().List(labels.Everything())
	if err != nil {
		logger.Error(err, "Listing pods")
		return nil
	}
	var out []*v1.Pod
	for _, pod := range pods {
		if pod.Spec.SchedulerName != p.handle.ProfileName() || pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil {
			continue
		}
		if _, _, reserved := p.ledger.Reservation(pod.UID); reserved {
			continue
		}
		out = append(out, pod)
	}
	return out
}
