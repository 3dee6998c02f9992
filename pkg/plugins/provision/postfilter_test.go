package provision

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// registeredAt marks nc's node registered at t.
func registeredAt(nc *v1alpha1.NodeClaim, t time.Time) *v1alpha1.NodeClaim {
	nc.Status.Conditions = append(nc.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionRegistered, Status: "True", LastTransitionTime: metav1.NewTime(t)})
	return nc
}

func TestPostFilter(t *testing.T) {
	tooBig := plantest.PendingPod("big", "200").Obj()
	now := time.Now()
	tests := []struct {
		name          string
		pod           *v1.Pod
		wantCode      fwk.Code
		wantMessage   string
		wantTriggered bool
		wantReleased  bool
	}{
		{
			name:        "reserved, node registered: waits to fit there",
			pod:         plantest.PendingPod("a", "1").Obj(),
			wantCode:    fwk.Unschedulable,
			wantMessage: "Provision: waiting to fit on node ip-10-0-0-1 of nodeclaim default-abcde",
		},
		{
			name:        "reserved, node not registered: waits",
			pod:         plantest.PendingPod("b", "1").Obj(),
			wantCode:    fwk.Unschedulable,
			wantMessage: "Provision: waiting for node of nodeclaim default-x7k2p",
		},
		{
			name:     "reserved, node registered longer than the grace: released as stranded, backing off",
			pod:      plantest.PendingPod("e", "1").Obj(),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMessage: "Provision: released from nodeclaim default-old: stranded on a node launched for it " +
				"(unknown: the scheduler gave no reason); planning it again in 1m0s",
			wantReleased: true,
		},
		{
			name:          "not reserved: a round is triggered",
			pod:           plantest.PendingPod("c", "1").Obj(),
			wantCode:      fwk.Unschedulable,
			wantMessage:   "Provision: a node is being planned",
			wantTriggered: true,
		},
		{
			name:        "unplannable for static reasons: unresolvable",
			pod:         tooBig,
			wantCode:    fwk.UnschedulableAndUnresolvable,
			wantMessage: "Provision: too big",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			clk := clocktesting.NewFakeClock(now)
			p := newProvision(&deps{handle: recorderHandle{}, opts: Options{Clock: clk}, ledger: NewLedger()}, false)
			p.unplannedPods.set(map[types.UID]*plan.Unplanned{
				tooBig.UID: {Pod: tooBig, Reasons: []string{"too big"}},
			})
			p.batcher = newBatcher(clk, time.Second, 10*time.Second, nil)
			p.ledger.Rebuild([]*v1alpha1.NodeClaim{
				registeredAt(plantest.Claim("default-abcde", "ip-10-0-0-1", "a"), now.Add(-time.Minute)),
				plantest.Claim("default-x7k2p", "ip-10-0-0-2", "b"),
				registeredAt(plantest.Claim("default-old", "ip-10-0-0-3", "e"), now.Add(-ReservationGrace-time.Second)),
			})
			res, status := p.PostFilter(ctx, nil, tt.pod, nil)
			if res != nil {
				t.Errorf("result = %+v, want none: PostFilter nominates nothing", res)
			}
			if status.Code() != tt.wantCode || status.Message() != tt.wantMessage {
				t.Errorf("status = %v %q, want %v %q", status.Code(), status.Message(), tt.wantCode, tt.wantMessage)
			}
			if got := len(p.batcher.pending) == 1; got != tt.wantTriggered {
				t.Errorf("triggered = %v, want %v", got, tt.wantTriggered)
			}
			if _, _, reserved := p.ledger.Reservation(tt.pod.UID); tt.wantReleased && reserved {
				t.Errorf("pod still reserved, want it released")
			}
		})
	}
}

