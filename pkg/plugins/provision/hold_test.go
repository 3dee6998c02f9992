package provision

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	cloudfake "github.com/nodewright/nodewright/pkg/cloud/fake"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
)

// holdingPlugin returns a plugin with a cloud, on a fake clock, whose informers hold objs
// and whose handle records the pods it activates, the pods it triggered rounds for, and the
// test's context, which ends with the test.
func holdingPlugin(t *testing.T, objs ...runtime.Object) (*Provision, *activatingHandle, *clocktesting.FakeClock, *[]types.UID, context.Context) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactory(fake.NewClientset(objs...), 0)
	factory.Core().V1().Pods().Informer()
	factory.Core().V1().Nodes().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	clk := clocktesting.NewFakeClock(time.Now())
	h := &activatingHandle{informerHandle: informerHandle{factory: factory}}
	args := &Args{}
	args.SetDefaults()
	d := &deps{args: args, handle: h, opts: Options{Clock: clk, Cloud: &cloudfake.Provider{}}, ledger: NewLedger(), spread: newSpreadGate()}
	p := newProvision(d, false)
	var triggered []types.UID
	p.holds = newHolds(d, func(uid types.UID) { triggered = append(triggered, uid) }, p.reserved.holdsBack)
	return p, h, clk, &triggered, ctx
}

func isHeld(t *testing.T, p *Provision, pod *v1.Pod) bool {
	t.Helper()
	st := p.PreEnqueue(context.Background(), pod)
	if !st.IsSuccess() && st.Code() != fwk.UnschedulableAndUnresolvable {
		t.Fatalf("PreEnqueue(%s) = %v", pod.Name, st)
	}
	return !st.IsSuccess()
}

