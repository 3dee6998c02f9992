package provision

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	cloudfake "github.com/nodewright/nodewright/pkg/cloud/fake"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestRoundKeepsItsPodsFromTheScheduler: from the moment a round takes its pods until it
// ends, the scheduler does not place them: PreFilter turns them away, and PostFilter starts
// no round for them (the plan counts each pod where it puts it; a pod bound elsewhere
// meanwhile stranded the pods whose zone spread counted it, in a scale-up in waves). A pod
// in a scheduling cycle when the round starts is left to the scheduler; a pod the scheduler
// assumed on a node counts there; a pod turned away that the round did not reserve is tried
// again as the round ends, and one it reserved waits for its node.
func TestRoundKeepsItsPodsFromTheScheduler(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unschedulable := func(name, cpu string) *v1.Pod {
		return plantest.PendingPod(name, cpu).Condition(v1.PodScheduled, v1.ConditionFalse, v1.PodReasonUnschedulable).Obj()
	}
	taken, huge := unschedulable("taken", "1"), unschedulable("huge", "1000")
	taken.Labels = map[string]string{"app": "web"}
	// Not tried yet and fits node-1, its spread counts taken: in a scheduling cycle as the
	// round starts, so left to the scheduler (the round would take it with taken otherwise).
	spreading := plantest.PendingPod("spreading", "500m").SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule,
		st.MakeLabelSelector().Label("app", "web").Obj(), nil, nil, nil, nil).Obj()
	cycling, binding := unschedulable("cycling", "1"), unschedulable("binding", "1")
	node := st.MakeNode().Name("node-1").Label(v1.LabelTopologyZone, "us-east-1a").
		Capacity(map[v1.ResourceName]string{v1.ResourceCPU: "2", v1.ResourceMemory: "8Gi", v1.ResourcePods: "110"}).Obj()
	factory := informers.NewSharedInformerFactory(fake.NewClientset(taken, huge, cycling, binding, spreading, node), 0)
	factory.Core().V1().Pods().Informer()
	factory.Core().V1().Nodes().Informer()
	factory.Apps().V1().DaemonSets().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	clk := clocktesting.NewFakeClock(time.Now())
	h := &activatingHandle{informerHandle: informerHandle{factory: factory}}

	prov := plantest.Provisioner("default")
	prov.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Provisioner"}
	class := &v1alpha1.EC2NodeClass{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "EC2NodeClass"},
		ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		v1alpha1.NodeClaimGVR: "NodeClaimList", v1alpha1.ProvisionerGVR: "ProvisionerList", v1alpha1.EC2NodeClassGVR: "EC2NodeClassList",
	}, prov, class)
	claims := 0
	dyn.PrependReactor("create", "nodeclaims", func(action clienttesting.Action) (bool, runtime.Object, error) {
		claims++
		obj := action.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured)
		obj.SetName(obj.GetGenerateName() + strings.Repeat("x", claims)) // the fake generates no names
		return false, nil, nil
	})
	p := newProvision(&deps{handle: recordingActivatingHandle{h}, args: &Args{Region: "us-east-1"}, ledger: NewLedger(),
		opts: Options{Clock: clk, Dynamic: dyn, Cloud: &cloudfake.Provider{Types: plantest.Catalog()}}}, false)
	p.batcher = newBatcher(clk, DefaultBatchIdleDuration, DefaultBatchMaxDuration, func(context.Context) {})

	// The scheduler is placing cycling and spreading (PreFilter began), and binding (assumed
	// on node-1).
	for _, pod := range []*v1.Pod{cycling, spreading} {
		if _, st := p.PreFilter(ctx, nil, pod, nil); !st.IsSuccess() {
			t.Fatalf("PreFilter of %s before the round: %v", pod.Name, st)
		}
	}
	p.Reserve(ctx, nil, binding, "node-1")

	// While the round plans (it lists the Provisioners after taking its pods), the
	// scheduler tries taken, huge and spreading.
	during := map[string][2]*fwk.Status{}
	var spreadingPre *fwk.Status
	dyn.PrependReactor("list", "provisioners", func(clienttesting.Action) (bool, runtime.Object, error) {
		for _, pod := range []*v1.Pod{taken, huge} {
			_, pre := p.PreFilter(ctx, nil, pod, nil)
			_, post := p.PostFilter(ctx, nil, pod, nil)
			during[pod.Name] = [2]*fwk.Status{pre, post}
		}
		_, spreadingPre = p.PreFilter(ctx, nil, spreading, nil)
		p.PostFilter(ctx, nil, spreading, nil)
		return false, nil, nil
	})
	p.round(ctx)

	for _, name := range []string{"taken", "huge"} {
		pre, post := during[name][0], during[name][1]
		if pre.IsSuccess() || !strings.Contains(pre.Message(), "being reserved") {
			t.Errorf("PreFilter of %s while the round planned it: %v, want it turned away", name, pre)
		}
		if post.Code() != fwk.Unschedulable || !strings.Contains(post.Message(), "being reserved") {
			t.Errorf("PostFilter of %s while the round planned it: %v, want it waiting for the round", name, post)
		}
	}
	// A pod whose spread counts one the round plans waits for it, and the next round plans
	// it: the only arrival of the next window.
	if spreadingPre.IsSuccess() || !strings.Contains(spreadingPre.Message(), "waiting for pod default/taken, which a provisioning round is planning") {
		t.Errorf("PreFilter of spreading while the round planned taken: %v, want it waiting for taken", spreadingPre)
	}
	if p.batcher.arrivals != 1 || !p.batcher.window[spreading.UID] {
		t.Errorf("the next window has %d arrivals (%v), want spreading's only", p.batcher.arrivals, p.batcher.window)
	}
	for _, pod := range []*v1.Pod{taken, huge, cycling, binding, spreading} {
		_, _, reserved := p.ledger.Reservation(pod.UID)
		if want := pod == taken; reserved != want {
			t.Errorf("%s: reserved = %v, want %v", pod.Name, reserved, want)
		}
	}
	if claims != 1 {
		t.Errorf("the round wrote %d claims, want 1 (taken's)", claims)
	}
	// huge fits no instance type: turned away during the round, it is tried again now;
	// taken waits for its claim's node.
	if !slices.Equal(h.activated, []string{"default/huge"}) {
		t.Errorf("activated %v as the round ended, want huge only", h.activated)
	}
	if p.placing.isReserving(taken.UID) || p.placing.isReserving(huge.UID) {
		t.Error("the round's pods are still marked as being reserved after it ended")
	}
	if _, st := p.PreFilter(ctx, nil, huge, nil); !st.IsSuccess() {
		t.Errorf("PreFilter of huge after the round: %v, want it to go on", st)
	}

	// The next round counts binding on node-1, where the scheduler assumed it, not a pod
	// reserved and binding to its claim's node twice.
	p.Reserve(ctx, nil, taken, "node-2")
	in, err := p.planInput(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	on := map[string][]string{}
	for _, pod := range in.ScheduledPods {
		on[pod.Name] = append(on[pod.Name], pod.Spec.NodeName)
	}
	if got := on["binding"]; !slices.Equal(got, []string{"node-1"}) {
		t.Errorf("binding is counted on %v, want node-1", got)
	}
	if got := on["taken"]; len(got) != 1 {
		t.Errorf("taken, reserved and binding, is counted on %v, want its claim's node once", got)
	}
}

