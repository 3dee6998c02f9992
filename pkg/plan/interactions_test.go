package plan

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
)

// TestFilterInteractionsCoverDefaultProfile: every Filter plugin of kube-scheduler's default
// profile is in the audit of interactions between pods. A Kubernetes upgrade that adds one
// fails here until the audit says how its verdict depends on other pods.
func TestFilterInteractionsCoverDefaultProfile(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	fw, err := DefaultFrameworkFactory(nil, nil)(ctx, newSnapshot(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fw.ListPlugins().Filter.Enabled {
		if _, ok := filterInteractions[p.Name]; !ok {
			t.Errorf("Filter plugin %s of the default profile is not in filterInteractions", p.Name)
		}
	}
}

// hostPortPods returns the pods of deployments, each a host port and a replica count, named
// <port>-<i>, each requesting 100m.
func hostPortPods(deployments map[int32]int) []*v1.Pod {
	var out []*v1.Pod
	for port, replicas := range deployments {
		for i := range replicas {
			out = append(out, hostPortPod(plantest.PendingPod(fmt.Sprintf("%d-%d", port, i), "100m").Label("app", fmt.Sprint(port)), port).Obj())
		}
	}
	return out
}

// portsPerNode returns, by planned node, how many pods use each host port.
func portsPerNode(plan *Result) map[string]map[int32]int {
	out := map[string]map[int32]int{}
	for _, n := range plan.Nodes {
		out[n.Name] = map[int32]int{}
		for _, pod := range n.Pods {
			for _, c := range pod.Spec.Containers {
				for _, p := range c.Ports {
					if p.HostPort > 0 {
						out[n.Name][p.HostPort]++
					}
				}
			}
		}
	}
	return out
}

// TestPlanHostPorts: pods that share a host port never share a planned node (NodePorts),
// though their requests would all fit one: as many nodes as the largest deployment has
// replicas, each node with one pod of each port at most.
func TestPlanHostPorts(t *testing.T) {
	withPort := func(port int32) func(*appsv1.DaemonSet) {
		return func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: port, HostPort: port, Protocol: v1.ProtocolTCP}}
		}
	}
	tests := []struct {
		name        string
		deployments map[int32]int
		daemonSets  []func(*appsv1.DaemonSet)
		wantNodes   int
		// wantUnplanned is how many pods no node is planned for.
		wantUnplanned int
	}{
		{name: "three deployments of 3, 3 and 2 replicas -> 3 nodes", deployments: map[int32]int{80: 3, 8080: 3, 9090: 2}, wantNodes: 3},
		{name: "one deployment of 5 -> 5 nodes", deployments: map[int32]int{80: 5}, wantNodes: 5},
		{name: "different ports share a node", deployments: map[int32]int{80: 1, 8080: 1, 9090: 1}, wantNodes: 1},
		{name: "a DaemonSet holding the port leaves no node for the pods", deployments: map[int32]int{9100: 2, 80: 1},
			daemonSets: []func(*appsv1.DaemonSet){withPort(9100)}, wantNodes: 1, wantUnplanned: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			in := planInput(hostPortPods(tc.deployments), plantest.Provisioner("default"))
			for _, edit := range tc.daemonSets {
				ds := plantest.DaemonSet("exporter", "100m")
				edit(ds)
				in.DaemonSets = append(in.DaemonSets, ds)
			}
			plan, err := Plan(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Nodes) != tc.wantNodes || len(plan.Unplanned) != tc.wantUnplanned {
				t.Errorf("%d nodes, %d pods unplanned; want %d and %d", len(plan.Nodes), len(plan.Unplanned), tc.wantNodes, tc.wantUnplanned)
			}
			for node, ports := range portsPerNode(plan) {
				for port, n := range ports {
					if n > 1 {
						t.Errorf("node %s has %d pods with host port %d", node, n, port)
					}
				}
			}
		})
	}
}

