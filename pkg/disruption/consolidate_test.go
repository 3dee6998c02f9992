package disruption

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// clusterOf plans pods (a scale-up) on plantest's catalog and returns the cluster once the
// planned nodes registered, with now(i) in place of the pods of the i-th node: the workload
// as it became since. Every node is a candidate, at its template's cost.
func clusterOf(ctx context.Context, t *testing.T, pods []*v1.Pod, now func(i int) []*v1.Pod) (plan.Input, []Candidate) {
	t.Helper()
	prov := plantest.Provisioner("default")
	in := plan.Input{Pods: pods, Provisioners: []*v1alpha1.Provisioner{prov}, InstanceTypes: plantest.Catalogs(prov), Region: "us-east-1"}
	result, err := plan.Plan(ctx, in)
	if err != nil || len(result.Unplanned) > 0 {
		t.Fatalf("scale-up: %v, %d unplanned", err, len(result.Unplanned))
	}
	out := in
	out.Pods = nil
	var candidates []Candidate
	for i, n := range result.Nodes {
		node, bound := n.Registered()
		out.Nodes = append(out.Nodes, node)
		for _, pod := range bound {
			if plan.GoesWithNode(pod) {
				out.ScheduledPods = append(out.ScheduledPods, pod)
			}
		}
		for _, pod := range now(i) {
			pod = pod.DeepCopy()
			pod.Spec.NodeName = n.Name
			out.ScheduledPods = append(out.ScheduledPods, pod)
		}
		candidates = append(candidates, Candidate{Node: n.Name, Claim: fmt.Sprint("claim-", i), Price: n.Template.Cost()})
	}
	return out, candidates
}

// apart is a pod of app web that no other pod of app web may share a node with.
func apart(name, cpu string) *v1.Pod {
	return plantest.PendingPod(name, cpu).Label("app", "web").
		PodAntiAffinity(v1.LabelHostname, st.MakeLabelSelector().Label("app", "web").Obj(), st.PodAntiAffinityWithRequiredReq).Obj()
}

// threeApart returns three pods of cpu that need a node each, and the pod the i-th node runs
// now: plain, or still keeping apart.
func threeApart(cpu string, stillApart bool) ([]*v1.Pod, func(i int) []*v1.Pod) {
	pods := []*v1.Pod{apart("web-0", cpu), apart("web-1", cpu), apart("web-2", cpu)}
	return pods, func(i int) []*v1.Pod {
		if stillApart {
			return []*v1.Pod{pods[i]}
		}
		return []*v1.Pod{plantest.PendingPod(fmt.Sprint("plain-", i), cpu).Obj()}
	}
}

// TestConsolidateDeletesNodesWhosePodsFitElsewhere: three small nodes, each with a 300m pod
// that no longer keeps apart. Deleting two, whose pods fit on the third, saves as much as
// replacing all three with one such node: the decision moves fewer nodes' pods.
func TestConsolidateDeletesNodesWhosePodsFitElsewhere(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pods, now := threeApart("300m", false)
	in, candidates := clusterOf(ctx, t, pods, now)
	d, err := Consolidate(ctx, in, candidates, nil)
	if err != nil || d == nil {
		t.Fatalf("Consolidate: %v, %v; want a decision", d, err)
	}
	if d.Method != MethodDelete || len(d.Nodes) != 2 || d.Replacement != nil {
		t.Fatalf("decision %s, want to delete 2 nodes", d)
	}
	if want := candidates[0].Price * 2; math.Abs(d.Savings-want) > 1e-9 {
		t.Errorf("savings %v USD/h, want the two nodes' price %v", d.Savings, want)
	}
	moved := 0
	for _, m := range d.Moves {
		moved += len(m.Pods)
		if m.Node == d.Nodes[0].Node || m.Node == d.Nodes[1].Node {
			t.Errorf("pods moved onto %s, a node the decision deletes", m.Node)
		}
	}
	if moved != 2 {
		t.Errorf("%d pods moved, want the 2 of the deleted nodes", moved)
	}
}

