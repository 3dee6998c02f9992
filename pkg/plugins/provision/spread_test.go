package provision

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestReservedPodsWaitForTheirSpread: pods a1, a2 and a3 reserved on a node in zone a, b1
// and c1 on nodes in zones b and c, spread over the zones with a skew of 1. When a's node
// registers, a1 goes; a2 and a3 stay held (PreEnqueue) and skipped by the hints: with a1
// placed, zone a would have 2 pods against none elsewhere. Placing a1, then b1, does not let
// a2 go; placing c1 does, not a3 (a2 may place first). A pod still waiting NodeReadyWait
// after its node registered goes anyway. Bound or gone, pods are forgotten.
func TestReservedPodsWaitForTheirSpread(t *testing.T) {
	pods := map[string]*v1.Pod{}
	var objs []runtime.Object
	for _, name := range []string{"a1", "a2", "a3", "b1", "c1"} {
		pods[name] = plantest.PendingPod(name, "2").Obj()
		objs = append(objs, pods[name])
	}
	p, h, clk, _, ctx := holdingPlugin(t, objs...)
	for _, pod := range pods {
		if !isHeld(t, p, pod) {
			t.Fatalf("%s not held for its round", pod.Name)
		}
	}
	need := func(domain string) []plan.SpreadNeed {
		return []plan.SpreadNeed{{SpreadDomain: plan.SpreadDomain{Constraint: "web", Domain: domain}, MaxSkew: 1}}
	}
	counted := func(domain string) []plan.SpreadDomain {
		return []plan.SpreadDomain{{Constraint: "web", Domain: domain}}
	}
	p.spread.add(&plan.SpreadCounts{
		Bound: map[string]map[string]int{"web": {"a": 0, "b": 0, "c": 0}},
		Needs: map[types.UID][]plan.SpreadNeed{"a1": need("a"), "a2": need("a"), "a3": need("a"), "b1": need("b"), "c1": need("c")},
		Counted: map[types.UID][]plan.SpreadDomain{"a1": counted("a"), "a2": counted("a"), "a3": counted("a"), "b1": counted("b"),
			"c1": counted("c")},
	}, []*v1.Pod{pods["a1"], pods["a2"], pods["a3"], pods["b1"], pods["c1"]})
	claimA, claimB, claimC := plantest.Claim("ca", "node-a", "a1", "a2", "a3"), plantest.Claim("cb", "node-b", "b1"), plantest.Claim("cc", "node-c", "c1")
	for _, nc := range []*v1alpha1.NodeClaim{claimA, claimB, claimC} {
		p.ledger.Set(nc)
	}
	p.reserved.activateOnce(ctx, claimA)
	if !slices.Equal(h.activated, []string{"default/a1"}) {
		t.Fatalf("activated %v when zone a's node registered, want a1 only", h.activated)
	}
	if isHeld(t, p, pods["a1"]) || !isHeld(t, p, pods["a2"]) {
		t.Fatal("a1 held, or a2 not held while zone b has no pod")
	}
	if !p.reserved.waitsForActivation(pods["a2"]) {
		t.Error("the hints would retry a2 while it waits for its spread")
	}
	p.Reserve(ctx, nil, pods["a1"], "node-a")
	p.reserved.activateOnce(ctx, claimB)
	if !slices.Equal(h.activated, []string{"default/a1", "default/b1"}) || !isHeld(t, p, pods["a2"]) {
		t.Fatalf("activated %v with b1 not placed yet; want a1, b1, and a2 held", h.activated)
	}
	p.Reserve(ctx, nil, pods["b1"], "node-b")
	if !slices.Equal(h.activated, []string{"default/a1", "default/b1"}) {
		t.Fatalf("activated %v with zone c's node not registered: want a2 held, zone c having none", h.activated)
	}
	p.reserved.activateOnce(ctx, claimC)
	p.Reserve(ctx, nil, pods["c1"], "node-c")
	if !slices.Contains(h.activated, "default/a2") || isHeld(t, p, pods["a2"]) {
		t.Fatalf("activated %v once a pod was placed in each zone; want a2 too", h.activated)
	}
	if !isHeld(t, p, pods["a3"]) {
		t.Fatal("a3 let go with a2 let go in zone a, not placed yet: zone a could have 3 pods against 1")
	}
	clk.Step(NodeReadyWait)
	if !slices.Contains(h.activated, "default/a3") || isHeld(t, p, pods["a3"]) {
		t.Fatalf("a3 still held NodeReadyWait after its node registered: activated %v", h.activated)
	}
	for _, name := range []string{"a1", "a2", "b1", "c1"} {
		bound := pods[name].DeepCopy()
		bound.Spec.NodeName = "node"
		p.observeBound(pods[name], bound)
	}
	p.forgetPod(pods["a3"])
	if len(p.spread.refs) != 0 {
		t.Errorf("pods remembered after they bound or went: %v", p.spread.refs)
	}
}
