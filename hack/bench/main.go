// Command bench runs nodewright's end-to-end benchmarks on the local sandbox and writes the
// report of all of them (issue 8); `make bench` drives it.
//
//	bench e2e -out e2e.json        scale-up, scheduler overhead and scheduler RSS runs
//	bench report -plan plan.txt -e2e e2e.json -docs docs
//	                               docs/benchmarks.{json,md,png} from those and from the
//	                               output of the Plan benchmarks of pkg/plan
//	bench soak -duration 30m -seed 1 -out soak.json -markdown docs/reliability.md
//	                               the chaos soak (issue 19): a workload scaled at random
//	                               under EC2 and process faults, its invariants checked
//
// Each e2e measurement starts its own sandbox (bin/ from `make build tools`), so that no run
// sees another's nodes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/hack/bench/workload"
)

// E2E is what `bench e2e` measures.
type E2E struct {
	ScaleUp []*ScaleUp `json:"scaleUp,omitempty"`
	// Waves are the scale-ups of the same pods created in waves (waveCount, -wave-interval
	// apart): each wave's round plans with the pods of the rounds before it still pending.
	Waves []*ScaleUp `json:"waves,omitempty"`
	// Karpenter are the scale-ups of Karpenter's performance suite's cases
	// (workload.MixKarpenterBasic, workload.MixKarpenterHostnameSpread).
	Karpenter     []*ScaleUp       `json:"karpenter,omitempty"`
	Consolidation []*Consolidation `json:"consolidation,omitempty"`
	Overhead      *Overhead        `json:"overhead,omitempty"`
	RSS           *RSS             `json:"rss,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench e2e|report|soak [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "e2e":
		err = e2eCommand(ctx, os.Args[2:])
	case "report":
		err = reportCommand(os.Args[2:])
	case "soak":
		err = soakCommand(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want e2e, report or soak", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// waveCount is how many waves the scale-ups in waves (-wave-runs) create their pods in.
const waveCount = 4

func e2eCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("e2e", flag.ExitOnError)
	out := fs.String("out", "e2e.json", "file to write the results to, as JSON")
	pods := fs.Int("pods", 1000, "pods of the scale-up")
	mix := fs.String("mix", workload.MixDiverse, fmt.Sprintf("the scale-up's pods, one of %v", workload.Mixes))
	karpenterRuns := fs.Int("karpenter-runs", 1, "scale-ups of each of Karpenter's performance cases (karpenter-basic, karpenter-hostname-spread); 0 skips them")
	karpenterPods := fs.Int("karpenter-pods", 1000, "pods of each of Karpenter's performance cases (the suite's are of 1,000)")
	runs := fs.Int("runs", 5, "scale-up runs; 0 skips the scale-up")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long a scale-up may take before it fails")
	overheadNodes := fs.Int("overhead-nodes", 400, "existing nodes of the overhead runs (16 CPUs, 64Gi each)")
	overheadPods := fs.Int("overhead-pods", 5000, "pods of each overhead run (1,000 proved too few on a 2-core machine: a run lasted ~2 s, much of it the scheduler's start, and runs of one kind spread over 390-650 pods/s; 5,000 last ~11 s and spread over 385-505)")
	overheadRuns := fs.Int("overhead-runs", 10, "overhead runs of each kind, with and without Provision, alternating; 0 skips them (5 proved too few on a 2-core machine: one set of 5 measured 19 % and the next 10 measured 2 %)")
	rssNodes := fs.Int("rss-nodes", 1000, "nodes of the RSS run, and pods bound onto them; 0 skips it")
	waves := fs.Int("waves", 1, "create the scale-up's pods in this many waves (1: at once)")
	waveInterval := fs.Duration("wave-interval", 3*time.Second, "time between two waves of pods")
	waveRuns := fs.Int("wave-runs", 3, fmt.Sprintf("scale-ups of the same pods in %d waves, -wave-interval apart; 0 skips them", waveCount))
	consolidationFrom := fs.Int("consolidation-from", 1000, "pods of the consolidation runs before their scale-down")
	consolidationTo := fs.Int("consolidation-to", 300, "pods of the consolidation runs after it")
	consolidationRuns := fs.Int("consolidation-runs", 1, "consolidation runs; 0 skips them")
	consolidateAfter := fs.Duration("consolidate-after", 30*time.Second, "the Provisioner's consolidateAfter in the consolidation runs")
	consolidationQuiet := fs.Duration("consolidation-quiet", 90*time.Second, "how long the fleet must not change for a consolidation run to have converged")
	joinDelay := fs.Duration("join-delay", 0, "how long the scale-up's instances take to register their node once running (0: at once; EC2 takes ~30s)")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := klog.Background()
	ctx = klog.NewContext(ctx, logger)
	var result E2E
	for i := range *runs {
		r, err := runScaleUp(ctx, scaleUpOptions{Pods: *pods, Mix: *mix, Waves: *waves, WaveInterval: *waveInterval, JoinDelay: *joinDelay, Timeout: *timeout})
		if err != nil {
			return fmt.Errorf("scale-up run %d: %w", i, err)
		}
		logger.Info("Scale-up run", "run", i, "result", r)
		result.ScaleUp = append(result.ScaleUp, r)
	}
	for i := range *waveRuns {
		r, err := runScaleUp(ctx, scaleUpOptions{Pods: *pods, Mix: *mix, Waves: waveCount, WaveInterval: *waveInterval, JoinDelay: *joinDelay, Timeout: *timeout})
		if err != nil {
			return fmt.Errorf("scale-up in waves, run %d: %w", i, err)
		}
		logger.Info("Scale-up run in waves", "run", i, "result", r)
		result.Waves = append(result.Waves, r)
	}
	for _, m := range []string{workload.MixKarpenterBasic, workload.MixKarpenterHostnameSpread} {
		for i := range *karpenterRuns {
			r, err := runScaleUp(ctx, scaleUpOptions{Pods: *karpenterPods, Mix: m, Waves: 1, Timeout: *timeout})
			if err != nil {
				return fmt.Errorf("%s run %d: %w", m, i, err)
			}
			logger.Info("Karpenter performance case", "mix", m, "run", i, "result", r)
			result.Karpenter = append(result.Karpenter, r)
		}
	}
	for i := range *consolidationRuns {
		r, err := runConsolidation(ctx, consolidationOptions{From: *consolidationFrom, To: *consolidationTo,
			ConsolidateAfter: *consolidateAfter, Quiet: *consolidationQuiet, Timeout: *timeout})
		if err != nil {
			return fmt.Errorf("consolidation run %d: %w", i, err)
		}
		logger.Info("Consolidation run", "run", i, "result", r)
		result.Consolidation = append(result.Consolidation, r)
	}
	var err error
	if *overheadRuns > 0 {
		if result.Overhead, err = runOverhead(ctx, *overheadNodes, *overheadPods, *overheadRuns); err != nil {
			return fmt.Errorf("overhead: %w", err)
		}
	}
	if *rssNodes > 0 {
		if result.RSS, err = runRSS(ctx, *rssNodes, *rssNodes); err != nil {
			return fmt.Errorf("rss: %w", err)
		}
		logger.Info("RSS run", "result", result.RSS)
	}
	data, err := json.MarshalIndent(result, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(data, '\n'), 0o644)
}