// TestConsolidateReplacesAnOversizedNode: a node launched for a 7-cpu pod now runs a 1-cpu
// pod; one small node takes it for less.
func TestConsolidateReplacesAnOversizedNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	in, candidates := clusterOf(ctx, t, []*v1.Pod{plantest.PendingPod("big", "7").Obj()},
		func(int) []*v1.Pod { return []*v1.Pod{plantest.PendingPod("small", "1").Obj()} })
	d, err := Consolidate(ctx, in, candidates, nil)
	if err != nil || d == nil {
		t.Fatalf("Consolidate: %v, %v; want a decision", d, err)
	}
	if d.Method != MethodReplace || d.Replacement == nil || len(d.Replacement.Pods) != 1 {
		t.Fatalf("decision %s, want a replacement holding the pod", d)
	}
	got, was := d.Replacement.Template.InstanceType.Name, in.Nodes[0].Labels[v1.LabelInstanceTypeStable]
	if got != "t3a.medium" || was != "t3a.2xlarge" {
		t.Errorf("replaced %s with %s, want t3a.2xlarge with t3a.medium", was, got)
	}
	if want := candidates[0].Price - d.Replacement.Cost(); math.Abs(d.Savings-want) > 1e-9 || d.Savings <= 0 {
		t.Errorf("savings %v USD/h, want %v", d.Savings, want)
	}
}

// TestConsolidateKeepsWhatTheFiltersRequire: the same three nodes, their pods still keeping
// apart: InterPodAffinity rejects every move, and no one node holds them, so nothing is
// decided; with the pods plain, the same cluster consolidates.
func TestConsolidateKeepsWhatTheFiltersRequire(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, stillApart := range []bool{true, false} {
		pods, now := threeApart("300m", stillApart)
		in, candidates := clusterOf(ctx, t, pods, now)
		d, err := Consolidate(ctx, in, candidates, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := d != nil; got == stillApart {
			t.Errorf("pods keeping apart %v: decision %v, want one only for plain pods", stillApart, d)
		}
	}
}

// TestCandidatesByValue: candidates go by price per unit of disruption: a node whose pod has
// a high deletion cost or priority goes after one of the same price whose pod has none.
func TestCandidatesByValue(t *testing.T) {
	pod := func(node string, mutate func(*v1.Pod)) *v1.Pod {
		p := plantest.PendingPod("p-"+node, "1").Node(node).Obj()
		mutate(p)
		return p
	}
	high := int32(math.MaxInt32)
	in := plan.Input{ScheduledPods: []*v1.Pod{
		pod("costly", func(p *v1.Pod) { p.Annotations = map[string]string{podDeletionCost: "1000000000"} }),
		pod("plain", func(*v1.Pod) {}),
		pod("important", func(p *v1.Pod) { p.Spec.Priority = &high }),
		pod("cheap-to-lose", func(p *v1.Pod) { p.Annotations = map[string]string{podDeletionCost: "-2147483648"} }),
	}}
	var candidates []Candidate
	for _, n := range []string{"costly", "important", "plain", "cheap-to-lose"} {
		candidates = append(candidates, Candidate{Node: n, Price: 0.1})
	}
	var got []string
	for _, c := range byValue(in, candidates) {
		got = append(got, c.Node)
	}
	if diff := cmp.Diff([]string{"cheap-to-lose", "plain", "costly", "important"}, got); diff != "" {
		t.Errorf("order (-want, +got):\n%s", diff)
	}
}

// TestConsolidateWithinBudgets: a budget of one node of a Provisioner makes a decision remove
// at most one of its nodes, and when the most valuable candidate cannot go, the others are
// still tried, each alone; a budget of 0 leaves its candidates out.
func TestConsolidateWithinBudgets(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pods, now := threeApart("300m", false)
	in, candidates := clusterOf(ctx, t, pods, now)
	for i := range candidates {
		candidates[i].Provisioner = "default"
	}
	d, err := Consolidate(ctx, in, candidates, map[string]int{"default": 1})
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || len(d.Nodes) != 1 {
		t.Fatalf("budget of 1: decision %v, want one node", d)
	}
	// Without the most valuable candidate: another one goes.
	best := byValue(in, candidates)[0]
	var rest []Candidate
	for _, c := range candidates {
		if c.Node != best.Node {
			rest = append(rest, c)
		}
	}
	d2, err := Consolidate(ctx, in, rest, map[string]int{"default": 1})
	if err != nil || d2 == nil || len(d2.Nodes) != 1 || d2.Nodes[0].Node == best.Node {
		t.Errorf("without the best candidate: decision %v, err %v; want another node", d2, err)
	}
	if d, err := Consolidate(ctx, in, candidates, map[string]int{"default": 0}); err != nil || d != nil {
		t.Errorf("budget of 0: decision %v, err %v; want none", d, err)
	}
}
