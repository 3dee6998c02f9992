package plan

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestPlanPodsOfNodesWithoutThem plans what scale-down asks: the pods of two existing nodes,
// on the cluster without them, into the room of the node that stays plus at most N new
// nodes; and checks every pod where the plan put it with the scheduler's own filters, on the
// cluster as it will be. Web pods repel each other by hostname, so the staying node, which
// has one, takes none of them: with one new node one web pod is left over, with two none.
func TestPlanPodsOfNodesWithoutThem(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	cluster := threeNodes()
	for _, tc := range []struct {
		maxNewNodes        int
		wantNodes          [][]string
		wantAdded          []string
		wantUnplanned      []string
		wantUnplannedCause string
	}{
		{maxNewNodes: 1, wantNodes: [][]string{{"a1", "a2"}}, wantAdded: []string{"b2"}, wantUnplanned: []string{"b1"},
			wantUnplannedCause: "at most 1 new node"},
		{maxNewNodes: 2, wantNodes: [][]string{{"a1", "a2"}, {"b1"}}, wantAdded: []string{"b2"}},
	} {
		in := cluster.Without("node-a", "node-b")
		in.Existing = []string{"node-c"}
		in.MaxNewNodes = &tc.maxNewNodes
		if got := podNames(in.Pods); !cmp.Equal(got, []string{"a1", "a2", "b1", "b2"}) {
			t.Fatalf("pods to plan %v, want those of node-a and node-b but their DaemonSet pods", got)
		}
		result, err := Plan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var gotNodes [][]string
		for _, n := range result.Nodes {
			gotNodes = append(gotNodes, podNames(n.Pods))
		}
		var gotAdded, gotUnplanned []string
		for _, a := range result.Added {
			if a.Node != "node-c" || a.Claim != "" {
				t.Errorf("pods added to node %q of claim %q, want node-c and no claim", a.Node, a.Claim)
			}
			gotAdded = append(gotAdded, podNames(a.Pods)...)
		}
		for _, u := range result.Unplanned {
			gotUnplanned = append(gotUnplanned, u.Pod.Name)
			if !strings.Contains(u.Message(), tc.wantUnplannedCause) {
				t.Errorf("max %d new nodes: pod %s unplanned because %q, want %q", tc.maxNewNodes, u.Pod.Name, u.Message(), tc.wantUnplannedCause)
			}
		}
		if diff := cmp.Diff(tc.wantNodes, gotNodes); diff != "" {
			t.Errorf("max %d new nodes: pods of the new nodes (-want, +got):\n%s", tc.maxNewNodes, diff)
		}
		if !cmp.Equal(tc.wantAdded, gotAdded) || !cmp.Equal(tc.wantUnplanned, gotUnplanned) {
			t.Errorf("max %d new nodes: added to node-c %v, unplanned %v; want %v and %v", tc.maxNewNodes, gotAdded, gotUnplanned, tc.wantAdded, tc.wantUnplanned)
		}

		for _, msg := range rejections(ctx, t, in, result) {
			t.Errorf("max %d new nodes: %s", tc.maxNewNodes, msg)
		}
	}
}

// threeNodes returns a cluster of three nodes of one Provisioner, each with a DaemonSet pod:
// node-a and node-b, t3a.xlarge, with a web pod and a plain one each; node-c, t3a.2xlarge,
// with a web pod and a 4-cpu one. Web pods repel each other by hostname.
func threeNodes() Input {
	prov := plantest.Provisioner("default")
	agent := plantest.DaemonSet("agent", "100m")
	byName := map[string]*cloud.InstanceType{}
	for _, it := range plantest.Catalog() {
		byName[it.Name] = it
	}
	in := Input{Provisioners: []*v1alpha1.Provisioner{prov}, InstanceTypes: plantest.Catalogs(prov), Region: "us-east-1",
		DaemonSets: []*appsv1.DaemonSet{agent}}
	// An existing node as it registered, with its DaemonSet pod and pods bound to it.
	existing := func(name, instanceType string, pods ...*v1.Pod) {
		it := byName[instanceType]
		tmpl := NewTemplate(klog.Background(), prov, it, it.Offerings[0], in.Region, name, nil, in.DaemonSets)
		in.Nodes = append(in.Nodes, tmpl.Node())
		in.ScheduledPods = append(in.ScheduledPods, tmpl.DaemonPods...)
		in.ScheduledPods = append(in.ScheduledPods, boundTo(name, pods)...)
	}
	web := func(name string) *v1.Pod {
		return plantest.PendingPod(name, "1").Label("app", "web").
			PodAntiAffinityExists("app", v1.LabelHostname, st.PodAntiAffinityWithRequiredReq).Obj()
	}
	existing("node-a", "t3a.xlarge", web("a1"), plantest.PendingPod("a2", "1").Obj())
	existing("node-b", "t3a.xlarge", web("b1"), plantest.PendingPod("b2", "2").Obj())
	existing("node-c", "t3a.2xlarge", web("c1"), plantest.PendingPod("c2", "4").Obj())
	return in
}

// rejections returns why the scheduler's own filters reject pods of the cluster once they run
// where result, a plan of in, put them: in's nodes and pods, the pods added to existing
// nodes, and the new nodes as they register, as their templates. None means every pod fits.
func rejections(ctx context.Context, t *testing.T, in Input, result *Result) []string {
	nodes, pods := registeredAsTemplates(result.Nodes)
	nodes = append(nodes, in.Nodes...)
	pods = append(pods, in.ScheduledPods...)
	for _, a := range result.Added {
		pods = append(pods, boundTo(a.Node, a.Pods)...)
	}
	newFramework := FrameworkFactoryWith(nil, nil, nil, nil)
	var out []string
	for _, pod := range pods {
		if msg := rejection(ctx, t, newFramework, pod, pod.Spec.NodeName, nodes, pods); msg != "" {
			out = append(out, fmt.Sprintf("pod %s rejected by node %s: %s", pod.Name, pod.Spec.NodeName, msg))
		}
	}
	return out
}

// registeredAsTemplates returns planned nodes as they register, each as its template, with
// their DaemonSet pods and planned pods bound to them.
func registeredAsTemplates(planned []*PlannedNode) ([]*v1.Node, []*v1.Pod) {
	var nodes []*v1.Node
	var pods []*v1.Pod
	for _, n := range planned {
		node, on := n.Registered()
		nodes = append(nodes, node)
		pods = append(pods, on...)
	}
	return nodes, pods
}
