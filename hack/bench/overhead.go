package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/hack/bench/workload"
)

// Overhead compares the scheduling throughput of bin/nodewright-scheduler onto existing
// nodes, where no node has to be launched, with the Provision plugin in its profile and
// without it, in alternating runs on one cluster.
type Overhead struct {
	Nodes int `json:"nodes"`
	Pods  int `json:"pods"`
	// WithProvision and WithoutProvision are the pods/s of each run, in order.
	WithProvision    []float64 `json:"withProvision"`
	WithoutProvision []float64 `json:"withoutProvision"`
	// MedianWith and MedianWithout are their medians; OverheadPercent is
	// 100 * (1 - MedianWith / MedianWithout).
	MedianWith      float64 `json:"medianWith"`
	MedianWithout   float64 `json:"medianWithout"`
	OverheadPercent float64 `json:"overheadPercent"`
	// CPUWith and CPUWithout are the scheduler's CPU time per pod bound (ms, user + system)
	// from the first binding to the last of each run, in order; CPUOverheadPercent is
	// 100 * (median CPUWith / median CPUWithout - 1). The process's CPU time varies far less
	// from run to run than the throughput of two cores shared with the apiserver, etcd and
	// kwok, so it shows the plugin's cost where the throughput's spread hides it.
	CPUWith            []float64 `json:"cpuMillisPerPodWith,omitempty"`
	CPUWithout         []float64 `json:"cpuMillisPerPodWithout,omitempty"`
	CPUOverheadPercent float64   `json:"cpuOverheadPercent,omitempty"`
}

// runOverhead creates nodes kwok nodes of 16 CPUs and 64Gi, then, runs times each, alternating
// which goes first, schedules pods generic pods with and without Provision. Each run creates
// its pods first and then starts the scheduler; its throughput is (pods - 1) over the time
// from the first binding to the last, so that start-up is not counted.
func runOverhead(ctx context.Context, nodes, pods, runs int) (_ *Overhead, err error) {
	c, err := startCluster(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer func() { c.stop(err == nil) }()
	if err := c.createNodes(ctx, "existing", nodes, "16", "64Gi"); err != nil {
		return nil, err
	}
	configs := map[bool]string{}
	for _, with := range []bool{true, false} {
		if configs[with], err = c.schedulerConfig(fmt.Sprintf("scheduler-config-provision-%t.yaml", with), with, true); err != nil {
			return nil, err
		}
	}
	o := &Overhead{Nodes: nodes, Pods: pods}
	for i := range 2 * runs {
		// with, without, without, with, ...: neither goes first more often than the other.
		with := i%4 == 0 || i%4 == 3
		pps, cpu, err := c.throughputRun(ctx, fmt.Sprintf("overhead-%d", i), configs[with], pods)
		if err != nil {
			return nil, err
		}
		klog.FromContext(ctx).Info("Overhead run", "run", i, "provision", with, "podsPerSecond", pps, "cpuMillisPerPod", cpu)
		if with {
			o.WithProvision = append(o.WithProvision, pps)
			o.CPUWith = append(o.CPUWith, cpu)
		} else {
			o.WithoutProvision = append(o.WithoutProvision, pps)
			o.CPUWithout = append(o.CPUWithout, cpu)
		}
	}
	o.MedianWith, o.MedianWithout = median(o.WithProvision), median(o.WithoutProvision)
	o.OverheadPercent = 100 * (1 - o.MedianWith/o.MedianWithout)
	o.CPUOverheadPercent = 100 * (median(o.CPUWith)/median(o.CPUWithout) - 1)
	return o, nil
}

// throughputRun schedules n generic pods in namespace ns with the scheduler configured by
// config, returns the pods per second and the scheduler's CPU milliseconds per pod bound
// while they bound, and deletes the pods.
func (c *cluster) throughputRun(ctx context.Context, ns, config string, n int) (pps, cpuPerPod float64, _ error) {
	if err := c.createNamespace(ctx, ns); err != nil {
		return 0, 0, err
	}
	w, err := c.watchPods(ctx, ns)
	if err != nil {
		return 0, 0, err
	}
	defer w.close()
	if err := c.createPods(ctx, workload.Pods(n, workload.Seed, workload.PodOptions{Namespace: ns, SchedulerName: schedulerName}, workload.Generic)); err != nil {
		return 0, 0, err
	}
	s, err := c.startScheduler(config, ns+"-scheduler.log")
	if err != nil {
		return 0, 0, err
	}
	// The CPU time from the first poll that sees a pod bound to the poll that sees them all:
	// the scheduler's start (and the plugin's: prices, instance types) is not counted.
	var cpuFirst, cpuLast float64
	boundFirst := -1
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		bound := countBound(w.snapshot())
		if bound == 0 {
			return false, nil
		}
		_, cpu, err := s.usage()
		if err != nil {
			return false, err
		}
		if boundFirst < 0 {
			boundFirst, cpuFirst = bound, cpu
		}
		cpuLast = cpu
		return bound == n, nil
	})
	s.stop()
	if err != nil {
		return 0, 0, fmt.Errorf("waiting for %d pods bound in %s: %w", n, ns, err)
	}
	if n > boundFirst {
		cpuPerPod = 1000 * (cpuLast - cpuFirst) / float64(n-boundFirst)
	}
	var first, last time.Time
	for _, t := range w.snapshot() {
		if first.IsZero() || t.bound.Before(first) {
			first = t.bound
		}
		if t.bound.After(last) {
			last = t.bound
		}
	}
	// The pods go, so that every run starts on empty nodes: at once (kwok would finish a
	// graceful deletion with a few workers, ~100 pods/s), then their namespace.
	if err := c.client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		return 0, 0, err
	}
	if err := c.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return 0, 0, err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("waiting for the pods of %s to go: %w", ns, err)
	}
	return float64(n-1) / last.Sub(first).Seconds(), cpuPerPod, nil
}

