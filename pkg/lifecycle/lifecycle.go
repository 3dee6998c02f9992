package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/disruption"
)

// Defaults of Options.
const (
	DefaultRegistrationTimeout = 15 * time.Minute
	// DefaultLaunchTimeout: long enough to ride out throttling and a node class being fixed,
	// short enough that pods do not wait long on a claim that will never launch.
	DefaultLaunchTimeout = 5 * time.Minute
	DefaultGCGracePeriod = 2 * time.Minute
	DefaultGCInterval    = time.Minute
	// DefaultWorkers: a launch waits on the API and EC2 far longer than it computes, and a
	// round of 1,000 pods writes some 200 NodeClaims at once.
	DefaultWorkers        = 16
	DefaultLeaseName      = "nodewright-lifecycle"
	DefaultLeaseNamespace = "kube-system"
	DefaultLeaseDuration  = 15 * time.Second
	DefaultRenewDeadline  = 10 * time.Second
	DefaultRetryPeriod    = 2 * time.Second
)

// Options configure a Manager. Client, Dynamic and Cloud are required; every other field
// has a default.
type Options struct {
	// Client reads and writes Nodes, Pods, evictions, events and the Lease.
	Client kubernetes.Interface
	// Dynamic reads and writes NodeClaims, Provisioners and EC2NodeClasses.
	Dynamic dynamic.Interface
	// Cloud launches and terminates instances.
	Cloud cloud.Provider
	// Queue is the cloud's interruption queue; nil disables interruption handling.
	Queue cloud.InterruptionQueue
	// Clock tells the time of TTLs and timeouts; nil means the real clock.
	Clock clock.Clock
	// Recorder records events; nil means a recorder writing events.k8s.io/v1 Events through
	// Client, started by Run.
	Recorder events.EventRecorder
	// Informers, when set, is the factory whose Node and Pod informers drive the controllers
	// and cache what they read: kube-scheduler's, so that the process keeps one cache of
	// each. New registers its informers, the pods' index and its event handlers on it; the
	// factory's owner starts it, and Run only waits for the caches. The pod informer may
	// leave out finished pods, as the scheduler's does: the lifecycle treats a finished pod as
	// gone. nil means a factory of the Manager's own, which Run starts and stops.
	Informers informers.SharedInformerFactory
	// Leading are run, each on a goroutine of its own, with the controllers while this
	// replica holds the Lease, until it is lost or ctx ends: controllers of others that must
	// act only in the leader (the disruption controller).
	Leading []func(ctx context.Context)
	// Gate keeps emptiness and expiry within the Provisioners' disruption budgets, together
	// with the disruptions of whoever else holds it (the disruption controller); nil means a
	// Gate of the Manager's own.
	Gate *disruption.Gate
	// DynamicInformers is the same for NodeClaims and Provisioners: the Provision plugin's,
	// so that the plugin and the lifecycle keep one cache of NodeClaims.
	DynamicInformers dynamicinformer.DynamicSharedInformerFactory

	// LaunchTimeout is how long a NodeClaim's launch may keep failing, counted from its first
	// failed attempt, before the claim is deleted and its pods are planned again. Attempts
	// are retried with backoff in between.
	LaunchTimeout time.Duration
	// RegistrationTimeout is how long after launch an instance's Node may take to join
	// before the instance is terminated.
	RegistrationTimeout time.Duration
	// GCGracePeriod is how old an instance with no NodeClaim, or a NodeClaim with no
	// instance, must be before garbage collection removes it.
	GCGracePeriod time.Duration
	// GCInterval is how often garbage collection runs.
	GCInterval time.Duration
	// Workers is the number of concurrent reconciles of each controller.
	Workers int

	// LeaderElection configures the Lease that makes only one replica act.
	LeaderElection LeaderElectionOptions
}

// LeaderElectionOptions configure the lifecycle's leader election on a
// coordination.k8s.io/v1 Lease.
type LeaderElectionOptions struct {
	// Disabled makes the Manager act without a Lease: for tests and single-replica setups.
	Disabled bool
	// LeaseName and LeaseNamespace name the Lease.
	LeaseName      string
	LeaseNamespace string
	// Identity names this replica in the Lease; default: hostname and a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are as in
	// k8s.io/client-go/tools/leaderelection.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// withDefaults returns o with its unset fields defaulted.
func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	o.LaunchTimeout = orDefault(o.LaunchTimeout, DefaultLaunchTimeout)
	o.RegistrationTimeout = orDefault(o.RegistrationTimeout, DefaultRegistrationTimeout)
	o.GCGracePeriod = orDefault(o.GCGracePeriod, DefaultGCGracePeriod)
	o.GCInterval = orDefault(o.GCInterval, DefaultGCInterval)
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	le := &o.LeaderElection
	if le.LeaseName == "" {
		le.LeaseName = DefaultLeaseName
	}
	if le.LeaseNamespace == "" {
		le.LeaseNamespace = DefaultLeaseNamespace
	}
	if le.Identity == "" {
		host, _ := os.Hostname()
		le.Identity = host + "_" + string(uuid.NewUUID())
	}
	le.LeaseDuration = orDefault(le.LeaseDuration, DefaultLeaseDuration)
	le.RenewDeadline = orDefault(le.RenewDeadline, DefaultRenewDeadline)
	le.RetryPeriod = orDefault(le.RetryPeriod, DefaultRetryPeriod)
	return o
}

