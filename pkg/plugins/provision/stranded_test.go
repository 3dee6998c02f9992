package provision

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// randomPods returns 1-8 pods with random requests, zone or arch selectors, tolerations of
// the provisioner's taint, zone or hostname topology spread and hostname anti-affinity.
func randomPods(r *rand.Rand, c int) []*v1.Pod {
	var pods []*v1.Pod
	for i := range 1 + r.IntN(8) {
		app := fmt.Sprintf("app-%d", r.IntN(3))
		w := pendingPod(fmt.Sprintf("c%d-p%d", c, i), fmt.Sprintf("%dm", 100+r.IntN(4000))).Label("app", app)
		switch r.IntN(4) {
		case 0:
			w = w.NodeSelector(map[string]string{v1.LabelTopologyZone: testZones[r.IntN(len(testZones))]})
		case 1:
			w = w.NodeSelector(map[string]string{v1.LabelArchStable: []string{"amd64", "arm64"}[r.IntN(2)]})
		}
		if r.IntN(2) == 0 {
			w = w.Toleration("team")
		}
		switch r.IntN(4) {
		case 0:
			w = w.SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule, st.MakeLabelSelector().In("app", []string{app}).Obj(), nil, nil, nil, nil)
		case 1:
			w = w.SpreadConstraint(1+r.IntN(2), v1.LabelHostname, v1.DoNotSchedule, st.MakeLabelSelector().In("app", []string{app}).Obj(), nil, nil, nil, nil)
		case 2:
			w = w.PodAntiAffinityIn("app", v1.LabelHostname, []string{app}, st.PodAntiAffinityWithRequiredReq)
		}
		pods = append(pods, w.Obj())
	}
	return pods
}

// registered returns planned nodes as they register, each as one of its options (any may be
// launched), and their DaemonSet pods and planned pods bound to them.
func registered(r *rand.Rand, planned []*PlannedNode) ([]*v1.Node, []*v1.Pod) {
	var nodes []*v1.Node
	var pods []*v1.Pod
	for _, n := range planned {
		opt := n.Options[r.IntN(len(n.Options))].renamed(n.Name)
		nodes = append(nodes, opt.Node)
		pods = append(pods, opt.DaemonPods...)
		pods = append(pods, boundTo(n.Name, n.Pods)...)
	}
	return nodes, pods
}

// boundTo returns copies of pods bound to the node named node.
func boundTo(node string, pods []*v1.Pod) []*v1.Pod {
	out := make([]*v1.Pod, len(pods))
	for i, pod := range pods {
		out[i] = pod.DeepCopy()
		out[i].Spec.NodeName = node
	}
	return out
}

// rejection returns why the scheduler's PreFilter and Filter plugins, with a framework and a
// scheduler cache snapshot of their own over nodes and pods (pod among them or not), reject
// pod on the node named nodeName; "" if they accept it.
func rejection(ctx context.Context, t *testing.T, pod *v1.Pod, nodeName string, nodes []*v1.Node, pods []*v1.Pod) string {
	t.Helper()
	var others []*v1.Pod
	for _, q := range pods {
		if q.UID != pod.UID {
			others = append(others, q)
		}
	}
	snap := cache.NewSnapshot(others, nodes)
	fw, err := DefaultFrameworkFactory(nil, nil)(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	state := framework.NewCycleState()
	if _, s, _ := fw.RunPreFilterPlugins(ctx, state, pod); !s.IsSuccess() {
		return "PreFilter: " + s.Message()
	}
	ni, err := snap.NodeInfos().Get(nodeName)
	if err != nil {
		t.Fatal(err)
	}
	if s := fw.RunFilterPlugins(ctx, state, pod, ni); !s.IsSuccess() {
		return s.Message()
	}
	return ""
}

// TestNoStrandedPods plans random pods and then checks every planned pod, with a framework
// and a scheduler cache snapshot of its own, on its planned node turned into a real node
// with every other planned pod in place: the scheduler must accept each.
func TestNoStrandedPods(t *testing.T) {
	const cases = 300
	r := rand.New(rand.NewPCG(6, 2026))
	planned, unplanned := 0, 0
	for c := range cases {
		_, ctx := ktesting.NewTestContext(t)
		provs := []*v1alpha1.Provisioner{provisioner("default")}
		if r.IntN(2) == 0 {
			provs = append(provs, provisioner("tainted", func(p *v1alpha1.Provisioner) {
				p.Spec.Taints = []v1alpha1.Taint{{Key: "team", Value: "x", Effect: v1.TaintEffectNoSchedule}}
			}))
		}
		in := planInput(randomPods(r, c), provs...)
		if r.IntN(3) == 0 {
			in.DaemonSets = append(in.DaemonSets, daemonSet("agent", fmt.Sprintf("%dm", 100+r.IntN(900))))
		}
		plan, err := Plan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		unplanned += len(plan.Unplanned)
		nodes, all := registered(r, plan.Nodes)
		for _, n := range plan.Nodes {
			for _, p := range n.Pods {
				planned++
				if msg := rejection(ctx, t, p, n.Name, nodes, all); msg != "" {
					t.Errorf("case %d: pod %s stranded on %s (%s): %s", c, p.Name, n.Name, n.Template.Key, msg)
				}
			}
		}
	}
	t.Logf("%d cases: %d pods planned and confirmed, %d left unplanned", cases, planned, unplanned)
	if planned < cases {
		t.Errorf("only %d pods planned over %d cases: the test proves little", planned, cases)
	}
}
