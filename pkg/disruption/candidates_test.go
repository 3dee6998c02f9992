package disruption

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

func TestCandidates(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	prov := plantest.Provisioner("default")
	c := Cluster{Nodes: map[string]*v1.Node{}, Pods: map[string][]*v1.Pod{},
		Provisioners:  map[string]*v1alpha1.Provisioner{"default": prov},
		InstanceTypes: map[string][]*cloud.InstanceType{"default": plantest.Catalog()}}
	// claim adds a claim of a spot t3a.medium in us-east-1a, initialized an hour ago, whose
	// node runs a pod started startedAgo ago, changed by mutate.
	claim := func(name string, startedAgo time.Duration, mutate func(*v1alpha1.NodeClaim, *v1.Node, *v1.Pod)) {
		nc := plantest.Claim(name, "node-"+name)
		nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType = "t3a.medium", "us-east-1a", v1alpha1.CapacityTypeSpot
		nc.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionInitialized, Status: metav1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}}
		node := st.MakeNode().Name("node-" + name).Obj()
		pod := st.MakePod().Namespace("default").Name("web-"+name).Node(node.Name).
			OwnerReference("web-abc", metav1.SchemeGroupVersion.WithKind("ReplicaSet")).Obj()
		pod.Status.StartTime = &metav1.Time{Time: now.Add(-startedAgo)}
		if mutate != nil {
			mutate(nc, node, pod)
		}
		c.Claims = append(c.Claims, nc)
		c.Nodes[node.Name] = node
		c.Pods[node.Name] = []*v1.Pod{pod}
	}
	gone := metav1.NewTime(now)
	claim("settled", time.Hour, nil)
	claim("fresh", time.Minute, nil)
	claim("deleting", time.Hour, func(nc *v1alpha1.NodeClaim, _ *v1.Node, _ *v1.Pod) { nc.DeletionTimestamp = &gone })
	claim("draining", time.Hour, func(_ *v1alpha1.NodeClaim, n *v1.Node, _ *v1.Pod) { n.DeletionTimestamp = &gone })
	claim("booting", time.Hour, func(nc *v1alpha1.NodeClaim, _ *v1.Node, _ *v1.Pod) { nc.Status.Conditions = nil })
	claim("kept", time.Hour, func(_ *v1alpha1.NodeClaim, _ *v1.Node, p *v1.Pod) {
		p.Annotations = map[string]string{v1alpha1.AnnotationDoNotDisrupt: "true"}
	})
	claim("unpriced", time.Hour, func(nc *v1alpha1.NodeClaim, _ *v1.Node, _ *v1.Pod) { nc.Status.InstanceType = "x9.huge" })

	got, skipped := Candidates(c, now, 10*time.Minute)
	// t3a.medium spot in the first zone, and the default node cost.
	want := []Candidate{{Node: "node-settled", Claim: "settled", Provisioner: "default", Price: 0.012 + v1alpha1.DefaultNodeCost}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
		t.Errorf("candidates (-want, +got):\n%s", diff)
	}
	wantSkipped := map[string]string{
		"fresh":    "its pods changed less than 10m0s ago",
		"deleting": "the claim is being deleted",
		"draining": "its node is being deleted",
		"booting":  "its node is not initialized",
		"kept":     "pod default/web-kept has annotation nodewright.dev/do-not-disrupt=true",
		"unpriced": "no price for spot x9.huge in us-east-1a among its Provisioner's offerings",
	}
	if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
		t.Errorf("skipped (-want, +got):\n%s", diff)
	}
}