// TestPreEnqueueHoldsPodsForTheirRound: PreEnqueue holds a pod of the profile the scheduler
// has not tried that fits no node's free room, and starts a window for it; not a pod that
// fits a node, was tried, is reserved, nominated, gated or another scheduler's. A round
// releases at once the pods held before it started that it does not take, and when it ends
// those it did not reserve; not those held meanwhile. A reserved pod stays held until its
// claim's node registers (its activation), or the claim goes. A released pod is never held
// again.
func TestPreEnqueueHoldsPodsForTheirRound(t *testing.T) {
	p, h, _, triggered, ctx := holdingPlugin(t, roomNode("n", "2", "8Gi", "110"), plantest.PendingPod("bound", "1").Node("n").Obj())
	p.ledger.Set(plantest.Claim("c0", "", "reserved"))
	for _, tc := range []struct {
		pod  *v1.Pod
		want bool
	}{
		{plantest.PendingPod("big", "2").Obj(), true},
		{plantest.PendingPod("fits", "500m").Obj(), false},
		{plantest.PendingPod("tried", "2").Condition(v1.PodScheduled, v1.ConditionFalse, v1.PodReasonUnschedulable).Obj(), false},
		{plantest.PendingPod("reserved", "2").Obj(), false},
		{plantest.PendingPod("nominated", "2").NominatedNodeName("n").Obj(), false},
		{plantest.PendingPod("gated", "2").SchedulingGates([]string{"example.com/wait"}).Obj(), false},
		{plantest.PendingPod("other", "2").SchedulerName("default-scheduler").Obj(), false},
	} {
		if got := isHeld(t, p, tc.pod); got != tc.want {
			t.Errorf("%s: held = %v, want %v", tc.pod.Name, got, tc.want)
		}
	}
	if !slices.Equal(*triggered, []types.UID{"big"}) {
		t.Errorf("triggered rounds for %v, want [big]", *triggered)
	}
	big, unplanned, left := plantest.PendingPod("big", "2").Obj(), plantest.PendingPod("unplanned", "3").Obj(), plantest.PendingPod("left", "3").Obj()
	if !isHeld(t, p, big) || !isHeld(t, p, unplanned) || !isHeld(t, p, left) {
		t.Fatal("pods that fit no node are not held, or not held when PreEnqueue runs again")
	}

	round := p.holds.startRound()
	late := plantest.PendingPod("late", "4").Obj()
	if !isHeld(t, p, late) {
		t.Fatal("a pod arriving during a round is not held for the next")
	}
	taken := func(pod *v1.Pod) bool { return pod.Name != "left" }
	if n := p.holds.release(klog.FromContext(ctx), round, false, taken); n != 1 || !slices.Equal(h.activated, []string{"default/left"}) {
		t.Fatalf("the round released %d pods as it started, activated %v; want left only", n, h.activated)
	}
	p.ledger.Set(plantest.Claim("c1", "", "big"))
	reserved := func(pod *v1.Pod) bool { _, _, ok := p.ledger.Reservation(pod.UID); return ok }
	if n := p.holds.release(klog.FromContext(ctx), round, true, reserved); n != 1 || !slices.Equal(h.activated, []string{"default/left", "default/unplanned"}) {
		t.Fatalf("the round released %d pods as it ended, activated %v; want unplanned", n, h.activated)
	}
	for _, pod := range []*v1.Pod{left, unplanned} {
		if isHeld(t, p, pod) {
			t.Errorf("%s: a released pod is held again", pod.Name)
		}
	}
	if !isHeld(t, p, late) {
		t.Error("the next round's pod was released by this one")
	}
	if !isHeld(t, p, big) {
		t.Fatal("a reserved pod is released before its node registers")
	}
	next := p.holds.startRound()
	if n := p.holds.release(klog.FromContext(ctx), next, false, func(pod *v1.Pod) bool { return pod.Name == "late" }); n != 0 || !isHeld(t, p, big) {
		t.Fatalf("the next round released %d pods as it started; want none: big waits for its node", n)
	}
	p.reserved.activateOnce(ctx, plantest.Claim("c1", "node-1", "big"))
	if isHeld(t, p, big) {
		t.Error("a reserved pod is still held once its node registered")
	}
	p.holds.release(klog.FromContext(ctx), next, true, reserved)
	if isHeld(t, p, late) || len(p.holds.held) != 0 {
		t.Errorf("pods still held after the next round: %v", p.holds.held)
	}
	// Bound or gone, a pod is forgotten.
	for _, pod := range []*v1.Pod{big, late, left} {
		p.holds.podBound(pod)
	}
	p.holds.podGone(unplanned)
	if len(p.holds.released) != 0 {
		t.Errorf("released pods remembered after they went: %v", p.holds.released)
	}
}

// TestHeldPodsGoWhenTheirClaimGoesOrHeldTooLong: a reserved pod whose claim goes passes
// PreEnqueue (the claim's release activates it), and pods whose round has not ended by the
// limit are released by the watchdog whatever the rounds do; not those a claim holds.
func TestHeldPodsGoWhenTheirClaimGoesOrHeldTooLong(t *testing.T) {
	p, h, clk, _, ctx := holdingPlugin(t)
	a, b, c := plantest.PendingPod("a", "1").Obj(), plantest.PendingPod("b", "1").Obj(), plantest.PendingPod("c", "1").Obj()
	if !isHeld(t, p, a) || !isHeld(t, p, c) {
		t.Fatal("pods with no node at all are not held")
	}
	// A round reserves a and c, and ends; b comes after.
	round := p.holds.startRound()
	p.ledger.Set(plantest.Claim("c1", "", "a"))
	p.ledger.Set(plantest.Claim("c2", "", "c"))
	p.holds.release(klog.FromContext(ctx), round, true, func(*v1.Pod) bool { return true })
	if !isHeld(t, p, b) {
		t.Fatal("a pod with no node at all is not held")
	}
	if !isHeld(t, p, a) {
		t.Error("a pod reserved on a claim is not held while its node has not registered")
	}
	p.ledger.Delete("c1")
	if isHeld(t, p, a) {
		t.Error("a pod whose claim went is still held")
	}
	clk.Step(p.holds.limit() - time.Second)
	if len(h.activated) != 0 || !isHeld(t, p, b) {
		t.Fatalf("released before the limit: %v", h.activated)
	}
	clk.Step(time.Second)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Equal(h.activated, []string{"default/b"}), nil
	}); err != nil {
		t.Errorf("activated %v at the limit, want [default/b]", h.activated)
	}
	if isHeld(t, p, b) {
		t.Error("a pod held past the limit is still held")
	}
	if !isHeld(t, p, c) {
		t.Error("a pod a claim holds is released at the limit")
	}
}

