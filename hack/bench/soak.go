package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/lifecycle"
)

// soakOptions configure one chaos soak (runSoak).
type soakOptions struct {
	Duration time.Duration
	Seed     uint64
	// MaxPods bounds the replicas of each scaled Deployment (the anti-affinity one gets a
	// tenth: each of its pods takes a node).
	MaxPods int
	// KillEvery is the mean time between two SIGKILLs of the scheduler.
	KillEvery time.Duration
	// StrandBound is how long a pod may stay Pending when a fresh plan would place it.
	StrandBound time.Duration
	// CPULimit is the Provisioner's cpu limit.
	CPULimit int
}

// Soak is a soak's report: its parameters, what it did, and the invariants' counters, each
// of which must be 0.
type Soak struct {
	Seed            uint64  `json:"seed"`
	DurationSeconds float64 `json:"durationSeconds"`
	MaxPods         int     `json:"maxPods"`
	CPULimit        int     `json:"cpuLimit"`
	// KillEverySeconds and StrandBoundSeconds are soakOptions.KillEvery and StrandBound.
	KillEverySeconds   float64 `json:"killEverySeconds,omitempty"`
	StrandBoundSeconds float64 `json:"strandBoundSeconds,omitempty"`

	PodsCreated       int            `json:"podsCreated"`
	NodesLaunched     int            `json:"nodesLaunched"`
	Faults            map[string]int `json:"faults"`
	SchedulerRestarts int            `json:"schedulerRestarts"`
	// SchedulerExits are the scheduler's exits of its own (a lost lease).
	SchedulerExits int `json:"schedulerExits"`
	// PeakRSSMiB is the largest peak RSS of any of the scheduler's processes;
	// LastRSSMiB is the last process's.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	LastRSSMiB float64 `json:"lastRSSMiB"`
	// PeakGoroutines and LastGoroutines are the scheduler's go_goroutines: the most seen
	// in any of its processes, and the last value seen.
	PeakGoroutines int `json:"peakGoroutines"`
	LastGoroutines int `json:"lastGoroutines"`

	Invariants Invariants `json:"invariants"`
	// Violations say what each counted violation was.
	Violations []string `json:"violations,omitempty"`
	Timeline   []Event  `json:"timeline"`
}

// Invariants are the soak's counters of what must never happen.
type Invariants struct {
	// LeakedInstances: instances with no NodeClaim for longer than garbage collection
	// takes (its grace period and interval), and instances left at the end.
	LeakedInstances int `json:"leakedInstances"`
	// DoubleLaunches: NodeClaims with more than one instance.
	DoubleLaunches int `json:"doubleLaunches"`
	// StrandedPods: pods Pending for longer than the bound that a fresh plan places.
	StrandedPods int `json:"strandedPods"`
	// PDBViolations: times the protected Deployment had fewer ready pods than its
	// PodDisruptionBudget's minAvailable, after it was first all ready.
	PDBViolations int `json:"pdbViolations"`
	// StuckCordoned: nodes cordoned or tainted disrupted for longer than stuckBound with no
	// deletion or disruption of their NodeClaim in progress.
	StuckCordoned int `json:"stuckCordoned"`
	// LimitExceeded: checks at which the NodeClaims of the Provisioner, those in flight
	// counted by their requests, held more cpu than its limit.
	LimitExceeded int `json:"limitExceeded"`
}

// Event is one entry of the soak's timeline.
type Event struct {
	AtSeconds float64 `json:"atSeconds"`
	Kind      string  `json:"kind"`
	Detail    string  `json:"detail,omitempty"`
}

// soakNamespace holds the soak's workload.
const soakNamespace = "soak"

// The soak's fault kinds, as the report counts them.
const (
	faultICE          = "insufficient-capacity"
	faultThrottle     = "throttled-ec2-calls"
	faultSpot         = "spot-interruption"
	faultKill         = "scheduler-sigkill"
	faultNeverJoin    = "node-never-joins"
	faultAPIServer    = "kube-apiserver-restart"
	faultKillAtClaim  = "scheduler-sigkill-after-nodeclaim-write"
	faultKillAtLaunch = "scheduler-sigkill-after-launch"
	faultOrphan       = "instance-without-nodeclaim"
)

