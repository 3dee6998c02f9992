package provision

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestPlacingAndReservingExcludeEachOther: a pod in a scheduling cycle (PreFilter begun,
// or assumed at Reserve) is left out of the claim a round writes; a pod being reserved is
// turned away by PreFilter until its reservation is in the ledger, and tried again if the
// write fails. A cycle that ended (PostFilter, Unreserve, bound) or went silent for
// placingLimit no longer keeps a pod from being reserved; an assumed one does.
func TestPlacingAndReservingExcludeEachOther(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pods := []*v1.Pod{plantest.PendingPod("cycling", "1").Obj(), plantest.PendingPod("assumed", "1").Obj(),
		plantest.PendingPod("free", "1").Obj()}
	var objs []runtime.Object
	for _, pod := range pods {
		objs = append(objs, pod)
	}
	p, h, clk := activatingPlugin(ctx, objs...)
	p.deps.handle = recordingActivatingHandle{h}
	p.batcher = newBatcher(clk, DefaultBatchIdleDuration, DefaultBatchMaxDuration, func(context.Context) {})
	prov := plantest.Provisioner("default")
	result, err := plan.Plan(ctx, plan.Input{Pods: pods, Provisioners: []*v1alpha1.Provisioner{prov}, InstanceTypes: plantest.Catalogs(prov), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Nodes) != 1 || len(result.Nodes[0].Pods) != 3 {
		t.Fatalf("planned %d nodes, want one for the three pods", len(result.Nodes))
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{v1alpha1.NodeClaimGVR: "NodeClaimList"})
	p.opts.Dynamic = dyn

	preFilter := func(pod *v1.Pod) *fwk.Status {
		_, st := p.PreFilter(ctx, nil, pod, nil)
		return st
	}
	if st := preFilter(pods[0]); !st.IsSuccess() {
		t.Fatalf("PreFilter of an unreserved pod: %v", st)
	}
	if st := preFilter(pods[1]); !st.IsSuccess() {
		t.Fatalf("PreFilter of an unreserved pod: %v", st)
	}
	p.Reserve(ctx, nil, pods[1], "node-1")
	// While the claim is written, the pod it reserves is turned away.
	var during *fwk.Status
	dyn.PrependReactor("create", "nodeclaims", func(action clienttesting.Action) (bool, runtime.Object, error) {
		during = preFilter(pods[2])
		obj := action.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured)
		obj.SetName(obj.GetGenerateName() + "1") // the fake generates no names
		return false, nil, nil
	})
	if _, failed := p.writer.writeClaims(ctx, clonePlan(result)); failed != 0 {
		t.Fatalf("%d claim writes failed", failed)
	}
	if during.IsSuccess() || !strings.Contains(during.Message(), "being reserved") {
		t.Errorf("PreFilter while the pod's claim was written: %v, want it turned away", during)
	}
	for _, pod := range pods {
		_, _, reserved := p.ledger.Reservation(pod.UID)
		if want := pod.Name == "free"; reserved != want {
			t.Errorf("%s: reserved = %v, want %v", pod.Name, reserved, want)
		}
	}
	if len(h.activated) != 0 {
		t.Errorf("activated %v after a write that succeeded; want none (the node's registration does)", h.activated)
	}

	// The cycles end: PostFilter, Unreserve. The claim write fails: the pod turned away
	// meanwhile is tried again.
	p.PostFilter(ctx, nil, pods[0], nil)
	p.Unreserve(ctx, nil, pods[1], "node-1")
	dyn.PrependReactor("create", "nodeclaims", func(clienttesting.Action) (bool, runtime.Object, error) {
		during = preFilter(pods[0])
		return true, nil, errors.New("apiserver unavailable")
	})
	again := clonePlan(result)
	again.Nodes[0].Pods = pods[:2]
	if _, failed := p.writer.writeClaims(ctx, again); failed != 1 {
		t.Fatalf("%d writes failed, want 1", failed)
	}
	if during.IsSuccess() {
		t.Error("PreFilter let a pod being reserved through")
	}
	if !slices.Equal(h.activated, []string{"default/cycling"}) {
		t.Errorf("activated %v after the failed write, want the pod turned away during it", h.activated)
	}

	// A cycle that never said how it ended keeps its pod placingLimit; an assumed one, until
	// it ends.
	p.placing.begin("silent")
	p.placing.assume("waiting", "node-1")
	silent, waiting := plantest.PendingPod("silent", "1").Obj(), plantest.PendingPod("waiting", "1").Obj()
	if kept := p.placing.reserve([]*v1.Pod{silent, waiting}); len(kept) != 0 {
		t.Errorf("reservable during their cycles: %v", podNamesOf(kept))
	}
	clk.Step(placingLimit)
	kept := p.placing.reserve([]*v1.Pod{silent, waiting})
	if len(kept) != 1 || kept[0].Name != "silent" {
		t.Errorf("reservable placingLimit after their cycles began: %v, want silent only", podNamesOf(kept))
	}
	p.placing.reserved(kept, true)
	p.observeBound(waiting, plantest.PendingPod("waiting", "1").Node("node-1").Obj())

	// A round that hangs keeps its pods from the scheduler placingLimit at most.
	hung := plantest.PendingPod("hung", "1").Obj()
	p.placing.reserve([]*v1.Pod{hung})
	clk.Step(placingLimit - time.Second)
	if p.placing.begin(hung.UID) {
		t.Error("PreFilter let a pod through that a round took a moment ago")
	}
	clk.Step(time.Second)
	if !p.placing.begin(hung.UID) || p.placing.isReserving(hung.UID) {
		t.Error("a pod a round took placingLimit ago is still kept from the scheduler")
	}
	p.placing.beingReserved(func(pod *v1.Pod) bool {
		t.Errorf("%s is still counted as being reserved placingLimit after", pod.Name)
		return true
	})
	if kept := p.placing.reserve([]*v1.Pod{waiting}); len(kept) != 1 {
		t.Error("a bound pod's cycle still keeps it from being reserved")
	}
}

// recordingActivatingHandle is an activatingHandle with an event recorder.
type recordingActivatingHandle struct{ *activatingHandle }

func (recordingActivatingHandle) EventRecorder() events.EventRecorderLogger {
	return &events.FakeRecorder{}
}

func podNamesOf(pods []*v1.Pod) []string {
	var out []string
	for _, pod := range pods {
		out = append(out, pod.Name)
	}
	return out
}

// clonePlan copies result's nodes, whose pods the writer narrows in place.
func clonePlan(result *plan.Result) *plan.Result {
	out := *result
	out.Nodes = nil
	for _, n := range result.Nodes {
		c := *n
		c.Pods = slices.Clone(n.Pods)
		out.Nodes = append(out.Nodes, &c)
	}
	return &out
}
