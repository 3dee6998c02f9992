package provision

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestSpareRoomOfRegisteredNodeLeftToTheScheduler: a round planned a pod into the spare room
// of a launched claim whose node registered meanwhile (the claim says so, or the node is in
// the informer): the pod is not reserved there but activated, for the scheduler to place it
// in whatever room is left. No API call is made (the plugin has no client here).
func TestSpareRoomOfRegisteredNodeLeftToTheScheduler(t *testing.T) {
	pods := []*v1.Pod{plantest.PendingPod("late", "1").Obj(), plantest.PendingPod("later", "1").Obj()}
	p, h, clk, _, ctx := holdingPlugin(t, pods[0], pods[1], roomNode("node-2", "2", "8Gi", "110"))
	p.ledger.Set(registeredAt(plantest.Claim("c1", "node-1", "own"), clk.Now()))
	p.ledger.Set(plantest.Claim("c2", "node-2", "own2"))
	p.writer.addToClaims(ctx, []*plan.AddedPods{{Claim: "c1", Node: "node-1", Pods: pods[:1]}, {Claim: "c2", Node: "node-2", Pods: pods[1:]}})
	for _, pod := range pods {
		if claim, _, ok := p.ledger.Reservation(pod.UID); ok {
			t.Errorf("%s reserved on %s, whose node registered while the round planned", pod.Name, claim)
		}
	}
	if !slices.Equal(h.activated, []string{"default/late", "default/later"}) {
		t.Errorf("activated %v, want both pods, for the scheduler to place", h.activated)
	}
}