// soak is a running soak.
type soak struct {
	opts   soakOptions
	c      *cluster
	dyn    dynamic.Interface
	rand   *rand.Rand
	start  time.Time
	config string
	// metricsPort is where the scheduler serves its metrics.
	metricsPort int

	// ending is set once the workload is being scaled to 0; stopping once the soak stops
	// the scheduler for good.
	ending, stopping atomic.Bool
	// killed are the scheduler processes killLoop killed.
	killed map[*schedulerProcess]bool

	mu       sync.Mutex
	report   *Soak
	sched    *schedulerProcess
	restarts int
}

func soakCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	out := fs.String("out", "soak.json", "file to write the report to, as JSON")
	markdown := fs.String("markdown", "", "file to write the report to as Markdown too (docs/reliability.md)")
	opts := soakOptions{}
	fs.DurationVar(&opts.Duration, "duration", 30*time.Minute, "how long the workload and the faults run, before the scale to 0")
	fs.Uint64Var(&opts.Seed, "seed", 1, "seed of every random choice: the same seed makes the same workload and faults, in the same order")
	fs.IntVar(&opts.MaxPods, "max-pods", 150, "replicas each scaled Deployment is drawn up to")
	fs.DurationVar(&opts.KillEvery, "kill-every", 3*time.Minute, "mean time between two SIGKILLs of nodewright-scheduler")
	fs.DurationVar(&opts.StrandBound, "strand-bound", 5*time.Minute, "how long a pod may be Pending when a fresh plan would place it")
	fs.IntVar(&opts.CPULimit, "cpu-limit", 2000, "the Provisioner's cpu limit")
	render := fs.String("render", "", "only render this report, a soak's JSON, as Markdown (-markdown)")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *render != "" {
		var r Soak
		data, err := os.ReadFile(*render)
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", *render, err)
		}
		return os.WriteFile(*markdown, []byte(soakMarkdown(&r, *render)), 0o644)
	}
	r, err := runSoak(ctx, opts)
	if r != nil {
		data, jerr := json.MarshalIndent(r, "", "  ")
		if jerr != nil {
			return jerr
		}
		if werr := os.WriteFile(*out, append(data, '\n'), 0o644); werr != nil {
			return werr
		}
		if *markdown != "" {
			if werr := os.WriteFile(*markdown, []byte(soakMarkdown(r, *out)), 0o644); werr != nil {
				return werr
			}
		}
	}
	if err != nil {
		return err
	}
	if n := r.Invariants.total(); n > 0 {
		return fmt.Errorf("%d invariant violation(s): %v", n, r.Violations)
	}
	return nil
}

func (i Invariants) total() int {
	return i.LeakedInstances + i.DoubleLaunches + i.StrandedPods + i.PDBViolations + i.StuckCordoned + i.LimitExceeded
}

