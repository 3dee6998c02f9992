package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodewright/nodewright/hack/bench/workload"
)

// Report is docs/benchmarks.json.
type Report struct {
	Machine Machine `json:"machine"`
	// Note qualifies the whole run, e.g. that the machine was shared.
	Note string `json:"note,omitempty"`
	// Notes are the markdown notes on the figures.
	Notes string `json:"notes,omitempty"`
	// Commands are the commands that produced each part, by part.
	Commands map[string]string `json:"commands"`
	Plan     []PlanResult      `json:"plan"`
	E2E      *E2E              `json:"e2e,omitempty"`
	// ScaleUpMedian is, field by field, the median of the scale-up runs.
	ScaleUpMedian *ScaleUp `json:"scaleUpMedian,omitempty"`
	Targets       []Target `json:"targets"`
}

// Machine is what the benchmarks ran on.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryGiB int    `json:"memoryGiB"`
	GoVersion string `json:"goVersion"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
}

// PlanResult is one Plan sub-benchmark: the medians over its -count runs.
type PlanResult struct {
	Catalog string `json:"catalog"`
	Mix     string `json:"mix"`
	Pods    int    `json:"pods"`
	Runs    int    `json:"runs"`
	// Seconds is the median time of one Plan; the rest are medians of the custom metrics.
	Seconds       float64 `json:"seconds"`
	PodsPerSecond float64 `json:"podsPerSecond"`
	Nodes         float64 `json:"nodes"`
	USDPerHour    float64 `json:"usdPerHour"`
	CostRatio     float64 `json:"costOverLowerBound"`
	// LPRatio is the fleet's price over LP*, LPNodes LP*'s fractional node count (see
	// workload.LPBound); 0 in reports from before they were measured.
	LPRatio float64 `json:"costOverLP,omitempty"`
	LPNodes float64 `json:"lpNodes,omitempty"`
	// CBRatio is the fleet's cost over the constrained bound (workload.ConstrainedBound); 0
	// in reports from before it was measured.
	CBRatio   float64 `json:"costOverConstrainedBound,omitempty"`
	Unplanned float64 `json:"unplanned"`
}

// Target is one of the targets of issues 8, 15 and 17 and whether the run met it.
type Target struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	// Met is "yes", "no" or "not measured".
	Met string `json:"met"`
}

func reportCommand(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	planFile := fs.String("plan", "", "output of go test -bench BenchmarkPlan (required)")
	e2eFile := fs.String("e2e", "", "output of bench e2e; empty for none")
	docs := fs.String("docs", "docs", "directory to write benchmarks.{json,md,png} to")
	planCmd := fs.String("plan-command", "", "the command that produced -plan, for the report")
	e2eCmd := fs.String("e2e-command", "", "the command that produced -e2e, for the report")
	note := fs.String("note", "", "a note on the run, printed above the figures")
	notesFile := fs.String("notes", "", "a markdown file of notes on the figures (why a target was missed), printed after them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *planFile == "" {
		return fmt.Errorf("-plan is required")
	}
	r := &Report{Machine: machine(), Note: *note, Commands: map[string]string{"plan": *planCmd}}
	var err error
	if *notesFile != "" {
		data, err := os.ReadFile(*notesFile)
		if err != nil {
			return err
		}
		r.Notes = string(data)
	}
	if r.Plan, err = parsePlan(*planFile); err != nil {
		return err
	}
	if *e2eFile != "" {
		r.Commands["e2e"] = *e2eCmd
		data, err := os.ReadFile(*e2eFile)
		if err != nil {
			return err
		}
		r.E2E = &E2E{}
		if err := json.Unmarshal(data, r.E2E); err != nil {
			return fmt.Errorf("reading %s: %w", *e2eFile, err)
		}
		r.ScaleUpMedian = scaleUpMedian(r.E2E.ScaleUp)
	}
	r.Targets = targets(r)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*docs, "benchmarks.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*docs, "benchmarks.md"), []byte(markdown(r)), 0o644); err != nil {
		return err
	}
	return chart(r.Plan, filepath.Join(*docs, "benchmarks.png"))
}

// machine describes this machine and the checkout.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = (kb + 1<<19) >> 20
		}
	}
	m.Commit = "unknown"
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
			m.Commit += " (with local changes)"
		}
	}
	return m
}

// benchLine is a line of go test -bench output of BenchmarkPlan, e.g.
// "BenchmarkPlan/catalog=real/diverse-100-2  1  1900499935 ns/op  5.017 cost/lb ...": the
// catalog, the mix and the pod count, then GOMAXPROCS.
var benchLine = regexp.MustCompile(`^BenchmarkPlan/catalog=(\w+)/(\w+)-(\d+)(?:-\d+)?\s+\d+\s+(.*)$`)

// parsePlan reads go test -bench output and returns one result per sub-benchmark, the medians
// of its runs, by catalog, mix and pod count.
func parsePlan(path string) ([]PlanResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type key struct {
		catalog, mix string
		pods         int
	}
	var order []key
	metrics := map[key]map[string][]float64{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		m := benchLine.FindStringSubmatch(scanner.Text())
		if m == nil {
			continue
		}
		pods, _ := strconv.Atoi(m[3])
		k := key{m[1], m[2], pods}
		if metrics[k] == nil {
			metrics[k] = map[string][]float64{}
			order = append(order, k)
		}
		fields := strings.Fields(m[4])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: parsing %q: %w", path, scanner.Text(), err)
			}
			metrics[k][fields[i+1]] = append(metrics[k][fields[i+1]], v)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: no BenchmarkPlan results", path)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.catalog != b.catalog {
			return a.catalog < b.catalog
		}
		if a.mix != b.mix {
			return a.mix < b.mix
		}
		return a.pods < b.pods
	})
	out := make([]PlanResult, 0, len(order))
	for _, k := range order {
		m := metrics[k]
		out = append(out, PlanResult{
			Catalog: k.catalog, Mix: k.mix, Pods: k.pods, Runs: len(m["ns/op"]),
			Seconds: median(m["ns/op"]) / 1e9, PodsPerSecond: median(m["pods/s"]), Nodes: median(m["nodes"]),
			USDPerHour: median(m["usd/h"]), CostRatio: median(m["cost/lb"]), Unplanned: median(m["unplanned"]),
			LPRatio: median(m["cost/lp"]), LPNodes: median(m["lp-nodes"]), CBRatio: median(m["cost/cb"]),
		})
	}
	return out, nil
}

// scaleUpMedian returns, field by field, the medians of runs; nil for none.
func scaleUpMedian(runs []*ScaleUp) *ScaleUp {
	if len(runs) == 0 {
		return nil
	}
	of := func(get func(*ScaleUp) float64) float64 {
		var v []float64
		for _, r := range runs {
			v = append(v, get(r))
		}
		return median(v)
	}
	return &ScaleUp{
		Pods:                        runs[0].Pods,
		Mix:                         runs[0].Mix,
		NotRunning:                  int(of(func(r *ScaleUp) float64 { return float64(r.NotRunning) })),
		Stranded:                    int(of(func(r *ScaleUp) float64 { return float64(r.Stranded) })),
		CreatingSeconds:             of(func(r *ScaleUp) float64 { return r.CreatingSeconds }),
		AllRunningSeconds:           of(func(r *ScaleUp) float64 { return r.AllRunningSeconds }),
		LastRunningSeconds:          of(func(r *ScaleUp) float64 { return r.LastRunningSeconds }),
		BoundP50Seconds:             of(func(r *ScaleUp) float64 { return r.BoundP50Seconds }),
		BoundP99Seconds:             of(func(r *ScaleUp) float64 { return r.BoundP99Seconds }),
		UnschedulableToFleetSeconds: of(func(r *ScaleUp) float64 { return r.UnschedulableToFleetSeconds }),
		CreatedToFleetSeconds:       of(func(r *ScaleUp) float64 { return r.CreatedToFleetSeconds }),
		Nodes:                       int(of(func(r *ScaleUp) float64 { return float64(r.Nodes) })),
		FleetUSDPerHour:             of(func(r *ScaleUp) float64 { return r.FleetUSDPerHour }),
		CPUUtilization:              of(func(r *ScaleUp) float64 { return r.CPUUtilization }),
		MemoryUtilization:           of(func(r *ScaleUp) float64 { return r.MemoryUtilization }),
		SchedulerPeakRSSMiB:         of(func(r *ScaleUp) float64 { return r.SchedulerPeakRSSMiB }),
		SchedulerCPUSeconds:         of(func(r *ScaleUp) float64 { return r.SchedulerCPUSeconds }),
	}
}

// targets compares the report with issue 8's targets.
func targets(r *Report) []Target {
	find := func(catalog, mix string, pods int) *PlanResult {
		for i := range r.Plan {
			if p := &r.Plan[i]; p.Catalog == catalog && p.Mix == mix && p.Pods == pods {
				return p
			}
		}
		return nil
	}
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	missing := func(name, target string) Target {
		return Target{Name: name, Target: target, Measured: "-", Met: "not measured"}
	}
	var out []Target
	const throughput, throughputTarget = "Plan throughput, synthetic catalog, 5,000 diverse pods", ">= 2,000 pods/s"
	if p := find("synthetic", "diverse", 5000); p != nil {
		out = append(out, Target{throughput, throughputTarget, fmt.Sprintf("%.0f pods/s", p.PodsPerSecond), verdict(p.PodsPerSecond >= 2000)})
	} else {
		out = append(out, missing(throughput, throughputTarget))
	}
	const plan10k, plan10kTarget = "Plan time, synthetic catalog, 10,000 diverse pods", "<= 10 s"
	if p := find("synthetic", "diverse", 10000); p != nil {
		out = append(out, Target{plan10k, plan10kTarget, fmt.Sprintf("%.1f s", p.Seconds), verdict(p.Seconds <= 10)})
	} else {
		out = append(out, missing(plan10k, plan10kTarget))
	}
	out = append(out, costTargets(r, find, verdict, missing)...)
	const running, latency, overhead, rss = "End to end: all pods Running", "End to end: p99 creation -> bound", "Provision plugin overhead", "Scheduler peak RSS"
	// A figure measured on fewer pods or nodes than the target names says so instead of a verdict.
	atScale := func(ok bool, n int) string {
		if n < 1000 {
			return fmt.Sprintf("not measured (%d, not 1,000)", n)
		}
		return verdict(ok)
	}
	if m := r.ScaleUpMedian; m != nil {
		measured := fmt.Sprintf("%.1f s", m.AllRunningSeconds)
		if m.NotRunning > 0 {
			measured = fmt.Sprintf("%d pods never ran (timeout %.0f s)", m.NotRunning, m.AllRunningSeconds)
			if m.LastRunningSeconds > 0 {
				measured += fmt.Sprintf("; the others in %.1f s", m.LastRunningSeconds)
			}
		}
		out = append(out,
			Target{running, "1,000 pods <= 20 s", measured, atScale(m.NotRunning == 0 && m.AllRunningSeconds <= 20, m.Pods)},
			Target{latency, "< 2 s", fmt.Sprintf("%.2f s", m.BoundP99Seconds), atScale(m.BoundP99Seconds < 2, m.Pods)})
	} else {
		out = append(out, missing(running, "1,000 pods <= 20 s"), missing(latency, "< 2 s"))
	}
	out = append(out, scaleUpTargets(r, verdict, missing)...)
	if r.E2E != nil && r.E2E.Overhead != nil {
		o := r.E2E.Overhead
		out = append(out, Target{overhead, "< 5 %", fmt.Sprintf("%.1f %%", o.OverheadPercent), verdict(o.OverheadPercent < 5)})
	} else {
		out = append(out, missing(overhead, "< 5 %"))
	}
	if r.E2E != nil && r.E2E.RSS != nil {
		s := r.E2E.RSS
		out = append(out, Target{rss, "< 300 MiB at 1,000 nodes", fmt.Sprintf("%.0f MiB at %d nodes", s.PeakRSSMiB, s.Nodes), atScale(s.PeakRSSMiB < 300, s.Nodes)})
	} else {
		out = append(out, missing(rss, "< 300 MiB at 1,000 nodes"))
	}
	return out
}

// karpenterLimits are what Karpenter's performance suite requires of a case's scale-up.
type karpenterLimits struct {
	seconds             float64
	nodes               int // 0: no limit
	cpuUtil, memoryUtil float64
}

// karpenterCases are the limits of the cases of Karpenter's suite the bench runs, by mix.
var karpenterCases = map[string]karpenterLimits{
	workload.MixKarpenterBasic:          {seconds: 120, cpuUtil: 0.53, memoryUtil: 0.65},
	workload.MixKarpenterHostnameSpread: {seconds: 300, nodes: 650, cpuUtil: 0.55, memoryUtil: 0.75},
}

// meets reports whether run meets Karpenter's limits for its case, and within seconds when
// it is not 0 (issue 17's own, stricter, limit).
func (l karpenterLimits) meets(run *ScaleUp, seconds float64) bool {
	if seconds == 0 {
		seconds = l.seconds
	}
	return run.NotRunning == 0 && run.AllRunningSeconds <= seconds && (l.nodes == 0 || run.Nodes < l.nodes) &&
		run.CPUUtilization > l.cpuUtil && run.MemoryUtilization > l.memoryUtil
}

// scaleUpTargets are issue 17's targets on the end-to-end scale-ups: the first CreateFleet
// within 2 s of the first pod's creation (each is unschedulable from then on) in every run, the scheduler's peak RSS in the
// scale-up in every run, and Karpenter's basic case within 20 s at its utilisation.
func scaleUpTargets(r *Report, verdict func(bool) string, missing func(name, target string) Target) []Target {
	const fleet, fleetTarget = "End to end: 1st pod created (unschedulable) -> 1st CreateFleet", "<= 2 s in every run"
	const rss, rssTarget = "Scheduler peak RSS in the 1,000-pod scale-up", "<= 260 MiB in every run"
	const basic, basicTarget = "Karpenter's basic case: all Running, CPU and memory utilisation", "<= 20 s, > 53 %, > 65 %"
	var out []Target
	if r.E2E == nil || len(r.E2E.ScaleUp) == 0 {
		out = append(out, missing(fleet, fleetTarget), missing(rss, rssTarget))
	} else {
		worstFleet, worstRSS := 0.0, 0.0
		for _, run := range r.E2E.ScaleUp {
			worstFleet, worstRSS = max(worstFleet, run.CreatedToFleetSeconds), max(worstRSS, run.SchedulerPeakRSSMiB)
		}
		n := len(r.E2E.ScaleUp)
		out = append(out,
			Target{fleet, fleetTarget, fmt.Sprintf("%.2f s at most over %d runs", worstFleet, n), verdict(worstFleet <= 2)},
			Target{rss, rssTarget, fmt.Sprintf("%.0f MiB at most over %d runs of %d pods", worstRSS, n, r.E2E.ScaleUp[0].Pods),
				verdict(worstRSS <= 260 && r.E2E.ScaleUp[0].Pods >= 1000)})
	}
	var runs []*ScaleUp
	if r.E2E != nil {
		for _, run := range r.E2E.Karpenter {
			if run.Mix == workload.MixKarpenterBasic {
				runs = append(runs, run)
			}
		}
	}
	if len(runs) == 0 {
		return append(out, missing(basic, basicTarget))
	}
	m := scaleUpMedian(runs)
	met := m.Pods >= 1000
	for _, run := range runs {
		met = met && karpenterCases[workload.MixKarpenterBasic].meets(run, 20)
	}
	return append(out, Target{basic, basicTarget, fmt.Sprintf("%.1f s, %.0f %%, %.0f %% (median of %d run(s) of %d pods)",
		m.AllRunningSeconds, 100*m.CPUUtilization, 100*m.MemoryUtilization, len(runs), m.Pods), verdict(met)})
}

// costTargets are issue 15's targets on Plan's fleets: find returns the result of a run,
// verdict and missing make a Target's verdict.
func costTargets(r *Report, find func(catalog, mix string, pods int) *PlanResult, verdict func(bool) string,
	missing func(name, target string) Target) []Target {
	var out []Target
	var generic []*PlanResult
	for i := range r.Plan {
		if r.Plan[i].Mix == "generic" {
			generic = append(generic, &r.Plan[i])
		}
	}
	sort.Slice(generic, func(i, j int) bool { return generic[i].Catalog < generic[j].Catalog })
	for _, p := range generic {
		limit := 1.05 // issue 15: Karpenter's catalog, no node cost
		if p.Catalog == "real" {
			limit = 1.10
		}
		out = append(out, Target{fmt.Sprintf("Fleet cost, %s catalog, %d generic pods", p.Catalog, p.Pods), fmt.Sprintf("<= %.2f x LP*", limit),
			fmt.Sprintf("%.3f x", p.LPRatio), verdict(p.LPRatio > 0 && p.LPRatio <= limit)})
		if p.Catalog == "real" {
			out = append(out, Target{fmt.Sprintf("Nodes, real catalog, %d generic pods", p.Pods), "<= 1.5 x LP*'s nodes",
				fmt.Sprintf("%.0f (LP* %.1f)", p.Nodes, p.LPNodes), verdict(p.Nodes <= 1.5*p.LPNodes)})
		}
	}
	for _, pods := range []int{1000, 5000} {
		name := fmt.Sprintf("Fleet cost, real catalog, %d diverse pods", pods)
		if p := find("real", "diverse", pods); p != nil {
			out = append(out, Target{name, "<= 1.30 x constrained bound", fmt.Sprintf("%.3f x", p.CBRatio), verdict(p.CBRatio > 0 && p.CBRatio <= 1.30)})
		} else {
			out = append(out, missing(name, "<= 1.30 x constrained bound"))
		}
	}
	// The synthetic diverse fleets of the commit issue 15 started from (docs/benchmarks.md at f35680a).
	for _, c := range []struct {
		pods int
		usd  float64
	}{{1000, 245.7}, {5000, 1339}} {
		name := fmt.Sprintf("Fleet cost, synthetic catalog, %d diverse pods", c.pods)
		target := fmt.Sprintf("<= %.1f USD/h", c.usd)
		if p := find("synthetic", "diverse", c.pods); p != nil {
			out = append(out, Target{name, target, fmt.Sprintf("%.1f USD/h", p.USDPerHour), verdict(p.USDPerHour <= c.usd)})
		} else {
			out = append(out, missing(name, target))
		}
	}
	unplanned := 0.0
	for _, p := range r.Plan {
		unplanned = max(unplanned, p.Unplanned)
	}
	out = append(out, Target{"Pods unplanned in one round, every mix and size", "0", fmt.Sprintf("%.0f at most", unplanned), verdict(unplanned == 0)})
	return out
}