// RSS is the scheduler's memory with many nodes in the cluster.
type RSS struct {
	Nodes int `json:"nodes"`
	Pods  int `json:"pods"`
	// PeakRSSMiB is the scheduler process's VmHWM once every pod is bound.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
}

// runRSS creates nodes small kwok nodes (4 CPUs, 16Gi), starts the scheduler with the
// shipped configuration, has it bind pods generic pods onto them and reads its peak RSS.
func runRSS(ctx context.Context, nodes, pods int) (_ *RSS, err error) {
	c, err := startCluster(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer func() { c.stop(err == nil) }()
	if err := c.createNodes(ctx, "rss", nodes, "4", "16Gi"); err != nil {
		return nil, err
	}
	config, err := c.schedulerConfig("scheduler-config.yaml", true, false)
	if err != nil {
		return nil, err
	}
	s, err := c.startScheduler(config, "scheduler.log")
	if err != nil {
		return nil, err
	}
	defer s.stop()
	const ns = "rss"
	if err := c.createNamespace(ctx, ns); err != nil {
		return nil, err
	}
	w, err := c.watchPods(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if err := c.createPods(ctx, workload.Pods(pods, workload.Seed, workload.PodOptions{Namespace: ns, SchedulerName: schedulerName}, workload.Generic)); err != nil {
		return nil, err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		return countBound(w.snapshot()) == pods, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %d pods bound: %w", pods, err)
	}
	rss, _, err := s.usage()
	if err != nil {
		return nil, err
	}
	return &RSS{Nodes: nodes, Pods: pods, PeakRSSMiB: rss}, nil
}

// createNodes creates n kwok nodes named prefix-<i> of the given size and waits until all are
// Ready and untainted, so that no pod is ever unschedulable for want of a ready node.
func (c *cluster) createNodes(ctx context.Context, prefix string, n int, cpu, memory string) error {
	for i := range n {
		name := fmt.Sprintf("%s-%04d", prefix, i)
		node := st.MakeNode().Name(name).Label(v1.LabelHostname, name).
			Label(v1.LabelTopologyZone, emulatorZones[i%len(emulatorZones)]).
			Capacity(map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: memory, v1.ResourcePods: "110"}).Obj()
		if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, node := range list.Items {
			if len(node.Spec.Taints) == 0 && nodeutil.IsNodeReady(&node) {
				ready++
			}
		}
		return ready >= n, nil
	})
}

// emulatorZones are zones the kwok nodes are spread over, as a real cluster's would be.
var emulatorZones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

func countBound(times map[string]podTimes) int {
	n := 0
	for _, t := range times {
		if !t.bound.IsZero() {
			n++
		}
	}
	return n
}

// median returns the median of values; 0 for none.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