// TestRoundReadsProvisionersFromItsInformers: once the plugin's informers of Provisioners and
// EC2NodeClasses run, a round reads them there, not through the API (two LISTs a round on
// an apiserver busy with the pods being created); one being deleted is left out.
func TestRoundReadsProvisionersFromItsInformers(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	typed := func(obj runtime.Object, kind string) runtime.Object {
		obj.GetObjectKind().SetGroupVersionKind(v1alpha1.SchemeGroupVersion.WithKind(kind))
		return obj
	}
	gone := plantest.Provisioner("gone")
	gone.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	gone.Finalizers = []string{"example.com/keep"}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		v1alpha1.ProvisionerGVR: "ProvisionerList", v1alpha1.EC2NodeClassGVR: "EC2NodeClassList",
	}, typed(plantest.Provisioner("default"), "Provisioner"), typed(gone, "Provisioner"),
		typed(&v1alpha1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, "EC2NodeClass"))
	p := newProvision(&deps{args: &Args{Region: "us-east-1"}, ledger: NewLedger(),
		opts: Options{Dynamic: dyn, Cloud: &cloudfake.Provider{Types: plantest.Catalog()}}}, false)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	p.typedInformers = map[schema.GroupVersionResource]cache.SharedIndexInformer{}
	for _, gvr := range []schema.GroupVersionResource{v1alpha1.ProvisionerGVR, v1alpha1.EC2NodeClassGVR} {
		p.typedInformers[gvr] = factory.ForResource(gvr).Informer()
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	before := len(dyn.Actions())

	in := &plan.Input{InstanceTypes: map[string][]*cloud.InstanceType{}}
	if err := p.addProvisioners(ctx, in); err != nil {
		t.Fatal(err)
	}
	if len(in.Provisioners) != 1 || in.Provisioners[0].Name != "default" || len(in.InstanceTypes["default"]) == 0 {
		t.Errorf("the round has provisioners %v with %d instance types, want default's", in.Provisioners, len(in.InstanceTypes["default"]))
	}
	if calls := dyn.Actions()[before:]; len(calls) != 0 {
		t.Errorf("the round called the API %d times (first: %v), want none", len(calls), calls[0])
	}
}