// TestCheckPlacedSharedHostPort: a pod checked in place on a node where another pod uses its
// host port is rejected, and checking it leaves the other pod's port in use. NodeInfo keeps
// ports as a set: taking the pod out to check it freed the port for both before.
func TestCheckPlacedSharedHostPort(t *testing.T) {
	logger, ctx := ktesting.NewTestContext(t)
	t1 := NewTemplate(logger, plantest.Provisioner("default"), plantest.Catalog()[0], plantest.Catalog()[0].Offerings[0], "us-east-1", "node-a", nil, nil)
	pods := hostPortPods(map[int32]int{80: 2})
	sim, err := NewSimulator(ctx, DefaultFrameworkFactory(nil, nil), []*v1.Node{t1.Node()}, boundTo("node-a", pods), false)
	if err != nil {
		t.Fatal(err)
	}
	placed := sim.snap.nodes["node-a"].Pods
	for range 2 {
		for _, pi := range placed {
			if st := sim.CheckPlaced(ctx, logger, pi.GetPod(), "node-a"); st.IsSuccess() {
				t.Errorf("pod %s accepted next to another pod with its host port", pi.GetPod().Name)
			}
		}
	}
	if err := sim.snap.removePod(logger, placed[0].GetPod(), "node-a"); err != nil {
		t.Fatal(err)
	}
	if !sim.snap.nodes["node-a"].UsedPorts.CheckConflict("", "TCP", 80) {
		t.Error("removing one of two pods with host port 80 freed the port of the other")
	}
}

// podsPerApp is an out-of-tree Filter plugin that lets one pod of each app label onto a
// node: an interaction between pods that nodewright cannot know of.
type podsPerApp struct{}

func (podsPerApp) Name() string { return "OnePodPerApp" }

func (podsPerApp) Filter(_ context.Context, _ fwk.CycleState, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	for _, pi := range ni.GetPods() {
		if pi.GetPod().Labels["app"] != "" && pi.GetPod().Labels["app"] == pod.Labels["app"] {
			return fwk.NewStatus(fwk.Unschedulable, "node has a pod of the app")
		}
	}
	return nil
}

// TestPlanUnauditedFilterPlugin: under a profile with a Filter plugin the audit does not know,
// every pod is checked with the plugins next to the pods planned before it, so a plugin that
// compares pods on a node is obeyed: 3 pods of one app on 3 nodes, not packed onto one.
func TestPlanUnauditedFilterPlugin(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	fw, err := DefaultFrameworkFactory(nil, nil)(ctx, newSnapshot(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	enabled := fw.ListPlugins()
	enabled.Filter.Enabled = append(enabled.Filter.Enabled, config.Plugin{Name: "OnePodPerApp"})
	outOfTree := frameworkruntime.Registry{"OnePodPerApp": func(context.Context, runtime.Object, fwk.Handle) (fwk.Plugin, error) {
		return podsPerApp{}, nil
	}}
	var ps []*v1.Pod
	for i := range 3 {
		ps = append(ps, plantest.PendingPod(fmt.Sprintf("web-%d", i), "100m").Label("app", "web").Obj())
	}
	in := planInput(ps, plantest.Provisioner("default"))
	in.Framework = FrameworkFactoryWith(enabled, nil, outOfTree, nil)
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, n := range plan.Nodes {
		got = append(got, len(n.Pods))
	}
	if diff := cmp.Diff([]int{1, 1, 1}, got); diff != "" {
		t.Errorf("pods per planned node (-want, +got):\n%s", diff)
	}
}

var _ fwk.FilterPlugin = podsPerApp{}

// hostPortPod is a pod of app using hostPort, for the random tests.
func hostPortPod(w *st.PodWrapper, port int32) *st.PodWrapper {
	return w.ContainerPort([]v1.ContainerPort{{ContainerPort: port, HostPort: port, Protocol: v1.ProtocolTCP}})
}
