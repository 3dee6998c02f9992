package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/catalog"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
)

// ScaleUp is one end-to-end scale-up run: pods of the diverse mix created at once (or in
// waves) on an empty sandbox, provisioned for by bin/nodewright-scheduler with the shipped
// configuration.
type ScaleUp struct {
	Pods int `json:"pods"`
	// Mix is the pods' mix (workload.Mixes) when it is not the diverse mix.
	Mix string `json:"mix,omitempty"`
	// Waves, WaveIntervalSeconds and JoinDelaySeconds are the run's scaleUpOptions, when
	// they are not the defaults (at once, no join delay).
	Waves               int     `json:"waves,omitempty"`
	WaveIntervalSeconds float64 `json:"waveIntervalSeconds,omitempty"`
	JoinDelaySeconds    float64 `json:"joinDelaySeconds,omitempty"`
	// NotRunning counts the pods that did not run within the timeout; when there are any,
	// AllRunningSeconds is the timeout and the percentiles are over the pods that were bound.
	NotRunning int `json:"notRunning,omitempty"`
	// Stranded counts the times the scheduler reported a pod stranded ("Pod stranded" in its
	// log): released from the claim whose node rejected it, once its grace ended. A stranded
	// pod runs, a round and a launch later: every strand is a plan the cluster broke.
	Stranded int `json:"stranded"`
	// CreatingSeconds is the time from the first pod's creation to the last one's, as the
	// watch saw them: no round can plan the last pod sooner.
	CreatingSeconds float64 `json:"creatingSeconds,omitempty"`
	// AllRunningSeconds is the time from the first pod's creation to the last one Running, as
	// the watch saw them.
	AllRunningSeconds float64 `json:"allRunningSeconds"`
	// LastRunningSeconds is the time from the first pod's creation to the last one that ran;
	// AllRunningSeconds when every pod ran.
	LastRunningSeconds float64 `json:"lastRunningSeconds"`
	// BoundP50Seconds and BoundP99Seconds are percentiles over the pods of the time from
	// creation to binding (the decision latency, node launch included).
	BoundP50Seconds float64 `json:"boundP50Seconds"`
	BoundP99Seconds float64 `json:"boundP99Seconds"`
	// CreatedToFleetSeconds is the time from the first pod's creation (the watch's receipt)
	// to the emulator's receipt of the first CreateFleet call: no pod of the run fits a node
	// that exists, so each is unschedulable from its creation.
	CreatedToFleetSeconds float64 `json:"createdToFleetSeconds"`
	// UnschedulableToFleetSeconds is the time from the first pod reported unschedulable to
	// the emulator's receipt of the first CreateFleet call; negative when the first status
	// came after it. Since the Provision plugin holds such pods until their round has ended
	// (PreEnqueue), the scheduler reports none before: CreatedToFleetSeconds is the latency.
	UnschedulableToFleetSeconds float64 `json:"unschedulableToFleetSeconds"`
	// Nodes, FleetUSDPerHour: the nodes launched and what their offerings cost per hour (the
	// catalog's on-demand price, or the emulator's spot price of the type in the zone).
	Nodes           int     `json:"nodes"`
	FleetUSDPerHour float64 `json:"fleetUSDPerHour"`
	// CPUUtilization and MemoryUtilization are the pods' requests over the allocatable of the
	// launched nodes.
	CPUUtilization    float64 `json:"cpuUtilization"`
	MemoryUtilization float64 `json:"memoryUtilization"`
	// SchedulerPeakRSSMiB and SchedulerCPUSeconds are the scheduler process's VmHWM and its
	// user+system CPU time at the end of the run, start-up included.
	SchedulerPeakRSSMiB float64 `json:"schedulerPeakRSSMiB"`
	SchedulerCPUSeconds float64 `json:"schedulerCPUSeconds"`
}

// scaleUpOptions are how a scale-up creates its pods and how fast its nodes join.
type scaleUpOptions struct {
	// Pods of Mix (workload.Mixes) are created in Waves (1: at once), WaveInterval apart.
	Pods         int
	Mix          string
	Waves        int
	WaveInterval time.Duration
	// JoinDelay is how long an instance takes to register its node once running.
	JoinDelay time.Duration
	// Timeout is how long the run may take before it fails.
	Timeout time.Duration
}