// runSoak runs one soak: a sandbox whose EC2 launches with latency and join delays, a
// workload scaled at random, and faults, for opts.Duration; then everything scaled to 0 and
// the fleet given time to go. Invariants are checked every few seconds throughout.
func runSoak(ctx context.Context, opts soakOptions) (_ *Soak, err error) {
	logger := klog.FromContext(ctx)
	c, err := startClusterWith(ctx, emulator.Options{
		Rand: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		// EC2's pending time is ~5-15 s and a node joins ~20-40 s after; compressed here to
		// a third so that a soak of minutes sees many launches.
		LaunchLatency: 2 * time.Second, LaunchLatencyJitter: 3 * time.Second,
		JoinDelay: 5 * time.Second, JoinDelayJitter: 8 * time.Second,
		SpotInterruptionNotice: 30 * time.Second,
		JoinPollInterval:       100 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	s := &soak{opts: opts, c: c, killed: map[*schedulerProcess]bool{}, rand: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x50a4)),
		report: &Soak{Seed: opts.Seed, DurationSeconds: opts.Duration.Seconds(), MaxPods: opts.MaxPods, CPULimit: opts.CPULimit,
			KillEverySeconds: opts.KillEvery.Seconds(), StrandBoundSeconds: opts.StrandBound.Seconds(), Faults: map[string]int{}}}
	defer func() { c.stop(err == nil && s.report.Invariants.total() == 0) }()
	if s.dyn, err = dynamic.NewForConfig(c.restConfig()); err != nil {
		return nil, err
	}
	if err := s.configureProvisioner(ctx); err != nil {
		return nil, err
	}
	if s.config, err = c.schedulerConfig("scheduler-config.yaml", true, false); err != nil {
		return nil, err
	}
	if s.metricsPort, err = freePort(); err != nil {
		return nil, err
	}
	if err := s.startScheduler(ctx); err != nil {
		return nil, err
	}
	defer func() {
		s.stopping.Store(true)
		s.current().stop()
	}()
	go s.supervise(ctx)
	if err := c.createNamespace(ctx, soakNamespace); err != nil {
		return nil, err
	}
	if err := s.createWorkload(ctx); err != nil {
		return nil, err
	}
	logger.Info("Soak started", "duration", opts.Duration, "seed", opts.Seed, "dir", c.dir)
	s.start = time.Now()
	checker, err := newChecker(ctx, s)
	if err != nil {
		return nil, err
	}
	defer checker.close()

	runCtx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.scaleLoop(runCtx) })
	wg.Go(func() { s.faultLoop(runCtx) })
	wg.Go(func() { s.killLoop(runCtx, checker) })
	wg.Go(func() { checker.loop(runCtx) })
	wg.Wait()
	if ctx.Err() != nil {
		return s.report, ctx.Err()
	}

	// The end: faults off, every workload to 0, and the fleet given time to go.
	s.ending.Store(true)
	s.event("scale-to-zero", "")
	s.c.emulator.ThrottleFraction("", 0)
	s.c.emulator.ClearInsufficientCapacity("", "", "")
	if err := s.scaleAll(ctx, 0); err != nil {
		return s.report, err
	}
	if err := s.c.client.BatchV1().Jobs(soakNamespace).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}, metav1.ListOptions{}); err != nil {
		return s.report, err
	}
	// Emptiness removes the nodes after consolidateAfter; garbage collection removes an
	// instance left without a claim after its grace period.
	drained := wait.PollUntilContextTimeout(ctx, 5*time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		checker.check(ctx)
		return len(s.liveInstances()) == 0, nil
	})
	s.finish(checker)
	if drained != nil {
		for _, inst := range s.liveInstances() {
			if !checker.once("leak/" + inst.ID) {
				continue // counted as it leaked
			}
			s.violation(&s.report.Invariants.LeakedInstances, "instance %s (%s, nodeclaim %q) still %s after the scale to 0",
				inst.ID, inst.InstanceType, inst.Tags[v1alpha1.TagNodeClaim], inst.State)
		}
	}
	return s.report, nil
}

// configureProvisioner gives the Provisioner "default" its limit and consolidation.
func (s *soak) configureProvisioner(ctx context.Context) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{
		"limits":     map[string]any{"cpu": fmt.Sprint(s.opts.CPULimit)},
		"disruption": map[string]any{"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "30s"}}})
	if err != nil {
		return err
	}
	if _, err := s.dyn.Resource(v1alpha1.ProvisionerGVR).Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("configuring the Provisioner: %w", err)
	}
	return nil
}

// The soak's Deployments: one per class of the diverse mix, scaled at random, and the
// protected one, of fixed size, behind a PodDisruptionBudget.
const (
	protectedName     = "protected"
	protectedReplicas = 6
	protectedMin      = 4
)

// createWorkload creates the Deployments at 0 replicas and the protected one at its size.
func (s *soak) createWorkload(ctx context.Context) error {
	templates := workload.Pods(len(workload.Classes), s.opts.Seed, workload.PodOptions{Namespace: soakNamespace, SchedulerName: schedulerName})
	for i, t := range templates {
		d := workload.Deployment(t, fmt.Sprintf("d-%d", i), 0)
		if _, err := s.c.client.AppsV1().Deployments(soakNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating deployment %s: %w", d.Name, err)
		}
	}
	// The protected pods run on on-demand nodes: a spot interruption may take a node whatever
	// its pods' budget, which is not what the PDB invariant checks.
	t := workload.Pods(1, s.opts.Seed+1, workload.PodOptions{Namespace: soakNamespace, SchedulerName: schedulerName, Prefix: protectedName}, workload.Generic)[0]
	t.Spec.NodeSelector = map[string]string{v1alpha1.LabelCapacityType: "on-demand"}
	d := workload.Deployment(t, protectedName, protectedReplicas)
	if _, err := s.c.client.AppsV1().Deployments(soakNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating deployment %s: %w", d.Name, err)
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: protectedName, Namespace: soakNamespace},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(protectedMin)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"deploy": protectedName}}}}
	if _, err := s.c.client.PolicyV1().PodDisruptionBudgets(soakNamespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the PodDisruptionBudget: %w", err)
	}
	return nil
}

