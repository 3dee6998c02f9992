package provision

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// informerHandle is a framework handle with informers.
type informerHandle struct {
	fwk.Handle
	factory informers.SharedInformerFactory
}

func (h informerHandle) SharedInformerFactory() informers.SharedInformerFactory { return h.factory }

func (informerHandle) ProfileName() string { return "nodewright-scheduler" }

// TestPreFilterAndFilterKeepReservedRoom: a pod reserved on a claim may go only to its node,
// and waits while the claim has not launched; no other pod may go on a new node while pods it was launched for are pending.
func TestPreFilterAndFilterKeepReservedRoom(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := plantest.PendingPod("a", "2").Obj(), plantest.PendingPod("b", "1").Obj()
	client := fake.NewClientset(a, b)
	factory := informers.NewSharedInformerFactory(client, 0)
	lister := factory.Core().V1().Pods().Lister()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	p := newProvision(&deps{handle: informerHandle{factory: factory}, ledger: NewLedger()}, false)
	p.ledger.Rebuild([]*v1alpha1.NodeClaim{registeredAt(plantest.Claim("c1", "node-1", "a", "b"), time.Now()), plantest.Claim("c2", "node-2", "z"), plantest.Claim("c3", "", "w")})
	if err := p.followPods(factory); err != nil {
		t.Fatal(err)
	}
	node := st.MakeNode().Name("node-1").Label(v1alpha1.LabelNodeClaim, "c1").
		Capacity(map[v1.ResourceName]string{v1.ResourceCPU: "4", v1.ResourceMemory: "8Gi", v1.ResourcePods: "110"}).Obj()
	nodeInfo := framework.NewNodeInfo()
	nodeInfo.SetNode(node)

	if res, _ := p.PreFilter(ctx, nil, a, nil); res.AllNodes() || !res.NodeNames.Equal(sets.New("node-1")) {
		t.Errorf("PreFilter(reserved pod a) = %v, want node-1 only", res)
	}
	if res, _ := p.PreFilter(ctx, nil, plantest.PendingPod("z", "1").Obj(), nil); res.AllNodes() || !res.NodeNames.Equal(sets.New("node-2")) {
		t.Errorf("PreFilter(z, reserved on c2, not registered yet) = %v, want node-2 only", res)
	}
	if res, st := p.PreFilter(ctx, nil, plantest.PendingPod("w", "1").Obj(), nil); res != nil || st.Code() != fwk.Unschedulable {
		t.Errorf("PreFilter(w, reserved on c3, not launched) = %v, %v; want unschedulable, waiting", res, st)
	}
	if res, _ := p.PreFilter(ctx, nil, plantest.PendingPod("x", "2").Obj(), nil); !res.AllNodes() {
		t.Errorf("PreFilter(x, unreserved) = %v, want every node", res)
	}

	filter := func(pod *v1.Pod) *fwk.Status { return p.Filter(ctx, nil, pod, nodeInfo) }
	// Held for a and b: no other pod, however small, reserved elsewhere or not; a itself fits.
	for _, pod := range []*v1.Pod{plantest.PendingPod("x", "2").Obj(), plantest.PendingPod("y", "100m").Obj(), plantest.PendingPod("z", "100m").Obj()} {
		if st := filter(pod); st.IsSuccess() || !strings.Contains(st.Message(), "node held for 2 pending pod(s) of nodeclaim c1") {
			t.Errorf("Filter(%s) = %v, want rejected: the node is held", pod.Name, st)
		}
	}
	if st := filter(a); !st.IsSuccess() {
		t.Errorf("Filter(a, reserved here) = %v, want accepted", st)
	}
	// Once a and b are bound the room is the node's own again.
	for _, pod := range []*v1.Pod{a, b} {
		bound := pod.DeepCopy()
		bound.Spec.NodeName = "node-1"
		if _, err := client.CoreV1().Pods(pod.Namespace).Update(ctx, bound, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := lister.Pods("default").Get("b")
		if err == nil && got.Spec.NodeName != "" {
			if got, err := lister.Pods("default").Get("a"); err == nil && got.Spec.NodeName != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer did not see the pods bound")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := filter(plantest.PendingPod("x", "2").Obj()); !st.IsSuccess() {
		t.Errorf("Filter(x, 2 cpu) after the reserved pods bound = %v, want accepted", st)
	}
	// A node of nodewright's that no claim is known for yet is held too; any other is free.
	unmatched := framework.NewNodeInfo()
	unmatched.SetNode(st.MakeNode().Name("node-9").Label(v1alpha1.LabelProvisionerName, "default").Obj())
	if st := p.Filter(ctx, nil, plantest.PendingPod("x", "2").Obj(), unmatched); st.IsSuccess() {
		t.Error("Filter(x) on a nodewright node matched to no claim yet: accepted, want held")
	}
	other := framework.NewNodeInfo()
	other.SetNode(st.MakeNode().Name("node-0").Obj())
	if st := p.Filter(ctx, nil, plantest.PendingPod("x", "2").Obj(), other); !st.IsSuccess() {
		t.Errorf("Filter(x) on a node not of nodewright = %v, want accepted", st)
	}
	if !p.ledger.isSettled("c1") {
		t.Error("claim c1 not settled once its pods are bound")
	}
}

// noZoneB is an out-of-tree Filter plugin that refuses nodes in us-east-1b.
type noZoneB struct{}

func (noZoneB) Name() string { return "NoZoneB" }

func (noZoneB) Filter(_ context.Context, _ fwk.CycleState, _ *v1.Pod, n fwk.NodeInfo) *fwk.Status {
	if n.Node().Labels[v1.LabelTopologyZone] == "us-east-1b" {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "no nodes in us-east-1b")
	}
	return nil
}

// TestPlanHonoursOutOfTreeFilters: an out-of-tree Filter plugin of the profile judges the
// templates too: a pod that only it rejects in us-east-1b gets no node there.
func TestPlanHonoursOutOfTreeFilters(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	enabled := &config.Plugins{
		QueueSort: config.PluginSet{Enabled: []config.Plugin{{Name: names.PrioritySort}}},
		PreFilter: config.PluginSet{Enabled: []config.Plugin{{Name: names.NodeResourcesFit}, {Name: names.NodeAffinity}}},
		Filter: config.PluginSet{Enabled: []config.Plugin{{Name: names.NodeResourcesFit}, {Name: names.NodeAffinity},
			{Name: "NoZoneB"}, {Name: Name}}},
		Bind: config.PluginSet{Enabled: []config.Plugin{{Name: names.DefaultBinder}}},
	}
	outOfTree := frameworkruntime.Registry{"NoZoneB": func(context.Context, runtime.Object, fwk.Handle) (fwk.Plugin, error) { return noZoneB{}, nil }}
	pod := plantest.PendingPod("a", "1").NodeSelector(map[string]string{v1.LabelTopologyZone: "us-east-1b"}).Obj()
	for _, tc := range []struct {
		registry frameworkruntime.Registry
		planned  bool
	}{{nil, true}, {outOfTree, false}} {
		prov := plantest.Provisioner("default")
		in := plan.Input{Pods: []*v1.Pod{pod}, Provisioners: []*v1alpha1.Provisioner{prov}, InstanceTypes: plantest.Catalogs(prov), Region: "us-east-1"}
		in.Framework = plan.FrameworkFactoryWith(enabled, nil, tc.registry, nil)
		result, err := plan.Plan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(result.Nodes) == 1; got != tc.planned {
			t.Errorf("with out-of-tree plugins %v: planned = %v, want %v (unplanned: %v)", tc.registry != nil, got, tc.planned, result.Unplanned)
		}
		if !tc.planned && (len(result.Unplanned) != 1 || !strings.Contains(result.Unplanned[0].Message(), "no nodes in us-east-1b")) {
			t.Errorf("unplanned = %v, want the plugin's reason", result.Unplanned)
		}
	}
}

// TestWithInFlight: a round sees the pending pods of an earlier round's claim on a stand-in
// of its node, with the zone the claim launches in, and nothing of a settled claim; a
// launched claim whose node has not registered stands in too, with its instance, for its
// spare room, pods pending or not, but not once its node exists or it terminates.
func TestWithInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := plantest.PendingPod("a", "1").Label("app", "web").Obj()
	factory := informers.NewSharedInformerFactory(fake.NewClientset(a), 0)
	factory.Core().V1().Pods().Lister()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	p := newProvision(&deps{handle: informerHandle{factory: factory}, ledger: NewLedger(), args: &Args{Region: "us-east-1"}}, false)
	c1 := plantest.Claim("c1", "", "a")
	c1.Spec.Requirements = []v1alpha1.NodeSelectorRequirement{{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{"us-east-1b"}}}
	launched := func(nc *v1alpha1.NodeClaim) *v1alpha1.NodeClaim {
		nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType = "m5.large", "us-east-1c", "spot"
		return nc
	}
	c4 := launched(plantest.Claim("c4", "node-4"))
	c4.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionTerminating, Status: metav1.ConditionTrue}}
	p.ledger.Rebuild([]*v1alpha1.NodeClaim{c1, plantest.Claim("c2", "node-2", "gone"), launched(plantest.Claim("c3", "node-3", "gone")), c4,
		launched(plantest.Claim("c5", "node-5"))})
	existing := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-5"}}
	nodes, bound, room, reserved := p.withClaims([]*v1.Node{existing}, nil, []*v1.Pod{a})
	if len(nodes) != 3 || len(bound) != 1 {
		t.Fatalf("withClaims gave %d nodes and %d pods, want 3 (node-5, nodeclaim-c1, node-3) and 1", len(nodes), len(bound))
	}
	if !reserved.Equal(sets.New(a.UID)) {
		t.Errorf("reserved pods %v, want a's UID: the pending pod on a stand-in", sets.List(reserved))
	}
	nodes = nodes[1:]
	want := []plan.LaunchedNode{{Claim: "c3", Node: "node-3", Provisioner: "default", InstanceType: "m5.large", Zone: "us-east-1c", CapacityType: "spot"}}
	if !reflect.DeepEqual(room, want) {
		t.Errorf("in-flight nodes with room %+v, want %+v", room, want)
	}
	if n := nodes[0]; n.Name != "nodeclaim-c1" || n.Labels[v1.LabelTopologyZone] != "us-east-1b" || n.Labels[v1.LabelHostname] != "nodeclaim-c1" {
		t.Errorf("stand-in node %s labels %v, want nodeclaim-c1 in us-east-1b", n.Name, n.Labels)
	}
	if bound[0].Name != "a" || bound[0].Spec.NodeName != "nodeclaim-c1" || a.Spec.NodeName != "" {
		t.Errorf("pod %s on %q (the lister's copy on %q), want a on nodeclaim-c1 and the lister's untouched", bound[0].Name, bound[0].Spec.NodeName, a.Spec.NodeName)
	}
}

