package emulator

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Region is the one AWS region the emulator plays.
const Region = "us-east-1"

// AccountID owns every resource the emulator creates.
const AccountID = "123456789012"

// DefaultClusterName names the cluster the default subnets and security groups are tagged for.
const DefaultClusterName = "nodewright-sandbox"

// DiscoveryTagKey is the tag key the default subnets and security group carry, with the
// cluster name as value, so that EC2NodeClass selectors can find them.
const DiscoveryTagKey = "nodewright.dev/discovery"

// DefaultQueueName is the SQS queue created when Options.Queues is empty.
const DefaultQueueName = "nodewright-interruption"

// Capacity types, as CreateFleet's DefaultTargetCapacityType and an instance's lifecycle say.
const (
	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"
)

// Options configures an Emulator. The zero value is a working emulator of us-east-1 with the
// default subnets, security groups and queue, on a real clock, without joining nodes.
//
// For the durations, zero means the default and a negative value means none.
type Options struct {
	// Address is where Start listens; it must be a loopback address. Default 127.0.0.1:0.
	Address string
	// Clock drives instance state changes, join delays, SQS visibility and latency faults.
	// Default the real clock.
	Clock clock.WithTicker
	// Rand draws instance IDs, IP addresses, request IDs, receipt handles, the jitter of
	// launch latencies and join delays, and ThrottleFraction's throttled calls. Default a
	// generator seeded from crypto/rand; tests pass a seeded one for reproducible IDs.
	Rand *rand.Rand
	// Logger receives the emulator's logs. Default klog.Background().
	Logger klog.Logger

	// ClusterName is the value of DiscoveryTagKey on the default subnets and security group.
	// Default DefaultClusterName.
	ClusterName string
	// Subnets replaces the default subnets (one per zone, see DefaultSubnets).
	Subnets []Subnet
	// SecurityGroups replaces the default security groups (see DefaultSecurityGroups).
	SecurityGroups []SecurityGroup
	// Images are AMIs added to the public ones behind the SSM parameters.
	Images []Image
	// SSMParameters are parameters added to the public AMI parameters, name to value.
	SSMParameters map[string]string
	// Queues names the SQS queues. Default [DefaultQueueName].
	Queues []string

	// LaunchLatency is how long an instance stays pending. Default 1s.
	LaunchLatency time.Duration
	// LaunchLatencyJitter spreads the launch latencies of instances: each stays pending for
	// LaunchLatency plus its own uniform draw in [0, LaunchLatencyJitter), made at launch.
	// Default none.
	LaunchLatencyJitter time.Duration
	// TerminateLatency is how long an instance stays shutting-down. Default 1s.
	TerminateLatency time.Duration
	// TerminatedRetention is how long DescribeInstances still shows a terminated instance.
	// Default 1h, as EC2.
	TerminatedRetention time.Duration
	// SpotInterruptionNotice is the time between a spot interruption warning and the
	// instance shutting down. Default 2m, as EC2.
	SpotInterruptionNotice time.Duration

	// KubeClient, or else RESTConfig, is the cluster the emulator joins running instances
	// to, playing their kubelet's registration. With neither, no Node is ever created.
	KubeClient kubernetes.Interface
	RESTConfig *rest.Config
	// JoinDelay is the time from running to the Node's creation. Default 1s.
	JoinDelay time.Duration
	// JoinDelayJitter spreads the join delays of instances: each joins JoinDelay plus its own
	// uniform draw in [0, JoinDelayJitter) after running, drawn at launch. Default none.
	JoinDelayJitter time.Duration
	// JoinPollInterval is how often the emulator looks for instances to join. Default 100ms.
	JoinPollInterval time.Duration
}

// Emulator is an EC2, SSM, Pricing and SQS API server on loopback. Create it with New, then
// Start it, or mount Handler in a server of your own; Close stops it.
type Emulator struct {
	opts  Options
	clock clock.WithTicker
	log   klog.Logger
	kube  kubernetes.Interface

	mu    sync.Mutex
	rand  *rand.Rand
	state *state

	listener net.Listener
	server   *http.Server
	url      string
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   bool
}