// TestNoHoldWithoutCloudOrRoomChanged: without a cloud no round plans, so nothing is held;
// and the free room is read again once a node comes.
func TestNoHoldWithoutCloudOrRoomChanged(t *testing.T) {
	p, _, _, _, _ := holdingPlugin(t)
	p.holds.d.opts.Cloud = nil
	if isHeld(t, p, plantest.PendingPod("a", "1").Obj()) {
		t.Error("a pod is held with no cloud to plan a node on")
	}
	p.holds.d.opts.Cloud = &cloudfake.Provider{}
	if !isHeld(t, p, plantest.PendingPod("b", "1").Obj()) {
		t.Fatal("a pod with no node at all is not held")
	}
	informers := p.handle.SharedInformerFactory().Core().V1().Nodes().Informer()
	if err := informers.GetStore().Add(roomNode("n", "2", "8Gi", "110")); err != nil {
		t.Fatal(err)
	}
	p.holds.nodesChanged() // as the node informer's handler does
	if isHeld(t, p, plantest.PendingPod("c", "1").Obj()) {
		t.Error("a pod that fits a node that came is held")
	}
}

// TestHeldPodsSkipClusterEvents: no cluster event requeues a held pod (only the plugin's
// activations release it); once released, a new node does.
func TestHeldPodsSkipClusterEvents(t *testing.T) {
	p, _, _, _, ctx := holdingPlugin(t)
	pod := plantest.PendingPod("a", "1").Obj()
	if !isHeld(t, p, pod) {
		t.Fatal("a pod with no node at all is not held")
	}
	logger := klog.FromContext(ctx)
	node := roomNode("n", "2", "8Gi", "110")
	if hint, _ := p.hintNodeChange(logger, pod, nil, node); hint != fwk.QueueSkip {
		t.Errorf("a new node requeues a held pod")
	}
	if hint, _ := p.hintReservedPodGone(logger, pod, plantest.PendingPod("b", "1").Obj(), nil); hint != fwk.QueueSkip {
		t.Errorf("a pending pod's deletion requeues a held pod")
	}
	p.holds.release(logger, p.holds.startRound(), true, func(*v1.Pod) bool { return false })
	if hint, _ := p.hintNodeChange(logger, pod, nil, node); hint != fwk.Queue {
		t.Errorf("a new node does not requeue a released pod")
	}
}

// TestHeldRoomFollowsPods: the free room PreEnqueue reads follows pods binding, finishing
// and going without being read again: a pod is held while a node is full, not once a pod
// there finished or went.
func TestHeldRoomFollowsPods(t *testing.T) {
	running := plantest.PendingPod("running", "1500m").Node("n").Obj()
	p, _, _, _, _ := holdingPlugin(t, roomNode("n", "2", "8Gi", "110"), running)
	if !isHeld(t, p, plantest.PendingPod("a", "1").Obj()) {
		t.Fatal("a pod the node has no room for is not held")
	}
	newcomer := plantest.PendingPod("newcomer", "400m").Obj()
	if isHeld(t, p, newcomer) {
		t.Fatal("a pod that fits is held")
	}
	bound := newcomer.DeepCopy()
	bound.Spec.NodeName = "n"
	p.holds.podBound(bound)
	if !isHeld(t, p, plantest.PendingPod("b", "200m").Obj()) {
		t.Error("a pod is not held once a pod bound took the room it needs")
	}
	done := running.DeepCopy()
	done.Status.Phase = v1.PodSucceeded
	p.holds.podGone(running) // finished: its old self leaves the room
	p.holds.podGone(done)    // then deleted: not counted twice
	if isHeld(t, p, plantest.PendingPod("c", "1500m").Obj()) {
		t.Error("a pod is held though the pod that held the room finished")
	}
	if !isHeld(t, p, plantest.PendingPod("d", "1700m").Obj()) {
		t.Error("a finished pod's room was counted twice")
	}
}