// TestWithClaimsCountsPodsAsListed: a round counts a pod reserved on a claim as the listing
// it plans from shows it, pending on the claim's node, even if the pod has bound since (the
// informer says so by the time withClaims runs): read twice, a pod that bound in between was
// counted nowhere, and the pods whose zone spread counted it were stranded (a scale-up in
// waves).
func TestWithClaimsCountsPodsAsListed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listed := plantest.PendingPod("a", "1").Obj()
	now := listed.DeepCopy()
	now.Spec.NodeName = "node-1"
	factory := informers.NewSharedInformerFactory(fake.NewClientset(now), 0)
	factory.Core().V1().Pods().Lister()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	p := newProvision(&deps{handle: informerHandle{factory: factory}, ledger: NewLedger(), args: &Args{Region: "us-east-1"}}, false)
	p.ledger.Rebuild([]*v1alpha1.NodeClaim{plantest.Claim("c1", "node-1", "a")})
	_, bound, _, reserved := p.withClaims(nil, nil, []*v1.Pod{listed})
	if len(bound) != 1 || bound[0].Spec.NodeName != "node-1" || !reserved.Has(listed.UID) {
		t.Errorf("withClaims counted %v (reserved %v), want a on node-1, reserved", podNamesOf(bound), sets.List(reserved))
	}
}

