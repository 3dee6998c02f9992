package provision

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	"k8s.io/kubernetes/test/utils/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// eventsHandle is a framework handle whose events are kept, and whose pods are activated
// into a count.
type eventsHandle struct {
	fwk.Handle
	recorder *events.FakeRecorder
}

func (h eventsHandle) EventRecorder() events.EventRecorderLogger { return h.recorder }

func (h eventsHandle) Activate(_ klog.Logger, _ map[string]*v1.Pod) {}

// launchedClaim is claim name, of the default Provisioner, launched as a t3a.micro spot in
// us-east-1a onto node, registered at t, for pod.
func launchedClaim(name, node, pod string, t time.Time) *v1alpha1.NodeClaim {
	nc := registeredAt(plantest.Claim(name, node, pod), t)
	nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType = "t3a.micro", "us-east-1a", "spot"
	return nc
}

// TestStrands: a pod its launched node rejects past its grace is stranded: a Stranded event
// naming the filter, the metric, a backoff, then no plan onto the same shape; a second strand
// holds it until its Provisioner changes.
func TestStrands(t *testing.T) {
	registerMetrics()
	_, ctx := ktesting.NewTestContext(t)
	now := time.Now()
	clk := clocktesting.NewFakeClock(now)
	recorder := events.NewFakeRecorder(10)
	p := newProvision(&deps{handle: eventsHandle{recorder: recorder}, opts: Options{Clock: clk}, ledger: NewLedger()}, false)
	p.batcher = newBatcher(clk, time.Second, 10*time.Second, nil)
	pod := plantest.PendingPod("web", "100m").Obj()
	statuses := framework.NewNodeToStatus(map[string]*fwk.Status{
		"ip-1": fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector").WithPlugin(names.NodeAffinity),
	}, fwk.NewStatus(fwk.UnschedulableAndUnresolvable))
	metric := podsStranded.WithLabelValues("default", names.NodeAffinity)
	before, _ := testutil.GetCounterMetricValue(metric)

	p.ledger.Rebuild([]*v1alpha1.NodeClaim{launchedClaim("c1", "ip-1", "web", now.Add(-ReservationGrace-time.Second))})
	_, st := p.PostFilter(ctx, nil, pod, statuses)
	if st.Code() != fwk.UnschedulableAndUnresolvable || !strings.Contains(st.Message(), "planning it again in") {
		t.Errorf("status after the first strand = %v %q, want unresolvable, backing off", st.Code(), st.Message())
	}
	select {
	case e := <-recorder.Events:
		for _, want := range []string{"Stranded", "NodeAffinity", "node(s) didn't match Pod's node affinity/selector", "not onto default/t3a.micro/us-east-1a/spot"} {
			if !strings.Contains(e, want) {
				t.Errorf("event %q does not say %q", e, want)
			}
		}
	default:
		t.Error("no event for the stranded pod")
	}
	if got, _ := testutil.GetCounterMetricValue(metric); got != before+1 {
		t.Errorf("%s = %v, want %v", "nodewright_pods_stranded_total", got, before+1)
	}
	provs := []*v1alpha1.Provisioner{{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "u1", Generation: 1}}}
	if plan, held := p.strands.holdStranded([]*v1.Pod{pod}, provs); len(plan) != 0 || len(held) != 1 {
		t.Errorf("within the backoff: %d pods to plan, %d held; want 0 and 1", len(plan), len(held))
	}
	clk.Step(StrandBackoff + time.Second)
	if plan, _ := p.strands.holdStranded([]*v1.Pod{pod}, provs); len(plan) != 1 {
		t.Errorf("after the backoff: %d pods to plan, want 1", len(plan))
	}
	want := map[types.UID]sets.Set[string]{"web": sets.New("default/t3a.micro/us-east-1a/spot")}
	if diff := cmp.Diff(want, p.strands.avoidedShapes()); diff != "" {
		t.Errorf("avoided shapes (-want, +got):\n%s", diff)
	}

	// Launched again, as another shape, and stranded again: held for good.
	nc := launchedClaim("c2", "ip-2", "web", clk.Now().Add(-ReservationGrace-time.Second))
	nc.Status.InstanceType = "t3a.small"
	p.ledger.Rebuild([]*v1alpha1.NodeClaim{nc})
	if _, st := p.PostFilter(ctx, nil, pod, statuses); !strings.Contains(st.Message(), "stranded 2 times") {
		t.Errorf("status after the second strand = %q, want it held", st.Message())
	}
	clk.Step(time.Hour - StrandMemory)
	if plan, _ := p.strands.holdStranded([]*v1.Pod{pod}, provs); len(plan) != 0 {
		t.Error("stranded twice, planned again though its provisioner did not change")
	}
	provs[0].Generation = 2
	if plan, _ := p.strands.holdStranded([]*v1.Pod{pod}, provs); len(plan) != 1 {
		t.Error("stranded twice, not planned again after its provisioner changed")
	}
	if len(p.strands.avoidedShapes()) != 0 {
		t.Error("strands remembered after the provisioner changed")
	}
}