// runScaleUp starts a cluster and the scheduler, creates the diverse pods of opts and
// measures until every pod runs or opts.Timeout passes.
func runScaleUp(ctx context.Context, opts scaleUpOptions) (res *ScaleUp, err error) {
	logger := klog.FromContext(ctx)
	n, timeout := opts.Pods, opts.Timeout
	waves := max(opts.Waves, 1)
	c, err := startCluster(ctx, opts.JoinDelay)
	if err != nil {
		return nil, err
	}
	// A failed run, or one with pods that did not run, keeps the cluster's directory.
	defer func() { c.stop(err == nil && res.NotRunning == 0) }()
	const ns = "scaleup"
	s, w, err := c.startShipped(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	defer w.close()
	opts.Mix = cmp.Or(opts.Mix, workload.MixDiverse)
	pods, err := workload.MixPods(opts.Mix, n, workload.PodOptions{Namespace: ns, SchedulerName: schedulerName})
	if err != nil {
		return nil, err
	}
	logger.Info("Creating pods", "pods", n, "mix", opts.Mix, "waves", waves, "dir", c.dir)
	for i := range waves {
		if i > 0 {
			time.Sleep(opts.WaveInterval)
		}
		if err := c.createPods(ctx, pods[i*n/waves:(i+1)*n/waves]); err != nil {
			return nil, err
		}
	}
	// A pod that never runs (a stranded pod is a bug) ends the wait at timeout: the run is
	// then reported with the pods that did run, not dropped.
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		running := 0
		for _, t := range w.snapshot() {
			if !t.running.IsZero() {
				running++
			}
		}
		logger.V(2).Info("Waiting for pods", "running", running, "pods", n)
		return running == n, nil
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r := &ScaleUp{Pods: n, JoinDelaySeconds: opts.JoinDelay.Seconds()}
	if opts.Mix != workload.MixDiverse {
		r.Mix = opts.Mix
	}
	if waves > 1 {
		r.Waves, r.WaveIntervalSeconds = waves, opts.WaveInterval.Seconds()
	}
	if r.SchedulerPeakRSSMiB, r.SchedulerCPUSeconds, err = s.usage(); err != nil {
		return nil, err
	}
	times := w.snapshot()
	firstCreated, lastCreated, firstUnschedulable, lastRunning := time.Time{}, time.Time{}, time.Time{}, time.Time{}
	var decisions []float64
	for _, t := range times {
		if firstCreated.IsZero() || t.created.Before(firstCreated) {
			firstCreated = t.created
		}
		if t.created.After(lastCreated) {
			lastCreated = t.created
		}
		if t.running.IsZero() {
			r.NotRunning++
		}
		if !t.unschedulable.IsZero() && (firstUnschedulable.IsZero() || t.unschedulable.Before(firstUnschedulable)) {
			firstUnschedulable = t.unschedulable
		}
		if t.running.After(lastRunning) {
			lastRunning = t.running
		}
		if !t.bound.IsZero() {
			decisions = append(decisions, t.bound.Sub(t.created).Seconds())
		}
	}
	r.CreatingSeconds = lastCreated.Sub(firstCreated).Seconds()
	r.AllRunningSeconds = lastRunning.Sub(firstCreated).Seconds()
	r.LastRunningSeconds = r.AllRunningSeconds
	if r.NotRunning > 0 {
		logger.Info("Pods not running at the timeout; see the scheduler's log", "pods", r.NotRunning, "dir", c.dir)
		r.AllRunningSeconds = timeout.Seconds()
	}
	r.BoundP50Seconds, r.BoundP99Seconds = percentile(decisions, 50), percentile(decisions, 99)
	if fleets := c.emulator.CallsOf("CreateFleet"); len(fleets) > 0 {
		r.CreatedToFleetSeconds = fleets[0].Time.Sub(firstCreated).Seconds()
		if !firstUnschedulable.IsZero() {
			r.UnschedulableToFleetSeconds = fleets[0].Time.Sub(firstUnschedulable).Seconds()
		}
	}
	if r.Stranded, err = countInFile(c.dir+"/scheduler.log", "Pod stranded"); err != nil {
		return nil, err
	}
	if err := c.measureFleet(ctx, ns, r); err != nil {
		return nil, err
	}
	return r, nil
}

// measureFleet fills in the nodes, their price and their utilisation by the pods of ns.
func (c *cluster) measureFleet(ctx context.Context, ns string, r *ScaleUp) error {
	nodes, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelProvisionerName})
	if err != nil {
		return err
	}
	byName := map[string]bool{}
	var allocCPU, allocMem float64
	for _, n := range nodes.Items {
		byName[n.Name] = true
		allocCPU += float64(n.Status.Allocatable.Cpu().MilliValue())
		allocMem += float64(n.Status.Allocatable.Memory().Value())
	}
	r.Nodes = len(nodes.Items)
	for _, inst := range c.emulator.Instances() {
		if inst.State == emulator.StateTerminated || inst.State == emulator.StateShuttingDown {
			continue
		}
		price, err := instancePrice(c.emulator, inst)
		if err != nil {
			return err
		}
		r.FleetUSDPerHour += price
	}
	pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var reqCPU, reqMem float64
	for _, p := range pods.Items {
		if !byName[p.Spec.NodeName] {
			continue
		}
		for _, ctr := range p.Spec.Containers {
			reqCPU += float64(ctr.Resources.Requests.Cpu().MilliValue())
			reqMem += float64(ctr.Resources.Requests.Memory().Value())
		}
	}
	if allocCPU > 0 && allocMem > 0 {
		r.CPUUtilization, r.MemoryUtilization = reqCPU/allocCPU, reqMem/allocMem
	}
	return nil
}

// instancePrice is what inst costs per hour: the emulator's spot price of its type in its
// zone, or the catalog's on-demand price.
func instancePrice(e *emulator.Emulator, inst emulator.Instance) (float64, error) {
	if inst.CapacityType == emulator.CapacityTypeSpot {
		price, _, ok := e.SpotPrice(inst.InstanceType, inst.Zone)
		if !ok {
			return 0, fmt.Errorf("no spot price for %s in %s", inst.InstanceType, inst.Zone)
		}
		return price, nil
	}
	it, ok := catalog.Get(inst.InstanceType)
	if !ok {
		return 0, fmt.Errorf("instance type %s is not in the catalog", inst.InstanceType)
	}
	return it.OnDemandPriceUSD, nil
}

// percentile returns the p-th percentile of values by the nearest-rank method; 0 for none.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