// webSpread labels w app=web and spreads it over zones with the other app=web pods (maxSkew
// 1, DoNotSchedule).
func webSpread(w *st.PodWrapper) *st.PodWrapper {
	return w.Label("app", "web").SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule,
		st.MakeLabelSelector().Label("app", "web").Obj(), nil, nil, nil, nil)
}

// TestPreFilterWaitsForReservedPodsItConstrains: an unreserved pod whose topology spread
// selects a pod still pending on its NodeClaim (or is selected by one) waits for that pod to
// bind; a pod that has nothing to do with it does not wait.
func TestPreFilterWaitsForReservedPodsItConstrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reserved := webSpread(plantest.PendingPod("a", "1")).Obj()
	sibling := webSpread(plantest.PendingPod("x", "1")).Obj()
	selected := plantest.PendingPod("y", "1").Label("app", "web").Obj()
	unrelated := plantest.PendingPod("z", "1").Label("app", "db").Obj()
	client := fake.NewClientset(reserved, sibling, selected, unrelated)
	factory := informers.NewSharedInformerFactory(client, 0)
	lister := factory.Core().V1().Pods().Lister()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	p := newProvision(&deps{handle: informerHandle{factory: factory}, ledger: NewLedger()}, false)
	p.ledger.Rebuild([]*v1alpha1.NodeClaim{plantest.Claim("c1", "", "a")})
	for _, tt := range []struct {
		pod  *v1.Pod
		wait bool
	}{{sibling, true}, {selected, true}, {unrelated, false}} {
		_, status := p.PreFilter(ctx, nil, tt.pod, nil)
		if waits := status.Code() == fwk.Unschedulable; waits != tt.wait {
			t.Errorf("PreFilter(%s) = %v; want waiting %v", tt.pod.Name, status, tt.wait)
		}
	}
	bound := reserved.DeepCopy()
	bound.Spec.NodeName = "node-1"
	if _, err := client.CoreV1().Pods("default").Update(ctx, bound, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, err := lister.Pods("default").Get("a"); err == nil && got.Spec.NodeName != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer did not see the pod bound")
		}
	}
	if _, status := p.PreFilter(ctx, nil, sibling, nil); !status.IsSuccess() {
		t.Errorf("PreFilter(x) after the reserved pod bound = %v, want no wait", status)
	}
}

