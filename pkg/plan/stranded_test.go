package plan

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// randomPods returns 1-8 pods with random requests, zone or arch selectors, tolerations of
// the provisioner's taint, zone or hostname topology spread, hostname anti-affinity,
// hostname or zone affinity to pods of an app (pending ones among them), host ports and
// ReadWriteOncePod claims (rwopClaims, see volumeCluster).
func randomPods(r *rand.Rand, c int) []*v1.Pod {
	var pods []*v1.Pod
	for i := range 1 + r.IntN(8) {
		app := fmt.Sprintf("app-%d", r.IntN(3))
		w := plantest.PendingPod(fmt.Sprintf("c%d-p%d", c, i), fmt.Sprintf("%dm", 100+r.IntN(4000))).Label("app", app)
		switch r.IntN(4) {
		case 0:
			w = w.NodeSelector(map[string]string{v1.LabelTopologyZone: plantest.Zones[r.IntN(len(plantest.Zones))]})
		case 1:
			w = w.NodeSelector(map[string]string{v1.LabelArchStable: []string{"amd64", "arm64"}[r.IntN(2)]})
		}
		if r.IntN(2) == 0 {
			w = w.Toleration("team")
		}
		// One pod in five has no inter-pod constraint.
		switch r.IntN(5) {
		case 0:
			w = w.SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule, st.MakeLabelSelector().In("app", []string{app}).Obj(), nil, nil, nil, nil)
		case 1:
			w = w.SpreadConstraint(1+r.IntN(2), v1.LabelHostname, v1.DoNotSchedule, st.MakeLabelSelector().In("app", []string{app}).Obj(), nil, nil, nil, nil)
		case 2:
			w = w.PodAntiAffinityIn("app", v1.LabelHostname, []string{app}, st.PodAntiAffinityWithRequiredReq)
		case 3:
			key := []string{v1.LabelHostname, v1.LabelTopologyZone}[r.IntN(2)]
			w = w.PodAffinityIn("app", key, []string{fmt.Sprintf("app-%d", r.IntN(3))}, st.PodAffinityWithRequiredReq)
		}
		if r.IntN(3) == 0 {
			w = hostPortPod(w, []int32{80, 8080}[r.IntN(2)])
		}
		if r.IntN(6) == 0 {
			w = w.PVC(rwopClaims[r.IntN(len(rwopClaims))])
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
		nodes = append(nodes, opt.Node())
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

// rejection returns why the scheduler's PreFilter and Filter plugins, with a framework of
// newFramework and a scheduler cache snapshot of their own over nodes and pods (pod among
// them or not), reject pod on the node named nodeName; "" if they accept it.
func rejection(ctx context.Context, t *testing.T, newFramework FrameworkFactory, pod *v1.Pod, nodeName string, nodes []*v1.Node, pods []*v1.Pod) string {
	t.Helper()
	var others []*v1.Pod
	for _, q := range pods {
		if q.UID != pod.UID {
			others = append(others, q)
		}
	}
	snap := cache.NewSnapshot(others, nodes)
	fw, err := newFramework(ctx, snap)
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
	newFramework := DefaultFrameworkFactory(nil, volumeCluster(t))
	planned, unplanned := 0, 0
	for c := range cases {
		_, ctx := ktesting.NewTestContext(t)
		provs := []*v1alpha1.Provisioner{plantest.Provisioner("default")}
		if r.IntN(2) == 0 {
			provs = append(provs, plantest.Provisioner("tainted", func(p *v1alpha1.Provisioner) {
				p.Spec.Taints = []v1alpha1.Taint{{Key: "team", Value: "x", Effect: v1.TaintEffectNoSchedule}}
			}))
		}
		in := planInput(randomPods(r, c), provs...)
		in.Framework = newFramework
		if r.IntN(3) == 0 {
			in.DaemonSets = append(in.DaemonSets, plantest.DaemonSet("agent", fmt.Sprintf("%dm", 100+r.IntN(900))))
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
				if msg := rejection(ctx, t, newFramework, p, n.Name, nodes, all); msg != "" {
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

// rwopClaims are the ReadWriteOncePod claims of volumeCluster, in namespace default: one pod
// at a time may use each.
var rwopClaims = []string{"rwop-0", "rwop-1"}

// volumeCluster returns informers over a cluster with the claims of rwopClaims, each bound
// to a CSI volume of its own that any node can attach. The informers are filled, not
// started: every simulation framework adds event handlers to them (VolumeBinding's assume
// caches), which on started informers cost goroutines per framework.
func volumeCluster(t *testing.T) informers.SharedInformerFactory {
	t.Helper()
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	claims := factory.Core().V1().PersistentVolumeClaims().Informer().GetIndexer()
	volumes := factory.Core().V1().PersistentVolumes().Informer().GetIndexer()
	for _, name := range rwopClaims {
		modes := []v1.PersistentVolumeAccessMode{v1.ReadWriteOncePod}
		size := v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}
		pvc := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec:   v1.PersistentVolumeClaimSpec{AccessModes: modes, VolumeName: "pv-" + name, Resources: v1.VolumeResourceRequirements{Requests: size}},
			Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, AccessModes: modes, Capacity: size}}
		pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + name},
			Spec: v1.PersistentVolumeSpec{AccessModes: modes, Capacity: size,
				ClaimRef:               &v1.ObjectReference{Namespace: "default", Name: name},
				PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "ebs.csi.aws.com", VolumeHandle: "vol-" + name}}},
			Status: v1.PersistentVolumeStatus{Phase: v1.VolumeBound}}
		if err := claims.Add(pvc); err != nil {
			t.Fatal(err)
		}
		if err := volumes.Add(pv); err != nil {
			t.Fatal(err)
		}
	}
	return factory
}
