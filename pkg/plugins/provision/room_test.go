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
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

func roomNode(name, cpu, memory, pods string) *v1.Node {
	return st.MakeNode().Name(name).Capacity(map[v1.ResourceName]string{
		v1.ResourceCPU: cpu, v1.ResourceMemory: memory, v1.ResourcePods: pods}).Obj()
}

// pendingNames returns the names of the pods a round would take (pendingPods), sorted.
func pendingNames(d *deps) []string {
	var got []string
	for _, pod := range d.pendingPods(klog.Background()) {
		got = append(got, pod.Name)
	}
	slices.Sort(got)
	return got
}

// TestFreeRoom: a pod may fit where some node's allocatable less its bound pods' requests
// holds its cpu and memory and one more pod; a pod of a higher priority than a bound pod may
// preempt it, unless it never preempts; finished pods take no room.
func TestFreeRoom(t *testing.T) {
	nodes := []*v1.Node{roomNode("a", "4", "8Gi", "3"), roomNode("b", "2", "16Gi", "110")}
	bound := []*v1.Pod{
		plantest.PendingPod("a1", "3").Node("a").Obj(),
		plantest.PendingPod("b1", "1").Node("b").Obj(),
		plantest.PendingPod("done", "2").Node("b").Phase(v1.PodSucceeded).Obj(),
		plantest.PendingPod("elsewhere", "8").Node("gone").Obj(),
	}
	room := newFreeRoom(nodes, bound, nil)
	tests := []struct {
		name string
		pod  *v1.Pod
		want bool
	}{
		{"fits a's cpu", plantest.PendingPod("p", "1").Obj(), true},
		{"fits no node's cpu", plantest.PendingPod("p", "1500m").Obj(), false},
		{"fits b's memory only with b's cpu", st.MakePod().Name("p").Req(map[v1.ResourceName]string{v1.ResourceCPU: "500m", v1.ResourceMemory: "12Gi"}).Obj(), true},
		{"fits no node's memory", st.MakePod().Name("p").Req(map[v1.ResourceName]string{v1.ResourceMemory: "20Gi"}).Obj(), false},
		{"requests nothing", st.MakePod().Name("p").Obj(), true},
		{"extended resources are taken to fit", st.MakePod().Name("p").Req(map[v1.ResourceName]string{"example.com/gpu": "1"}).Obj(), true},
		{"may preempt", plantest.PendingPod("p", "8").Priority(10).Obj(), true},
		{"never preempts", plantest.PendingPod("p", "8").Priority(10).PreemptionPolicy(v1.PreemptNever).Obj(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := room.mayFit(tt.pod); got != tt.want {
				t.Errorf("mayFit = %v, want %v", got, tt.want)
			}
		})
	}
	full := newFreeRoom([]*v1.Node{roomNode("a", "4", "8Gi", "1")}, []*v1.Pod{plantest.PendingPod("a1", "100m").Node("a").Obj()}, nil)
	if full.mayFit(plantest.PendingPod("p", "100m").Obj()) {
		t.Error("mayFit = true on a node that takes no more pods")
	}
	if newFreeRoom(nil, nil, nil).mayFit(plantest.PendingPod("p", "100m").Obj()) {
		t.Error("mayFit = true with no node")
	}
}

// TestPendingPodsTakesUntriedPodsThatFitNoNode: a round takes the pods the scheduler found
// unschedulable, and of those it has not tried yet the ones that fit no node's free room;
// not pods with scheduling gates, pods of other schedulers, or pods already reserved.
func TestPendingPodsTakesUntriedPodsThatFitNoNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	objs := []runtime.Object{
		roomNode("n", "2", "8Gi", "110"),
		plantest.PendingPod("bound", "1").Node("n").Obj(),
		plantest.PendingPod("unschedulable", "100m").Condition(v1.PodScheduled, v1.ConditionFalse, v1.PodReasonUnschedulable).Obj(),
		plantest.PendingPod("untried-fits", "500m").Obj(),
		plantest.PendingPod("untried-big", "2").Obj(),
		plantest.PendingPod("gated", "2").SchedulingGates([]string{"example.com/wait"}).
			Condition(v1.PodScheduled, v1.ConditionFalse, v1.PodReasonSchedulingGated).Obj(),
		plantest.PendingPod("other-scheduler", "2").SchedulerName("default-scheduler").Obj(),
		plantest.PendingPod("reserved", "2").Obj(),
	}
	factory := informers.NewSharedInformerFactory(fake.NewClientset(objs...), 0)
	factory.Core().V1().Pods().Informer()
	factory.Core().V1().Nodes().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	d := &deps{handle: informerHandle{factory: factory}, ledger: NewLedger()}
	d.ledger.Set(plantest.Claim("c1", "", "reserved"))

	if got, want := pendingNames(d), []string{"unschedulable", "untried-big"}; !slices.Equal(got, want) {
		t.Errorf("pending pods = %v, want %v", got, want)
	}
}

