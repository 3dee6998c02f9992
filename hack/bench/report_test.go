package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/manifests"
)

func TestParsePlan(t *testing.T) {
	out := `goos: linux
BenchmarkPlan/catalog=real/diverse-100-2  1  2000000000 ns/op  5.0 cost/lb  20.00 nodes  50.00 pods/s  0 unplanned  1.5 usd/h
--- BENCH: BenchmarkPlan/catalog=real/diverse-100-2
    bench_test.go:99: nodes by type: map[]
BenchmarkPlan/catalog=real/diverse-100-2  1  1000000000 ns/op  5.0 cost/lb  20.00 nodes  100.0 pods/s  0 unplanned  1.5 usd/h
BenchmarkPlan/catalog=real/diverse-100-2  1  4000000000 ns/op  5.0 cost/lb  22.00 nodes  25.00 pods/s  1 unplanned  1.7 usd/h
BenchmarkPlan/catalog=synthetic/generic-1000  1  500000000 ns/op  1.2 cost/lb  3 nodes  2000 pods/s  0 unplanned  241.2 usd/h
PASS
`
	path := filepath.Join(t.TempDir(), "plan.txt")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parsePlan(path)
	if err != nil {
		t.Fatal(err)
	}
	// Medians of three runs: 2s (of 1, 2, 4), 50 pods/s (of 25, 50, 100), 20 nodes (of 20, 20, 22).
	want := []PlanResult{
		{Catalog: "real", Mix: "diverse", Pods: 100, Runs: 3, Seconds: 2, PodsPerSecond: 50, Nodes: 20, USDPerHour: 1.5, CostRatio: 5, Unplanned: 0},
		{Catalog: "synthetic", Mix: "generic", Pods: 1000, Runs: 1, Seconds: 0.5, PodsPerSecond: 2000, Nodes: 3, USDPerHour: 241.2, CostRatio: 1.2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parsePlan (-want, +got):\n%s", diff)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	// Nearest rank: p50 of 10 values is the 5th smallest, p99 the 10th.
	if got := percentile(values, 50); got != 5 {
		t.Errorf("p50 = %v, want 5", got)
	}
	if got := percentile(values, 99); got != 10 {
		t.Errorf("p99 = %v, want 10", got)
	}
	if got := median(values); got != 5.5 {
		t.Errorf("median = %v, want (5+6)/2 = 5.5", got)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 = %v, want 2", got)
	}
}

func TestRemoveProvision(t *testing.T) {
	var cfg map[string]any
	if err := sigsyaml.Unmarshal(manifests.SchedulerConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	removeProvision(cfg)
	data, err := sigsyaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Profiles []struct {
			SchedulerName string `json:"schedulerName"`
			Plugins       map[string]struct {
				Enabled []struct{ Name string } `json:"enabled"`
			} `json:"plugins"`
			PluginConfig []struct{ Name string } `json:"pluginConfig"`
		} `json:"profiles"`
	}
	if err := sigsyaml.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Profiles) == 0 || back.Profiles[0].SchedulerName != schedulerName {
		t.Fatalf("profiles = %+v, want the %s profile kept", back.Profiles, schedulerName)
	}
	for _, p := range back.Profiles {
		for point, set := range p.Plugins {
			for _, e := range set.Enabled {
				if e.Name == "Provision" {
					t.Errorf("Provision still enabled at %s", point)
				}
			}
		}
		for _, pc := range p.PluginConfig {
			if pc.Name == "Provision" {
				t.Errorf("Provision still in pluginConfig")
			}
		}
	}
}

// TestScaleUpTargets: issue 17's end-to-end targets are judged on every run (the worst
// first CreateFleet and peak RSS), and Karpenter's basic case on its time, utilisation and
// every pod running.
func TestScaleUpTargets(t *testing.T) {
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	missing := func(name, target string) Target { return Target{Name: name, Met: "not measured"} }
	run := func(fleet, rss float64) *ScaleUp {
		return &ScaleUp{Pods: 1000, CreatedToFleetSeconds: fleet, SchedulerPeakRSSMiB: rss}
	}
	basic := func(seconds, cpu, memory float64, notRunning int) *ScaleUp {
		return &ScaleUp{Pods: 1000, Mix: workload.MixKarpenterBasic, AllRunningSeconds: seconds, CPUUtilization: cpu,
			MemoryUtilization: memory, NotRunning: notRunning}
	}
	tests := []struct {
		name string
		e2e  *E2E
		want []string
	}{
		{"nothing measured", nil, []string{"not measured", "not measured", "not measured"}},
		{"all met", &E2E{ScaleUp: []*ScaleUp{run(1.2, 200), run(1.9, 250)}, Karpenter: []*ScaleUp{basic(15, 0.6, 0.7, 0)}},
			[]string{"yes", "yes", "yes"}},
		{"one slow first fleet, one large RSS", &E2E{ScaleUp: []*ScaleUp{run(1.2, 200), run(2.1, 261)}, Karpenter: []*ScaleUp{basic(15, 0.6, 0.7, 0)}},
			[]string{"no", "no", "yes"}},
		{"basic case too slow", &E2E{ScaleUp: []*ScaleUp{run(1, 200)}, Karpenter: []*ScaleUp{basic(21, 0.6, 0.7, 0)}}, []string{"yes", "yes", "no"}},
		{"basic case under-uses memory", &E2E{ScaleUp: []*ScaleUp{run(1, 200)}, Karpenter: []*ScaleUp{basic(15, 0.6, 0.6, 0)}}, []string{"yes", "yes", "no"}},
		{"basic case with a pod never running", &E2E{ScaleUp: []*ScaleUp{run(1, 200)}, Karpenter: []*ScaleUp{basic(15, 0.6, 0.7, 1)}}, []string{"yes", "yes", "no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, target := range scaleUpTargets(&Report{E2E: tt.e2e}, verdict, missing) {
				got = append(got, target.Met)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("met = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestWavesMarkdown: the scale-ups in waves get a table of their own, with the pods each
// stranded, and the scale-up table counts strands too.
func TestWavesMarkdown(t *testing.T) {
	wave := func(stranded int) *ScaleUp {
		return &ScaleUp{Pods: 1000, Waves: 4, WaveIntervalSeconds: 3, AllRunningSeconds: 30, Stranded: stranded, Nodes: 205}
	}
	once := &ScaleUp{Pods: 1000, AllRunningSeconds: 20, Stranded: 2}
	md := markdown(&Report{E2E: &E2E{ScaleUp: []*ScaleUp{once}, Waves: []*ScaleUp{wave(0), wave(3)}}, ScaleUpMedian: once})
	for _, want := range []string{
		"### Scale-up in waves: 1000 diverse pods in 4 waves, 3 s apart",
		"| 1 | 30.0 | 0 | 0 |",
		"| 2 | 30.0 | 0 | 3 |",
		"| Never ran | Stranded |",
		"| 1 | - | 20.0 | 0 | 2 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}