func TestLedgerRebuildAndRelease(t *testing.T) {
	l := NewLedger()
	// After a restart the ledger is rebuilt from the NodeClaims alone.
	l.Rebuild([]*v1alpha1.NodeClaim{plantest.Claim("default-1", "", "a", "b"), plantest.Claim("default-2", "node-2", "c")})
	got := map[string]string{}
	for _, uid := range []types.UID{"a", "b", "c", "d"} {
		if c, node, ok := l.Reservation(uid); ok {
			got[string(uid)] = c + "@" + node
		}
	}
	want := map[string]string{"a": "default-1@", "b": "default-1@", "c": "default-2@node-2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reservations (-want, +got):\n%s", diff)
	}
	// A deleted NodeClaim releases its pods to be planned again.
	released := l.Delete("default-1")
	if len(released) != 2 {
		t.Errorf("released %d pods, want 2", len(released))
	}
	if _, _, ok := l.Reservation("a"); ok {
		t.Errorf("pod a still reserved after its nodeclaim was deleted")
	}
	node := st.MakeNode().Name("node-2").Obj()
	if nc, ok := l.ClaimForNode(node); !ok || nc.Name != "default-2" {
		t.Errorf("ClaimForNode(node-2) = %v, %v; want default-2", nc, ok)
	}
	// A pod released from its claim stays released while that claim is updated, and a claim
	// written for it later reserves it.
	l.Release("c")
	l.Set(plantest.Claim("default-2", "node-2", "c"))
	if _, _, ok := l.Reservation("c"); ok {
		t.Error("pod c reserved again on the claim it was released from")
	}
	l.Set(plantest.Claim("default-3", "", "c"))
	if c, _, ok := l.Reservation("c"); !ok || c != "default-3" {
		t.Errorf("pod c planned onto default-3 is reserved on %q (%v), want default-3", c, ok)
	}
	l.Delete("default-2")
	if c, _, ok := l.Reservation("c"); !ok || c != "default-3" {
		t.Errorf("after its old claim went, pod c is reserved on %q (%v), want default-3", c, ok)
	}
}

// TestBatcherWaitsForIdleThenMax: pods that keep arriving every 0.9s never let the idle
// window (1s) close: the round starts at max (3s) after the first. A window that opened while
// a round ran and is over when the round ends (its pod came over 1s before) starts the next
// round at once; a window still open then waits out its idle from its last pod.
func TestBatcherWaitsForIdleThenMax(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clk := clocktesting.NewFakeClock(time.Now())
	started := make(chan time.Time, 10)
	finish := make(chan struct{})
	b := newBatcher(clk, time.Second, 3*time.Second, func(context.Context) {
		started <- clk.Now()
		<-finish
	})
	go b.Run(ctx)
	begin := clk.Now()
	b.TriggerPod("pod-0")
	// step moves the clock 100ms on and returns when the batcher started a round (true) or
	// waits on a timer again (false).
	step := func() (time.Time, bool) {
		clk.Step(100 * time.Millisecond)
		for {
			select {
			case at := <-started:
				return at, true
			default:
			}
			if clk.HasWaiters() {
				return time.Time{}, false
			}
			time.Sleep(time.Millisecond)
		}
	}
	// arrive triggers a pod every 0.9s until the batcher starts a round, and returns when.
	arrive := func(first int) time.Time {
		for i := first; i < first+100; i++ {
			waitForTimers(t, clk)
			for range 9 {
				if at, ok := step(); ok {
					return at
				}
			}
			b.TriggerPod(types.UID(fmt.Sprintf("pod-%d", i)))
		}
		t.Fatal("no round in 90s of arrivals")
		return time.Time{}
	}
	if got := arrive(1).Sub(begin); got != 3*time.Second {
		t.Errorf("the round started %v after the first pod, want max (3s)", got)
	}
	// A pod arriving while the round runs opens the next window; the round ends 5s later: the
	// window is over, the next round starts at once.
	b.TriggerPod("during")
	clk.Step(5 * time.Second)
	end := clk.Now()
	finish <- struct{}{}
	select {
	case at := <-started:
		if at != end {
			t.Errorf("the round after a long one started %v after it ended, want at once", at.Sub(end))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no round after the window that opened during the last round")
	}
	// A pod arriving 0.5s before the round ends: the next round starts 0.5s after it ends.
	clk.Step(time.Second)
	b.TriggerPod("late")
	clk.Step(500 * time.Millisecond)
	end = clk.Now()
	finish <- struct{}{}
	waitForTimers(t, clk)
	var at time.Time
	for i := 0; i < 10 && at.IsZero(); i++ {
		at, _ = step()
	}
	if got := at.Sub(end); got != 500*time.Millisecond {
		t.Errorf("the next round started %v after the last ended, want 0.5s (1s after its pod)", got)
	}
	close(finish)
}

// waitForTimers waits until the batcher has armed its timers on clk.
func waitForTimers(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the batcher armed no timer")
		}
		time.Sleep(time.Millisecond)
	}
}

// recorderHandle is a framework handle with an event recorder that drops events.
type recorderHandle struct{ fwk.Handle }

func (recorderHandle) EventRecorder() events.EventRecorderLogger { return &events.FakeRecorder{} }

// profileHandle is a framework handle that knows only its profile's name.
type profileHandle struct{ fwk.Handle }