// TestReservedPodsWaitForTheirNodeToTakeThem: the pods reserved on a claim whose node has
// registered are activated once the node loses the taints that come off a new node by
// themselves and that one of them does not tolerate (the node controller's not-ready taint,
// the claim's startup taints), not while the scheduler would only fail them; a taint they
// all tolerate does not keep them, nor one that stays (the scheduler then says the node
// rejects them); and NodeReadyWait after registration they are activated anyway, to be
// told what keeps them off the node.
func TestReservedPodsWaitForTheirNodeToTakeThem(t *testing.T) {
	var pods []*v1.Pod
	for _, name := range []string{"waiting", "tolerant", "rejected", "starting", "stuck"} {
		pod := plantest.PendingPod(name, "1")
		if name == "tolerant" {
			pod = pod.Toleration("dedicated")
		}
		pods = append(pods, pod.Obj())
	}
	p, h, clk, _, ctx := holdingPlugin(t, pods[0], pods[1], pods[2], pods[3], pods[4])
	activated := func() []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Sorted(slices.Values(h.activated))
	}
	notReady := v1.Taint{Key: v1.TaintNodeNotReady, Effect: v1.TaintEffectNoSchedule}
	dedicated := v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}
	cni := v1.Taint{Key: "example.com/cni-not-ready", Effect: v1.TaintEffectNoExecute}
	node := func(name string, taints ...v1.Taint) *v1.Node {
		return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{Taints: taints}}
	}
	// Held for their round, which reserves them on a claim each.
	for _, pod := range pods {
		if !isHeld(t, p, pod) {
			t.Fatalf("%s: a pod with no node at all is not held", pod.Name)
		}
	}
	claims := map[string]*v1alpha1.NodeClaim{}
	for i, pod := range pods {
		nc := plantest.Claim(pod.Name, fmt.Sprintf("node-%d", i), pod.Name)
		if pod.Name == "starting" {
			nc.Spec.StartupTaints = []v1alpha1.Taint{{Key: cni.Key, Effect: cni.Effect}}
		}
		claims[pod.Name] = nc
		p.ledger.Set(nc)
	}
	p.holds.release(klog.FromContext(ctx), p.holds.startRound(), true, func(*v1.Pod) bool { return true })

	p.reserved.activateWhenReady(ctx, claims["waiting"], node("node-0", notReady))
	p.reserved.activateWhenReady(ctx, claims["tolerant"], node("node-1", notReady, dedicated))
	p.reserved.activateWhenReady(ctx, claims["rejected"], node("node-2", notReady, dedicated))
	p.reserved.activateWhenReady(ctx, claims["starting"], node("node-3", cni))
	p.reserved.activateWhenReady(ctx, claims["stuck"], node("node-4", notReady))
	if got, want := activated(), []string{"default/rejected"}; !slices.Equal(got, want) {
		t.Fatalf("activated %v on nodes still settling, want %v (its node rejects it anyway)", got, want)
	}
	if !isHeld(t, p, pods[0]) {
		t.Error("a pod is released while its node is not ready")
	}
	p.reserved.activateWhenReady(ctx, claims["waiting"], node("node-0"))
	p.reserved.activateWhenReady(ctx, claims["tolerant"], node("node-1", dedicated))
	p.reserved.activateWhenReady(ctx, claims["starting"], node("node-3"))
	if got, want := activated(), []string{"default/rejected", "default/starting", "default/tolerant", "default/waiting"}; !slices.Equal(got, want) {
		t.Fatalf("activated %v once the settling taints went, want %v", got, want)
	}
	if isHeld(t, p, pods[0]) {
		t.Error("a pod is still held once its node takes it")
	}
	clk.Step(NodeReadyWait - time.Second)
	if got := activated(); slices.Contains(got, "default/stuck") {
		t.Fatalf("activated %v before NodeReadyWait", got)
	}
	clk.Step(time.Second)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return slices.Contains(activated(), "default/stuck"), nil
	}); err != nil {
		t.Errorf("activated %v NodeReadyWait after registration, want default/stuck among them", activated())
	}
}