// TestPreFilterWaitsForDefaultSpreadSiblings: under a profile whose default spread
// constraints filter, an unreserved pod of the same controller as a pod still pending on its
// NodeClaim, neither with constraints of its own, waits for it to bind; other pods do not,
// and nothing waits under the default profile.
func TestPreFilterWaitsForDefaultSpreadSiblings(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	owned := func(name, owner string) *v1.Pod {
		pod := plantest.PendingPod(name, "1").OwnerReference(owner, appsv1.SchemeGroupVersion.WithKind("ReplicaSet")).Obj()
		pod.OwnerReferences[0].UID = types.UID("rs-" + owner)
		return pod
	}
	reserved, sibling, other, orphan := owned("a", "web"), owned("x", "web"), owned("y", "api"), plantest.PendingPod("z", "1").Obj()
	factory := informers.NewSharedInformerFactory(fake.NewClientset(reserved, sibling, other, orphan), 0)
	factory.Core().V1().Pods().Lister()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for _, hard := range []bool{true, false} {
		p := newProvision(&deps{handle: informerHandle{factory: factory}, ledger: NewLedger()}, hard)
		p.ledger.Rebuild([]*v1alpha1.NodeClaim{plantest.Claim("c1", "", "a")})
		for _, tt := range []struct {
			pod  *v1.Pod
			wait bool
		}{{sibling, hard}, {other, false}, {orphan, false}} {
			_, status := p.PreFilter(ctx, nil, tt.pod, nil)
			if waits := status.Code() == fwk.Unschedulable; waits != tt.wait {
				t.Errorf("hard default spread %v: PreFilter(%s) = %v; want waiting %v", hard, tt.pod.Name, status, tt.wait)
			}
		}
	}
}