// validate checks defaulted options, naming each bad field.
func (o Options) validate() error {
	var errs field.ErrorList
	if o.Client == nil {
		errs = append(errs, field.Required(field.NewPath("client"), "a Kubernetes client is needed"))
	}
	if o.Dynamic == nil {
		errs = append(errs, field.Required(field.NewPath("dynamic"), "a dynamic client is needed for NodeClaims"))
	}
	if o.Cloud == nil {
		errs = append(errs, field.Required(field.NewPath("cloud"), "a cloud provider is needed"))
	}
	for name, d := range map[string]time.Duration{
		"launchTimeout":       o.LaunchTimeout,
		"registrationTimeout": o.RegistrationTimeout,
		"gcGracePeriod":       o.GCGracePeriod,
		"gcInterval":          o.GCInterval,
	} {
		if d < 0 {
			errs = append(errs, field.Invalid(field.NewPath(name), d.String(), "must not be negative"))
		}
	}
	if o.Workers < 0 {
		errs = append(errs, field.Invalid(field.NewPath("workers"), o.Workers, "must not be negative"))
	}
	le := o.LeaderElection
	lePath := field.NewPath("leaderElection")
	if !le.Disabled {
		if le.LeaseDuration <= le.RenewDeadline {
			errs = append(errs, field.Invalid(lePath.Child("leaseDuration"), le.LeaseDuration.String(), "must be greater than renewDeadline"))
		}
		if le.RenewDeadline <= le.RetryPeriod {
			errs = append(errs, field.Invalid(lePath.Child("renewDeadline"), le.RenewDeadline.String(), "must be greater than retryPeriod"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid lifecycle options: %w", errs.ToAggregate())
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Manager runs the lifecycle's controllers while it holds the Lease.
type Manager struct {
	opts        Options
	deps        *deps
	broadcaster events.EventBroadcaster // nil when Options.Recorder was given
	caches      caches

	launch, register, empty, nodeTermination, claimTermination, expire, orphan *controller

	launcher    *launcher
	registrar   *registrar
	emptiness   *emptiness
	terminator  *terminator
	expiry      *expiry
	orphans     *orphans
	collector   *collector
	interrupter *interrupter
}

// New returns a Manager for opts, defaulted and validated, with its informers, indexers and
// event handlers registered on the given factories or on factories of its own, which Run
// starts.
func New(opts Options) (*Manager, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	registerMetrics()
	m := &Manager{opts: opts}
	recorder := opts.Recorder
	if recorder == nil {
		scheme, err := newScheme()
		if err != nil {
			return nil, fmt.Errorf("building event scheme: %w", err)
		}
		m.broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: opts.Client.EventsV1()})
		recorder = m.broadcaster.NewRecorder(scheme, reportingController)
	}
	m.deps = &deps{
		kube:     opts.Client,
		objects:  objects{client: opts.Dynamic, written: newClaimWrites()},
		cloud:    opts.Cloud,
		clock:    opts.Clock,
		recorder: recorder,
		gate:     opts.Gate,
	}
	if m.deps.gate == nil {
		m.deps.gate = disruption.NewGate()
	}
	m.launcher = newLauncher(m.deps, opts.LaunchTimeout)
	m.registrar = &registrar{deps: m.deps, timeout: opts.RegistrationTimeout}
	m.emptiness = &emptiness{deps: m.deps}
	m.terminator = &terminator{deps: m.deps}
	m.expiry = &expiry{deps: m.deps}
	m.orphans = &orphans{deps: m.deps}
	m.collector = &collector{deps: m.deps, grace: opts.GCGracePeriod}
	if opts.Queue != nil {
		m.interrupter = &interrupter{deps: m.deps, queue: opts.Queue}
	}
	m.launch = newController("launch", opts.Clock, m.launcher.reconcile)
	m.register = newController("registration", opts.Clock, m.registrar.reconcile)
	m.empty = newController("emptiness", opts.Clock, m.emptiness.reconcile)
	m.nodeTermination = newController("node-termination", opts.Clock, m.terminator.reconcileNode)
	m.claimTermination = newController("nodeclaim-termination", opts.Clock, m.terminator.reconcileClaim)
	m.expire = newController("expiry", opts.Clock, m.expiry.reconcile)
	m.orphan = newController("provisioner-deletion", opts.Clock, m.orphans.reconcile)
	if err := m.watch(); err != nil {
		return nil, err
	}
	return m, nil
}

// errLostLease is returned by Run when another replica took the Lease.
var errLostLease = errors.New("lost the lifecycle lease")