// TestPendingPodsTakesPodsOnlyHeldNodesFit: a node held for the pods reserved on its claim
// (one of them pending), or launched by nodewright and not matched to its claim yet, has no
// room for a pod reserved nowhere, as Filter turns it away: a round takes an untried pod that
// only such nodes fit. Once the claim's pod has bound, its node's room counts again.
func TestPendingPodsTakesPodsOnlyHeldNodesFit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unmatched := roomNode("unmatched", "8", "32Gi", "110")
	unmatched.Labels = map[string]string{v1alpha1.LabelProvisionerName: "default"}
	waiting := plantest.PendingPod("waiting", "1").Obj()
	client := fake.NewClientset(
		roomNode("full", "2", "8Gi", "110"),
		plantest.PendingPod("bound", "2").Node("full").Obj(),
		roomNode("held", "4", "16Gi", "110"),
		unmatched,
		waiting,
		plantest.PendingPod("untried-held", "3").Obj(),
		plantest.PendingPod("untried-unmatched", "6").Obj(),
	)
	factory := informers.NewSharedInformerFactory(client, 0)
	factory.Core().V1().Pods().Informer()
	factory.Core().V1().Nodes().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	d := &deps{handle: informerHandle{factory: factory}, ledger: NewLedger()}
	d.nodeHeld = newReservations(d).holdsNode
	d.ledger.Set(plantest.Claim("c1", "held", "waiting"))

	if got, want := pendingNames(d), []string{"untried-held", "untried-unmatched"}; !slices.Equal(got, want) {
		t.Errorf("pending pods = %v, want %v: held nodes have no room for them", got, want)
	}
	bound := waiting.DeepCopy()
	bound.Spec.NodeName = "held"
	if _, err := client.CoreV1().Pods("default").Update(ctx, bound, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pod, err := d.podLister().Pods("default").Get("waiting")
		if err == nil && pod.Spec.NodeName != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer never saw the reserved pod bound")
		}
		time.Sleep(time.Millisecond)
	}
	if got, want := pendingNames(d), []string{"untried-unmatched"}; !slices.Equal(got, want) {
		t.Errorf("pending pods = %v, want %v: the claim's pod bound, its node's room counts", got, want)
	}
}

// TestTriggerPodCountsOncePerWindow: a pod's first trigger starts a window and its later
// ones neither start nor extend it, until the next round starts.
func TestTriggerPodCountsOncePerWindow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktesting.NewFakeClock(time.Now())
	rounds := make(chan struct{}, 10)
	b := newBatcher(clk, time.Second, 10*time.Second, func(context.Context) { rounds <- struct{}{} })
	go b.Run(ctx)

	b.TriggerPod("a")
	waitForTimers(t, clk)
	clk.Step(600 * time.Millisecond)
	b.TriggerPod("a") // the scheduler's attempt at a: no new arrival
	clk.Step(600 * time.Millisecond)
	select {
	case <-rounds:
	case <-time.After(5 * time.Second):
		t.Fatal("no round 1s after the only pod arrived: its later triggers extended the window")
	}
	b.TriggerPod("a") // a new window: the round that started forgot a
	waitForTimers(t, clk)
	clk.Step(time.Second)
	select {
	case <-rounds:
	case <-time.After(5 * time.Second):
		t.Fatal("no round for a pod triggering after the last round started")
	}
	if n := len(rounds); n != 0 {
		t.Errorf("%d more rounds, want none", n)
	}
}

// TestOnPodTriggersForUntriedPods: a pod the scheduler has not tried yet starts a batch
// window as an unschedulable one does; a pod of another scheduler, a bound pod, a pod with
// scheduling gates and a pod already reserved do not.
func TestOnPodTriggersForUntriedPods(t *testing.T) {
	tests := []struct {
		name string
		pod  *v1.Pod
		want bool
	}{
		{"untried", plantest.PendingPod("a", "1").Obj(), true},
		{"unschedulable", plantest.PendingPod("a", "1").Condition(v1.PodScheduled, v1.ConditionFalse, v1.PodReasonUnschedulable).Obj(), true},
		{"other scheduler", plantest.PendingPod("a", "1").SchedulerName("default-scheduler").Obj(), false},
		{"bound", plantest.PendingPod("a", "1").Node("n").Obj(), false},
		{"gated", plantest.PendingPod("a", "1").SchedulingGates([]string{"example.com/wait"}).
			Condition(v1.PodScheduled, v1.ConditionFalse, v1.PodReasonSchedulingGated).Obj(), false},
		{"reserved", plantest.PendingPod("reserved", "1").Obj(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Now())
			p := newProvision(&deps{handle: profileHandle{}, opts: Options{Clock: clk}, ledger: NewLedger()}, false)
			p.batcher = newBatcher(clk, time.Second, 10*time.Second, nil)
			p.ledger.Set(plantest.Claim("c1", "", "reserved"))
			p.onPod(tt.pod)
			if got := len(p.batcher.pending) == 1; got != tt.want {
				t.Errorf("triggered = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBatcherEndsFastBurstsEarly: a window waits idle after a lone pod and after pods that
// trickle in, and ten times the longest gap (at least 100ms) after a burst, so that a round
// starts soon after a fast burst ends.
func TestBatcherEndsFastBurstsEarly(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, tc := range []struct {
		name string
		gaps []time.Duration // between the arrivals of one window
		want time.Duration
	}{
		{name: "a lone pod", want: time.Second},
		{name: "a burst 1ms apart", gaps: slices.Repeat([]time.Duration{time.Millisecond}, 19), want: minBurstIdle},
		{name: "a burst with a 30ms hiccup", gaps: []time.Duration{time.Millisecond, 30 * time.Millisecond, time.Millisecond}, want: 300 * time.Millisecond},
		{name: "a trickle 200ms apart", gaps: []time.Duration{200 * time.Millisecond, 200 * time.Millisecond}, want: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Now())
			b := newBatcher(clk, time.Second, 10*time.Second, nil)
			b.TriggerPod("pod-0")
			for i, gap := range tc.gaps {
				clk.Step(gap)
				b.TriggerPod(types.UID(fmt.Sprintf("pod-%d", i+1)))
			}
			if got := b.idleWait(); got != tc.want {
				t.Errorf("the window waits %v for another pod, want %v", got, tc.want)
			}
			b.startRound(ctx)
			if got := b.idleWait(); got != time.Second {
				t.Errorf("the next window waits %v before its second pod, want the idle duration", got)
			}
		})
	}
}
