package disruption

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// fleet is a cluster in memory that consolidation decisions are carried out on.
type fleet struct {
	in    plan.Input
	price map[string]float64
}

// newFleet plans pods on types and returns the cluster once the nodes registered.
func newFleet(ctx context.Context, t *testing.T, pods []*v1.Pod, types []*cloud.InstanceType) *fleet {
	t.Helper()
	prov := plantest.Provisioner("default")
	zero := "0"
	prov.Spec.NodeCost = &zero
	in := plan.Input{Pods: pods, Provisioners: []*v1alpha1.Provisioner{prov},
		InstanceTypes: map[string][]*cloud.InstanceType{"default": types}, Region: "us-east-1"}
	result, err := plan.Plan(ctx, in)
	if err != nil || len(result.Unplanned) > 0 {
		t.Fatalf("scale-up: %v, %d unplanned", err, len(result.Unplanned))
	}
	f := &fleet{in: in, price: map[string]float64{}}
	f.in.Pods = nil
	for _, n := range result.Nodes {
		f.add(n)
	}
	return f
}

// add registers a planned node with its pods.
func (f *fleet) add(n *plan.PlannedNode) {
	node, pods := n.Registered()
	f.in.Nodes = append(f.in.Nodes, node)
	f.in.ScheduledPods = append(f.in.ScheduledPods, pods...)
	f.price[node.Name] = n.Cost()
}

// keep deletes every pod that is neither a DaemonSet's nor among keep.
func (f *fleet) keep(keep func(*v1.Pod) bool) {
	var pods []*v1.Pod
	for _, pod := range f.in.ScheduledPods {
		if plan.GoesWithNode(pod) || keep(pod) {
			pods = append(pods, pod)
		}
	}
	f.in.ScheduledPods = pods
}

// apply carries d out: its nodes go, their pods move where it planned them.
func (f *fleet) apply(d *Decision) {
	names := make([]string, len(d.Nodes))
	for i, c := range d.Nodes {
		names[i] = c.Node
		delete(f.price, c.Node)
	}
	without := f.in.Without(names...)
	f.in.Nodes, f.in.ScheduledPods = without.Nodes, without.ScheduledPods
	for _, m := range d.Moves {
		for _, pod := range m.Pods {
			bound := pod.DeepCopy()
			bound.Spec.NodeName = m.Node
			f.in.ScheduledPods = append(f.in.ScheduledPods, bound)
		}
	}
	if d.Replacement != nil {
		d.Replacement.Name = "replacement-" + names[0]
		f.add(d.Replacement)
	}
}

// cost is what the fleet costs per hour.
func (f *fleet) cost() float64 {
	var sum float64
	for _, p := range f.price {
		sum += p
	}
	return sum
}

// candidates are all the fleet's nodes.
func (f *fleet) candidates() []Candidate {
	var out []Candidate
	for _, n := range f.in.Nodes {
		out = append(out, Candidate{Node: n.Name, Price: f.price[n.Name]})
	}
	return out
}

// TestConsolidateShrunkFleet: 200 pods of the diverse mix on the synthetic catalog, then
// three in four of them gone. Consolidation, decision after decision, brings the fleet to
// within 15 % of what a fresh plan of the pods left costs, every pod placed where the
// scheduler's filters accept it (each plan confirms its placements).
func TestConsolidateShrunkFleet(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	types := workload.SyntheticCatalog()
	pods := workload.Pods(200, workload.Seed, workload.PodOptions{})
	f := newFleet(ctx, t, pods, types)
	left := map[string]bool{}
	for i, pod := range pods {
		if i%4 == 0 {
			left[pod.Name] = true
		}
	}
	f.keep(func(pod *v1.Pod) bool { return left[pod.Name] })
	before, nodesBefore := f.cost(), len(f.in.Nodes)
	decisions := 0
	for ; decisions < 100; decisions++ {
		d, err := Consolidate(ctx, f.in, f.candidates(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d == nil {
			break
		}
		f.apply(d)
	}
	var rest []*v1.Pod
	for _, pod := range pods {
		if left[pod.Name] {
			rest = append(rest, pod)
		}
	}
	fresh := newFleet(ctx, t, rest, types).cost()
	t.Logf("%d decisions: %d nodes at %.1f USD/h -> %d at %.1f; a fresh plan of the %d pods left: %.1f USD/h (%.3fx)",
		decisions, nodesBefore, before, len(f.in.Nodes), f.cost(), len(rest), fresh, f.cost()/fresh)
	if f.cost() > 1.15*fresh {
		t.Errorf("consolidated fleet %.1f USD/h, more than 1.15x a fresh plan's %.1f", f.cost(), fresh)
	}
	placed := 0
	for _, pod := range f.in.ScheduledPods {
		if !plan.GoesWithNode(pod) {
			placed++
		}
	}
	if placed != len(rest) {
		t.Errorf("%d pods on the fleet, want the %d left", placed, len(rest))
	}
}
