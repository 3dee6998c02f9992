package plan

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestPlanAvoidsStrandedShapes: a pod that must avoid the cheapest template is planned onto
// the next cheapest, and other pods are not affected.
func TestPlanAvoidsStrandedShapes(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	a, b := plantest.PendingPod("a", "1").Obj(), plantest.PendingPod("b", "1").Obj()
	in := planInput([]*v1.Pod{a}, plantest.Provisioner("default", spotOnly))
	in.Avoid = map[types.UID]sets.Set[string]{a.UID: sets.New("default/t3a.medium/us-east-1a/spot")}
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Nodes[0].Template.Key; got != "default/t3a.medium/us-east-1b/spot" {
		t.Errorf("avoiding pod planned onto %s, want default/t3a.medium/us-east-1b/spot", got)
	}
	in.Pods = []*v1.Pod{b}
	if plan, _ := Plan(ctx, in); plan.Nodes[0].Template.Key != "default/t3a.medium/us-east-1a/spot" {
		t.Errorf("another pod planned onto %s, want the cheapest", plan.Nodes[0].Template.Key)
	}
}
