package plan

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestKeepsReservedPodsSpread: a pod an earlier round reserved on a claim in us-east-1b,
// spreading over zones, pending (Input.Reserved), with a node in us-east-1a that has none of
// its pods. A pod its spread counts, planned now, must not go into us-east-1b: bound first,
// it would leave the reserved pod's own node breaking its spread (1b: 2, 1a: 0). Required
// there, it is unplanned; free, it goes elsewhere. Without Reserved, the plan does not know
// the pod is pending and puts it in us-east-1b.
func TestKeepsReservedPodsSpread(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	prov := plantest.Provisioner("default")
	web := st.MakeLabelSelector().Label("app", "web").Obj()
	spreads := plantest.PendingPod("r", "1").Label("app", "web").SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule, web, nil, nil, nil, nil).Obj()
	inB := plantest.PendingPod("x", "1").Label("app", "web").NodeSelector(map[string]string{v1.LabelTopologyZone: "us-east-1b"}).Obj()
	free := plantest.PendingPod("y", "1").Label("app", "web").Obj()

	nc := plantest.Claim("c1", "")
	nc.Spec.Provisioner = prov.Name
	nc.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{"us-east-1b"}}}
	standIn := StandIn(nc, "nodeclaim-c1", "us-east-1")
	other := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{v1.LabelTopologyZone: "us-east-1a", v1.LabelHostname: "node-a"}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("0"), v1.ResourcePods: resource.MustParse("0")}}}

	for _, tt := range []struct {
		name      string
		pod       *v1.Pod
		reserved  bool
		unplanned bool
		inB       bool // whether the new node is in us-east-1b
	}{
		{name: "required in 1b, reserved pod known", pod: inB, reserved: true, unplanned: true},
		{name: "free, reserved pod known", pod: free, reserved: true},
		{name: "required in 1b, reserved pod not known", pod: inB, inB: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := planInput([]*v1.Pod{tt.pod}, prov)
			in.Nodes = []*v1.Node{other, standIn}
			in.ScheduledPods = boundTo("nodeclaim-c1", []*v1.Pod{spreads})
			if tt.reserved {
				in.Reserved = sets.New[types.UID](spreads.UID)
			}
			result, err := Plan(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.unplanned {
				if len(result.Nodes) != 0 || len(result.Unplanned) != 1 {
					t.Fatalf("planned %d nodes, %d pods unplanned; want the pod unplanned", len(result.Nodes), len(result.Unplanned))
				}
				return
			}
			if len(result.Nodes) != 1 {
				t.Fatalf("planned %d nodes (%d pods unplanned), want 1", len(result.Nodes), len(result.Unplanned))
			}
			if zone := result.Nodes[0].Template.Offering.Zone; (zone == "us-east-1b") != tt.inB {
				t.Errorf("new node in %s; want it in us-east-1b: %v", zone, tt.inB)
			}
		})
	}
}