// scaleLoop scales one Deployment at random every 20-60 s, and runs a Job every few minutes.
func (s *soak) scaleLoop(ctx context.Context) {
	jobs := 0
	for s.sleep(ctx, 20*time.Second, 40*time.Second) {
		i := s.intN(len(workload.Classes))
		max := s.opts.MaxPods
		if workload.Classes[i] == workload.HostnameAntiAffinity {
			max = max / 10
		}
		n := s.intN(max + 1)
		if err := s.scale(ctx, fmt.Sprintf("d-%d", i), n); err != nil {
			klog.FromContext(ctx).Error(err, "Scaling", "deployment", i)
			continue
		}
		if s.intN(4) == 0 {
			jobs++
			if err := s.createJob(ctx, fmt.Sprintf("job-%d", jobs), int32(5+s.intN(20))); err != nil {
				klog.FromContext(ctx).Error(err, "Creating a job")
			}
		}
	}
}

// scale sets the replicas of the Deployment named name, counting the pods it adds.
func (s *soak) scale(ctx context.Context, name string, n int) error {
	d, err := s.c.client.AppsV1().Deployments(soakNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	before := int(ptr.Deref(d.Spec.Replicas, 0))
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := s.c.client.AppsV1().Deployments(soakNamespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return err
	}
	s.mu.Lock()
	s.report.PodsCreated += max(0, n-before)
	s.mu.Unlock()
	s.event("scale", fmt.Sprintf("%s %d -> %d", name, before, n))
	return nil
}

// scaleAll scales every scaled Deployment and the protected one to n.
func (s *soak) scaleAll(ctx context.Context, n int) error {
	for i := range workload.Classes {
		if err := s.scale(ctx, fmt.Sprintf("d-%d", i), n); err != nil {
			return err
		}
	}
	return s.scale(ctx, protectedName, n)
}

// createJob runs a Job of n generic pods that its deadline ends after two minutes (kwok's
// pods do not exit by themselves).
func (s *soak) createJob(ctx context.Context, name string, n int32) error {
	t := workload.Pods(1, s.opts.Seed+uint64(n), workload.PodOptions{Namespace: soakNamespace, SchedulerName: schedulerName, Prefix: name}, workload.Generic)[0]
	job := workload.Job(t, name, n, 120)
	if _, err := s.c.client.BatchV1().Jobs(soakNamespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		return err
	}
	s.mu.Lock()
	s.report.PodsCreated += int(n)
	s.mu.Unlock()
	s.event("job", fmt.Sprintf("%s of %d pods", name, n))
	return nil
}

// faultLoop injects EC2's faults: 20 % of EC2 calls throttled throughout; a tenth of the
// capacity pools insufficient, rotated every two minutes; a spot interruption a minute; a
// node that never joins every five minutes (until RegistrationTimeout before the end); an instance without a NodeClaim every four; the
// kube-apiserver restarted once, halfway.
func (s *soak) faultLoop(ctx context.Context) {
	e := s.c.emulator
	e.ThrottleFraction("", 0.2)
	s.event(faultThrottle, "20 % of every EC2 call, throughout")
	pools := s.pools(ctx)
	var ice []poolRef
	apiserverAt := s.opts.Duration / 2
	apiserverDone := false
	for minute := 0; s.sleep(ctx, time.Minute, 0); minute++ {
		if minute%2 == 0 && len(pools) > 0 {
			for _, p := range ice {
				e.ClearInsufficientCapacity(p.instanceType, p.zone, p.capacityType)
			}
			ice = ice[:0]
			for range max(1, len(pools)/10) {
				p := pools[s.intN(len(pools))]
				e.InsufficientCapacity(p.instanceType, p.zone, p.capacityType)
				ice = append(ice, p)
			}
			s.count(faultICE, fmt.Sprintf("%d pools", len(ice)))
		}
		if spot := s.runningSpot(); len(spot) > 0 {
			id := spot[s.intN(len(spot))]
			if err := e.InterruptSpot(id); err == nil {
				s.count(faultSpot, id)
			}
		}
		// A node that never joins holds its claim for the lifecycle's RegistrationTimeout:
		// none is injected later than that before the end.
		if minute%5 == 4 && time.Since(s.start)+lifecycle.DefaultRegistrationTimeout < s.opts.Duration {
			e.NeverJoinNext(1)
			s.count(faultNeverJoin, "the next instance launched")
		}
		if minute%4 == 1 {
			s.launchOrphan(ctx, minute)
		}
		if !apiserverDone && time.Since(s.start) >= apiserverAt {
			apiserverDone = true
			err := s.c.cp.RestartAPIServer(ctx)
			detail := ""
			if err != nil {
				detail = err.Error()
			}
			s.count(faultAPIServer, detail)
		}
	}
	for _, p := range ice {
		e.ClearInsufficientCapacity(p.instanceType, p.zone, p.capacityType)
	}
}

// launchOrphan launches an instance, through the AWS provider the scheduler uses, for a
// NodeClaim that is never written: an instance whose claim is gone, as a launch that returned
// after its claim was deleted leaves one. Garbage collection must terminate it.
func (s *soak) launchOrphan(ctx context.Context, n int) {
	provider, class, err := s.c.provider(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Making the AWS provider; no orphan instance")
		return
	}
	name := fmt.Sprintf("soak-orphan-%d", n)
	nc := &v1alpha1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(fmt.Sprintf("%d-%s", s.opts.Seed, name))},
		Spec: v1alpha1.NodeClaimSpec{Provisioner: "default", NodeClassRef: v1alpha1.NodeClassReference{Name: class.Name},
			Requirements: []v1alpha1.NodeSelectorRequirement{
				{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"m5.large", "m6i.large", "m7i.large"}},
				{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{v1alpha1.CapacityTypeOnDemand}}}}}
	inst, err := provider.Create(ctx, nc, class, nil)
	if err != nil {
		s.event(faultOrphan, "launch failed: "+err.Error())
		return
	}
	s.count(faultOrphan, fmt.Sprintf("%s for nodeclaim %s", inst.ProviderID, name))
}

