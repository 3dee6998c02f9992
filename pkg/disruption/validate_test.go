package disruption

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestRevalidate: the decision to delete two of three small nodes stands while the cluster
// does; a pod that fills the third node makes it a replacement, which is not carried out; a
// node that stopped being a candidate stops it too.
func TestRevalidate(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pods, now := threeApart("300m", false)
	in, candidates := clusterOf(ctx, t, pods, now)
	d, err := Consolidate(ctx, in, candidates, nil)
	if err != nil || d == nil || d.Method != MethodDelete {
		t.Fatalf("Consolidate: %v, %v; want a deletion", d, err)
	}
	if again, why, err := Revalidate(ctx, in, candidates, d); err != nil || again == nil || again.Method != MethodDelete {
		t.Errorf("unchanged cluster: %v, %q, %v; want the deletion", again, why, err)
	}
	var kept string
	for _, c := range candidates {
		if c.Node != d.Nodes[0].Node && c.Node != d.Nodes[1].Node {
			kept = c.Node
		}
	}
	filled := in
	filled.ScheduledPods = append(append([]*v1.Pod(nil), in.ScheduledPods...), plantest.PendingPod("big", "1200m").Node(kept).Obj())
	if again, why, err := Revalidate(ctx, filled, candidates, d); err != nil || again != nil || !strings.Contains(why, "replaced, not deleted") {
		t.Errorf("third node filled: %v, %q, %v; want no decision, as it would now replace", again, why, err)
	}
	var fewer []Candidate
	for _, c := range candidates {
		if c.Node != d.Nodes[0].Node {
			fewer = append(fewer, c)
		}
	}
	if again, why, err := Revalidate(ctx, in, fewer, d); err != nil || again != nil || !strings.Contains(why, "no longer a candidate") {
		t.Errorf("a node no longer a candidate: %v, %q, %v; want no decision", again, why, err)
	}
}

func TestHoldKey(t *testing.T) {
	owned := func(name, kind, uid string, labels map[string]string) *v1.Pod {
		p := st.MakePod().Namespace("default").Name(name).Labels(labels).Obj()
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: "owner", UID: types.UID(uid), Controller: new(true)}}
		return p
	}
	rs := map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "abc"}
	a, b := HoldKey(owned("web-abc-1", "ReplicaSet", "rs-1", rs)), HoldKey(owned("web-abc-2", "ReplicaSet", "rs-1", rs))
	if a == "" || a != b {
		t.Errorf("two pods of one ReplicaSet: keys %q and %q, want one", a, b)
	}
	if c := HoldKey(owned("web-def-1", "ReplicaSet", "rs-2", map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "def"})); c == a {
		t.Errorf("pods of another ReplicaSet share the key %q", c)
	}
	s1 := HoldKey(owned("db-0", "StatefulSet", "sts", map[string]string{appsv1.ControllerRevisionHashLabelKey: "r1"}))
	s2 := HoldKey(owned("db-1", "StatefulSet", "sts", map[string]string{appsv1.ControllerRevisionHashLabelKey: "r2"}))
	if s1 == "" || s1 == s2 {
		t.Errorf("StatefulSet pods of two revisions: keys %q and %q, want two", s1, s2)
	}
	if k := HoldKey(st.MakePod().Namespace("default").Name("bare").Obj()); k != "" {
		t.Errorf("a pod without a controller: key %q, want none", k)
	}
	if k := HoldKey(owned("agent-x", "DaemonSet", "ds", nil)); k != "" {
		t.Errorf("a DaemonSet's pod: key %q, want none", k)
	}
}