// TestUntriedPodsThatWaitForReservedPodsGoToTheRound: a pod the scheduler has not tried that
// fits a node's free room, but whose topology spread selects a pod still pending on its
// NodeClaim, is one PreFilter would turn away until that pod binds: PreEnqueue holds it and
// starts a window for it, and the round takes it, rather than the scheduler failing it first.
// A pod unrelated to the reserved one is left to the scheduler, and so is a sibling once the
// reserved pod no longer waits for its node.
func TestUntriedPodsThatWaitForReservedPodsGoToTheRound(t *testing.T) {
	reserved := webSpread(plantest.PendingPod("a", "1")).Obj()
	sibling, later := webSpread(plantest.PendingPod("x", "1")).Obj(), webSpread(plantest.PendingPod("y", "1")).Obj()
	unrelated := plantest.PendingPod("z", "1").Label("app", "db").Obj()
	p, _, _, triggered, _ := holdingPlugin(t, roomNode("n", "4", "16Gi", "110"), reserved, sibling, later, unrelated)
	p.ledger.Set(plantest.Claim("c1", "", "a"))

	if !isHeld(t, p, sibling) {
		t.Error("a sibling of a pending reserved pod that fits a node is not held")
	}
	if isHeld(t, p, unrelated) {
		t.Error("a pod that fits a node and waits for no reserved pod is held")
	}
	if !slices.Equal(*triggered, []types.UID{"x"}) {
		t.Errorf("triggered rounds for %v, want [x]", *triggered)
	}
	if got, want := pendingNames(p.deps), []string{"x", "y"}; !slices.Equal(got, want) {
		t.Errorf("a round takes %v, want %v: the siblings of the pending reserved pod", got, want)
	}

	p.ledger.Delete("c1")
	if got := pendingNames(p.deps); len(got) != 0 {
		t.Errorf("a round takes %v once no reserved pod is pending, want none: they fit a node", got)
	}
	if isHeld(t, p, later) {
		t.Error("a sibling is held once the reserved pod waits for no node")
	}
}

// TestRoundTakesPodsConstrainedByItsPods: a pod not tried yet that fits a node's free room,
// but whose topology spread and that of a pod the round takes select each other, is taken
// too: PreFilter would turn it away while the round plans that pod and until it binds. A pod
// unrelated to the round's pods is left to the scheduler.
func TestRoundTakesPodsConstrainedByItsPods(t *testing.T) {
	big, small := webSpread(plantest.PendingPod("big", "8")).Obj(), webSpread(plantest.PendingPod("small", "1")).Obj()
	unrelated := plantest.PendingPod("z", "1").Label("app", "db").Obj()
	p, _, _, _, _ := holdingPlugin(t, roomNode("n", "4", "16Gi", "110"), big, small, unrelated)
	if got, want := pendingNames(p.deps), []string{"big", "small"}; !slices.Equal(got, want) {
		t.Errorf("a round takes %v, want %v: the pod that fits a node spreads with one that fits none", got, want)
	}
}
