package provision

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestQueueingHints: a pod waiting for its claim's node is retried by no event (activation
// brings it); other pods are retried when a node appears or is matched to its claim, when a
// reserved pod binds, and when a pending pod is deleted.
func TestQueueingHints(t *testing.T) {
	logger, _ := ktesting.NewTestContext(t)
	p := newProvision(&deps{ledger: NewLedger()}, false)
	p.reserved.activated["c1"] = true
	p.ledger.Rebuild([]*v1alpha1.NodeClaim{plantest.Claim("c1", "node-1", "a"), plantest.Claim("c2", "", "w")})
	waiting, free := plantest.PendingPod("w", "1").Obj(), plantest.PendingPod("x", "1").Obj()
	node := st.MakeNode().Name("node-1").Obj()
	labelled := st.MakeNode().Name("node-1").Label(v1alpha1.LabelNodeClaim, "c1").Obj()
	bound := func(name string) *v1.Pod { return plantest.PendingPod(name, "1").Node("node-1").Obj() }
	// web requires a node with a pod of app db.
	web := plantest.PendingPod("web", "1").PodAffinityIn("app", v1.LabelHostname, []string{"db"}, st.PodAffinityWithRequiredReq).Obj()
	db := plantest.PendingPod("db", "1").Label("app", "db").Node("node-1").Obj()

	tests := []struct {
		name     string
		hint     fwk.QueueingHintFn
		pod      *v1.Pod
		old, new any
		want     fwk.QueueingHint
	}{
		{"waiting pod, node added", p.hintNodeChange, waiting, nil, node, fwk.QueueSkip},
		{"waiting pod, reserved pod bound", p.hintReservedPodGone, waiting, nil, bound("a"), fwk.QueueSkip},
		{"node added", p.hintNodeChange, free, nil, node, fwk.Queue},
		{"node matched to its claim", p.hintNodeChange, free, node, labelled, fwk.Queue},
		{"node's other labels changed", p.hintNodeChange, free, labelled, st.MakeNode().Name("node-1").Label(v1alpha1.LabelNodeClaim, "c1").Label("team", "a").Obj(), fwk.QueueSkip},
		{"reserved pod bound", p.hintReservedPodGone, free, nil, bound("a"), fwk.Queue},
		{"unreserved pod bound", p.hintReservedPodGone, free, nil, bound("y"), fwk.QueueSkip},
		{"unreserved pod the pod's affinity selects bound", p.hintReservedPodGone, web, nil, db, fwk.Queue},
		{"pending pod deleted", p.hintReservedPodGone, free, plantest.PendingPod("a", "1").Obj(), nil, fwk.Queue},
		{"bound pod deleted", p.hintReservedPodGone, free, bound("y"), nil, fwk.QueueSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.hint(logger, tt.pod, tt.old, tt.new)
			if err != nil || got != tt.want {
				t.Errorf("hint = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	// Activation ends the wait.
	p.reserved.activated["c2"] = true
	if got, _ := p.hintNodeChange(logger, waiting, nil, node); got != fwk.Queue {
		t.Errorf("after activation, hint = %v, want Queue", got)
	}
}
