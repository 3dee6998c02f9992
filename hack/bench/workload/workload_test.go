package workload

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestPods(t *testing.T) {
	pods := Pods(10, Seed, PodOptions{Namespace: "ns"})
	if diff := cmp.Diff(pods, Pods(10, Seed, PodOptions{Namespace: "ns"})); diff != "" {
		t.Errorf("the same seed gave other pods (-first, +second):\n%s", diff)
	}
	// Pods 0..9 cycle through the five classes twice: count what marks each class.
	count := map[string]int{}
	for _, p := range pods {
		a := p.Spec.Affinity
		switch {
		case len(p.Spec.TopologySpreadConstraints) == 1:
			count["spread "+p.Spec.TopologySpreadConstraints[0].TopologyKey]++
		case a != nil && a.PodAffinity != nil:
			count["affinity"]++
		case a != nil && a.PodAntiAffinity != nil && p.Labels["app"] == "nginx":
			count["anti-affinity"]++
		default:
			count["generic"]++
		}
		if p.Namespace != "ns" || p.Spec.SchedulerName != "nodewright-scheduler" {
			t.Errorf("pod %s: namespace %q scheduler %q, want ns and nodewright-scheduler", p.Name, p.Namespace, p.Spec.SchedulerName)
		}
	}
	want := map[string]int{"generic": 2, "spread " + v1.LabelTopologyZone: 2, "spread " + v1.LabelHostname: 2, "affinity": 2, "anti-affinity": 2}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("pods by class (-want, +got):\n%s", diff)
	}
}

// TestLowerBound checks the bound on the synthetic catalog, whose best prices per unit are
// the same for every type: (0.1 + 0.1 x 2) / 1 = 0.3 USD/h per vCPU, 0.3 / 2 = 0.15 per GiB.
func TestLowerBound(t *testing.T) {
	pods := Pods(10, Seed, PodOptions{}, Generic)
	var cpu, gib float64
	for _, p := range pods {
		cpu += float64(p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()) / 1000
		gib += float64(p.Spec.Containers[0].Resources.Requests.Memory().Value()) / (1 << 30)
	}
	want := max(0.3*cpu, 0.15*gib)
	if got := LowerBound(pods, SyntheticCatalog()); math.Abs(got-want) > 1e-9 {
		t.Errorf("LowerBound = %v, want max(0.3 x %v cpu, 0.15 x %v GiB) = %v", got, cpu, gib, want)
	}
}