func (profileHandle) ProfileName() string { return "nodewright-scheduler" }

// SharedInformerFactory returns a factory never started: no pod cache has synced.
func (profileHandle) SharedInformerFactory() informers.SharedInformerFactory {
	return informers.NewSharedInformerFactory(fake.NewClientset(), 0)
}

// TestUnschedulableToBound: a pod first seen unschedulable and bound 7 s later is observed
// in the histogram once, as reserved when a NodeClaim holds it.
func TestUnschedulableToBound(t *testing.T) {
	registerMetrics()
	for _, reserved := range []bool{false, true} {
		clk := clocktesting.NewFakeClock(time.Now())
		p := newProvision(&deps{handle: profileHandle{}, opts: Options{Clock: clk}, ledger: NewLedger()}, false)
		p.batcher = newBatcher(clk, time.Second, 10*time.Second, nil)
		name := fmt.Sprintf("web-%v", reserved)
		if reserved {
			p.ledger.Set(plantest.Claim("default-abcde", "", name))
		}
		pending := plantest.PendingPod(name, "1").Condition(v1.PodScheduled, v1.ConditionFalse, v1.PodReasonUnschedulable).Obj()
		hist := podUnschedulableToBound.WithLabelValues(fmt.Sprint(reserved))
		before, _ := testutil.GetHistogramMetricCount(hist)
		sumBefore, _ := testutil.GetHistogramMetricValue(hist)
		p.onPod(pending)
		clk.Step(5 * time.Second)
		p.onPod(pending) // seen again: the first time counts
		clk.Step(2 * time.Second)
		bound := pending.DeepCopy()
		bound.Spec.NodeName = "ip-10-0-0-1"
		p.observeBound(pending, bound)
		p.observeBound(bound, bound) // already bound: not observed again
		count, _ := testutil.GetHistogramMetricCount(hist)
		sum, _ := testutil.GetHistogramMetricValue(hist)
		if count-before != 1 || sum-sumBefore != 7 {
			t.Errorf("reserved=%v: observed %d times, %v s in all; want once, 7 s", reserved, count-before, sum-sumBefore)
		}
		if len(p.waits.since) != 0 {
			t.Errorf("reserved=%v: %d pods still tracked after binding", reserved, len(p.waits.since))
		}
	}
}

// activatingHandle records the pods it is asked to activate.
type activatingHandle struct {
	informerHandle
	mu        sync.Mutex
	activated []string
}

func (h *activatingHandle) Activate(_ klog.Logger, pods map[string]*v1.Pod) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key := range pods {
		h.activated = append(h.activated, key)
	}
}

// activatingPlugin returns a plugin on a fake clock whose handle records the pods it
// activates and whose informers hold pods, until ctx ends.
func activatingPlugin(ctx context.Context, pods ...runtime.Object) (*Provision, *activatingHandle, *clocktesting.FakeClock) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(pods...), 0)
	factory.Core().V1().Pods().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	clk := clocktesting.NewFakeClock(time.Now())
	h := &activatingHandle{informerHandle: informerHandle{factory: factory}}
	return newProvision(&deps{handle: h, opts: Options{Clock: clk}, ledger: NewLedger()}, false), h, clk
}

// TestPostFilterRetriesWhenGraceEnds: a reserved pod waiting to fit on its registered node
// is tried again as its ReservationGrace ends (PostFilter then releases it), even if no
// cluster event would retry it.
func TestPostFilterRetriesWhenGraceEnds(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pod := plantest.PendingPod("a", "1").Obj()
	p, h, clk := activatingPlugin(ctx, pod)
	now := clk.Now()
	p.ledger.Rebuild([]*v1alpha1.NodeClaim{registeredAt(plantest.Claim("c1", "node-1", "a"), now.Add(-time.Minute))})

	for range 2 { // a second wait sets no second timer
		if _, status := p.PostFilter(ctx, nil, pod, nil); status.Code() != fwk.Unschedulable {
			t.Fatalf("PostFilter = %v, want waiting", status)
		}
	}
	clk.Step(ReservationGrace - time.Minute)
	h.mu.Lock()
	early := len(h.activated)
	h.mu.Unlock()
	if early != 0 {
		t.Fatalf("activated %d pods before the grace ended", early)
	}
	clk.Step(2 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		got := append([]string(nil), h.activated...)
		h.mu.Unlock()
		if len(got) == 1 && got[0] == "default/a" {
			break
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("activated %v as the grace ended, want [default/a] once", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