// poolRef is a capacity pool.
type poolRef struct{ instanceType, zone, capacityType string }

// pools are the capacity pools of the Provisioner's instance types.
func (s *soak) pools(ctx context.Context) []poolRef {
	its, err := s.c.instanceTypes(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Listing instance types; no capacity faults")
		return nil
	}
	var pools []poolRef
	for _, it := range its {
		for _, o := range it.Offerings {
			pools = append(pools, poolRef{it.Name, o.Zone, o.CapacityType})
		}
	}
	sort.Slice(pools, func(i, j int) bool {
		a, b := pools[i], pools[j]
		return a.instanceType+a.zone+a.capacityType < b.instanceType+b.zone+b.capacityType
	})
	return pools
}

// runningSpot returns the IDs of the running spot instances, sorted.
func (s *soak) runningSpot() []string {
	var ids []string
	for _, inst := range s.c.emulator.Instances() {
		if inst.CapacityType == emulator.CapacityTypeSpot && inst.State == emulator.StateRunning {
			ids = append(ids, inst.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// killLoop SIGKILLs the scheduler every KillEvery on average (drawn between half and one and
// a half of it), in turn right after CreateFleet launched an instance (before the scheduler
// recorded it on its NodeClaim), right after a NodeClaim was written (before its launch), and
// at a random moment; the supervisor starts it again.
func (s *soak) killLoop(ctx context.Context, checker *checker) {
	kinds := []string{faultKillAtLaunch, faultKillAtClaim, faultKill}
	for i := 0; s.sleep(ctx, s.opts.KillEvery/2, s.opts.KillEvery); i++ {
		kind := kinds[i%len(kinds)]
		var err error
		switch kind {
		case faultKillAtClaim:
			err = s.waitFor(ctx, func() int { return int(checker.claimsAdded.Load()) })
		case faultKillAtLaunch:
			err = s.waitFor(ctx, func() int { return len(s.c.emulator.Instances()) })
		}
		if err != nil {
			return
		}
		p := s.current()
		s.mu.Lock()
		s.killed[p] = true
		s.mu.Unlock()
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		s.count(kind, fmt.Sprintf("pid %d", p.cmd.Process.Pid))
	}
}

// supervise starts the scheduler again 1-3 s after it exits, as the kubelet restarts a
// container, until stopping is set: after a SIGKILL of killLoop, and after an exit of its
// own (it exits when it loses its lease, as a kube-scheduler does: while the apiserver
// restarts, say), which it counts in SchedulerExits.
func (s *soak) supervise(ctx context.Context) {
	for {
		p := s.current()
		<-p.done
		if s.stopping.Load() {
			return
		}
		s.mu.Lock()
		killed := s.killed[p]
		s.mu.Unlock()
		if !killed {
			s.mu.Lock()
			s.report.SchedulerExits++
			s.mu.Unlock()
			s.event("scheduler-exit", fmt.Sprintf("pid %d: %v", p.cmd.Process.Pid, p.cmd.ProcessState))
		}
		s.sleep(context.Background(), time.Second, 2*time.Second)
		if s.stopping.Load() {
			return
		}
		if err := s.startScheduler(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Restarting the scheduler")
			return
		}
	}
}

// waitFor waits until count grows, polling every 10 ms.
func (s *soak) waitFor(ctx context.Context, count func() int) error {
	before := count()
	return wait.PollUntilContextCancel(ctx, 10*time.Millisecond, false, func(context.Context) (bool, error) {
		return count() > before, nil
	})
}

// startScheduler starts the scheduler, logging to scheduler-N.log, and waits for its lease.
func (s *soak) startScheduler(ctx context.Context) error {
	s.mu.Lock()
	n := s.restarts
	s.mu.Unlock()
	// Its metrics (go_goroutines) on a port of its own, readable without credentials.
	p, err := s.c.startScheduler(s.config, fmt.Sprintf("scheduler-%02d.log", n), "--secure-port="+strconv.Itoa(s.metricsPort),
		"--bind-address=127.0.0.1", "--authorization-always-allow-paths=/metrics,/healthz,/readyz,/livez",
		"--authentication-kubeconfig="+s.c.cp.Kubeconfig(), "--authorization-kubeconfig="+s.c.cp.Kubeconfig())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.sched = p
	s.restarts++
	if n > 0 {
		s.report.SchedulerRestarts++
	}
	s.mu.Unlock()
	return nil
}

// current is the scheduler process running now.
func (s *soak) current() *schedulerProcess {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sched
}

// liveInstances are the emulator's instances that are not terminated.
func (s *soak) liveInstances() []emulator.Instance {
	var live []emulator.Instance
	for _, inst := range s.c.emulator.Instances() {
		if inst.State != emulator.StateTerminated {
			live = append(live, inst)
		}
	}
	return live
}

// finish records the figures of the end of the soak.
func (s *soak) finish(ch *checker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report.NodesLaunched = len(s.c.emulator.Instances())
	s.report.PeakRSSMiB = max(s.report.PeakRSSMiB, ch.peakRSS)
	s.report.LastRSSMiB = ch.lastRSS
	s.report.PeakGoroutines, s.report.LastGoroutines = ch.peakGoroutines, ch.lastGoroutines
	s.report.Timeline = append(s.report.Timeline, Event{AtSeconds: time.Since(s.start).Seconds(), Kind: "end"})
}

// freePort returns a TCP port free on loopback now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sleep waits base plus a random part of spread, and reports false if ctx ended first.
func (s *soak) sleep(ctx context.Context, base, spread time.Duration) bool {
	d := base
	if spread > 0 {
		s.mu.Lock()
		d += time.Duration(s.rand.Int64N(int64(spread)))
		s.mu.Unlock()
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// intN draws from [0, n).
func (s *soak) intN(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rand.IntN(n)
}

// event adds to the timeline.
func (s *soak) event(kind, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := 0.0
	if !s.start.IsZero() {
		at = time.Since(s.start).Seconds()
	}
	s.report.Timeline = append(s.report.Timeline, Event{AtSeconds: at, Kind: kind, Detail: detail})
}

// count counts a fault of kind and adds it to the timeline.
func (s *soak) count(kind, detail string) {
	s.mu.Lock()
	s.report.Faults[kind]++
	s.mu.Unlock()
	s.event(kind, detail)
}

// violation counts a violation in counter and says what it was.
func (s *soak) violation(counter *int, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*counter++
	msg := fmt.Sprintf(format, args...)
	s.report.Violations = append(s.report.Violations, fmt.Sprintf("%.0fs: %s", time.Since(s.start).Seconds(), msg))
	klog.Background().Info("Soak invariant violated", "violation", msg)
}