// New returns an emulator configured by opts. It does not listen until Start.
func New(opts Options) *Emulator {
	opts = withDefaults(opts)
	log := opts.Logger
	if log.GetSink() == nil {
		log = klog.Background()
	}
	e := &Emulator{
		opts:  opts,
		clock: opts.Clock,
		log:   log.WithName("emulator"),
		rand:  opts.Rand,
		stop:  make(chan struct{}),
	}
	e.state = newState(opts)
	return e
}

func withDefaults(o Options) Options {
	if o.Address == "" {
		o.Address = "127.0.0.1:0"
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Rand == nil {
		var seed [32]byte
		_, _ = cryptorand.Read(seed[:])
		o.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:16])))
	}
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.Subnets == nil {
		o.Subnets = DefaultSubnets(o.ClusterName)
	}
	if o.SecurityGroups == nil {
		o.SecurityGroups = DefaultSecurityGroups(o.ClusterName)
	}
	if len(o.Queues) == 0 {
		o.Queues = []string{DefaultQueueName}
	}
	o.LaunchLatency = duration(o.LaunchLatency, time.Second)
	o.LaunchLatencyJitter = duration(o.LaunchLatencyJitter, 0)
	o.TerminateLatency = duration(o.TerminateLatency, time.Second)
	o.TerminatedRetention = duration(o.TerminatedRetention, time.Hour)
	o.SpotInterruptionNotice = duration(o.SpotInterruptionNotice, 2*time.Minute)
	o.JoinDelay = duration(o.JoinDelay, time.Second)
	o.JoinDelayJitter = duration(o.JoinDelayJitter, 0)
	o.JoinPollInterval = duration(o.JoinPollInterval, 100*time.Millisecond)
	if o.JoinPollInterval == 0 {
		o.JoinPollInterval = time.Millisecond
	}
	return o
}

// duration applies the Options convention: zero is the default, negative is none.
func duration(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Start listens on Options.Address and serves the APIs, and starts joining running instances
// to the cluster when one is configured. It fails on invalid Options (a subnet with a bad
// CIDR or zone, a queue named twice).
func (e *Emulator) Start() error {
	if e.listener != nil {
		return errors.New("the emulator is already started")
	}
	if e.state.invalid != nil {
		return fmt.Errorf("invalid options: %w", e.state.invalid)
	}
	host, _, err := net.SplitHostPort(e.opts.Address)
	if err != nil {
		return fmt.Errorf("parsing address %q: %w", e.opts.Address, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback address", e.opts.Address)
	}
	if e.opts.KubeClient != nil {
		e.kube = e.opts.KubeClient
	} else if e.opts.RESTConfig != nil {
		client, err := kubernetes.NewForConfig(e.opts.RESTConfig)
		if err != nil {
			return fmt.Errorf("creating the Kubernetes client: %w", err)
		}
		e.kube = client
	}
	l, err := net.Listen("tcp", e.opts.Address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", e.opts.Address, err)
	}
	e.listener = l
	e.url = "http://" + l.Addr().String()
	e.server = &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := e.server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error(err, "Serving stopped")
		}
	}()
	if e.kube != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.joinLoop()
		}()
	}
	e.log.V(2).Info("Started", "url", e.url)
	return nil
}

// URL returns the base URL to point the SDK clients' BaseEndpoint at, once started.
func (e *Emulator) URL() string {
	return e.url
}

// Close stops serving and joining, and waits for both to end. It is safe to call twice.
func (e *Emulator) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.mu.Unlock()
	close(e.stop)
	if e.server != nil {
		_ = e.server.Close()
	}
	e.wg.Wait()
}

// Handler returns the emulator's HTTP handler: the AWS APIs at "/" and the control API under
// ControlPrefix. Use it to serve the emulator from a server of your own instead of Start; the
// SQS queue URLs then use the Host header of each request. Without Start, no Node joins.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	e.registerControl(mux)
	mux.HandleFunc("/", e.serveAPI)
	return mux
}

// serveAPI routes a request to the service its protocol names: the JSON protocols carry an
// X-Amz-Target header, EC2's query protocol a form with Action.
func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		e.serveJSON(w, r, target)
		return
	}
	e.serveEC2(w, r)
}

// now returns the current time of the emulator's clock.
func (e *Emulator) now() time.Time {
	return e.clock.Now()
}
