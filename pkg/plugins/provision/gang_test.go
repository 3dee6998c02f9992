package provision

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestSplitGangs: a round plans as gangs the pods of gang PodGroups that have their minCount
// of pods waiting, pod by pod those of basic PodGroups and of none, and not yet those of a
// gang short of its minCount (its bound pods count) or of a PodGroup not seen; without
// GenericWorkload, every pod pod by pod.
func TestSplitGangs(t *testing.T) {
	group := func(name string, minCount int32) *schedulingv1beta1.PodGroup {
		pg := &schedulingv1beta1.PodGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		if minCount > 0 {
			pg.Spec.SchedulingPolicy.Gang = &schedulingv1beta1.GangSchedulingPolicy{MinCount: minCount}
		} else {
			pg.Spec.SchedulingPolicy.Basic = &schedulingv1beta1.BasicSchedulingPolicy{}
		}
		return pg
	}
	member := func(name, group string) *v1.Pod {
		pod := plantest.PendingPod(name, "1").Obj()
		if group != "" {
			pod.Spec.SchedulingGroup = &v1.PodSchedulingGroup{PodGroupName: ptr.To(group)}
		}
		return pod
	}
	pods := []*v1.Pod{member("single", ""), member("basic-1", "basic"), member("a-1", "a"), member("b-1", "b"), member("a-2", "a"),
		member("basic-2", "basic"), member("a-3", "a"), member("b-2", "b"), member("lost-1", "lost"), member("c-3", "c")}
	// Two pods of gang c run: its third completes its minCount.
	boundC := []*v1.Pod{member("c-1", "c"), member("c-2", "c")}
	for _, pod := range boundC {
		pod.Spec.NodeName = "node-1"
	}
	names := func(pods []*v1.Pod) []string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		return out
	}
	logger, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset(group("basic", 0), group("a", 3), group("b", 4), group("c", 3), boundC[0], boundC[1])
	factory := informers.NewSharedInformerFactory(client, 0)

	// Without the gate, schedulingGroup means nothing to the scheduler: all pod by pod.
	g := &gangs{deps: &deps{handle: informerHandle{factory: factory}, ledger: NewLedger()}}
	if singles, gangs := g.split(logger, pods); len(singles) != len(pods) || len(gangs) != 0 {
		t.Errorf("without GenericWorkload: %v pod by pod and %d gangs, want every pod pod by pod", names(singles), len(gangs))
	}

	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.GenericWorkload, true)
	g = &gangs{deps: &deps{handle: informerHandle{factory: factory}, ledger: NewLedger()}}
	g.podGroups()
	g.podInformer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	singles, gangs := g.split(logger, pods)
	if got, want := names(singles), []string{"single", "basic-1", "basic-2"}; !slices.Equal(got, want) {
		t.Errorf("pod by pod: %v, want %v", got, want)
	}
	var got []string
	for _, gg := range gangs {
		got = append(got, gg.name()+":"+fmt.Sprint(names(gg.pods)))
	}
	if want := []string{"default/a:[a-1 a-2 a-3]", "default/c:[c-3]"}; !slices.Equal(got, want) {
		t.Errorf("gangs %v, want %v", got, want)
	}
}

// TestGangWaitsForAllItsNodes: the pods of a gang planned here stay out of the queue
// (PreEnqueue) until the nodes of all its NodeClaims are initialized, then all are activated
// at once; not the pods of another group or of none. A claim of the gang that goes lets its
// pods go (they are planned again); so does the limit; a gang whose claims are all
// initialized already does not wait.
func TestGangWaitsForAllItsNodes(t *testing.T) {
	logger, ctx := ktesting.NewTestContext(t)
	member := func(name, group string) *v1.Pod {
		pod := plantest.PendingPod(name, "1").Obj()
		if group != "" {
			pod.Spec.SchedulingGroup = &v1.PodSchedulingGroup{PodGroupName: ptr.To(group)}
		}
		return pod
	}
	g1, g2, g3, other, single := member("g-1", "g"), member("g-2", "g"), member("g-3", "g"), member("o-1", "o"), member("s", "")
	// The nodes of the claims below; n2's node controller has not lifted its not-ready taint.
	node := func(name string, taints ...v1.Taint) *v1.Node {
		return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{Taints: taints}}
	}
	notReady := v1.Taint{Key: v1.TaintNodeNotReady, Effect: v1.TaintEffectNoSchedule}
	n2 := node("n2", notReady)
	p, h, clk := activatingPlugin(ctx, g1, g2, g3, other, single, node("n1"), n2, node("n3"), node("n4"))
	nodes := p.handle.SharedInformerFactory().Core().V1().Nodes()
	nodes.Informer()
	p.handle.SharedInformerFactory().Start(ctx.Done())
	p.handle.SharedInformerFactory().WaitForCacheSync(ctx.Done())
	p.batcher = newBatcher(clk, time.Second, 10*time.Second, func(context.Context) {})
	initialized := func(nc *v1alpha1.NodeClaim) *v1alpha1.NodeClaim {
		nc = nc.DeepCopy()
		for _, c := range []string{v1alpha1.ConditionRegistered, v1alpha1.ConditionInitialized} {
			nc.Status.Conditions = append(nc.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionTrue})
		}
		return nc
	}
	c1, c2, c3 := plantest.Claim("c1", "n1", "g-1", "g-2"), plantest.Claim("c2", "n2", "g-3"), plantest.Claim("c3", "n3", "o-1", "s")
	held := func(pod *v1.Pod) bool {
		t.Helper()
		st := p.PreEnqueue(ctx, pod)
		if !st.IsSuccess() && st.Code() != fwk.UnschedulableAndUnresolvable {
			t.Fatalf("PreEnqueue(%s) = %v", pod.Name, st)
		}
		return !st.IsSuccess()
	}
	start := func() {
		t.Helper()
		h.activated = nil
		for _, nc := range []*v1alpha1.NodeClaim{c1, c2, c3} {
			p.onNodeClaim(ctx, unstructuredClaim(t, nc))
		}
		if p.gangs.wait(logger, "default/g", []string{"c1", "c2"}) {
			t.Fatal("a gang whose nodes are not initialized does not wait")
		}
		for _, pod := range []*v1.Pod{g1, g2, g3} {
			if !held(pod) {
				t.Fatalf("%s let go while its gang's nodes are not initialized", pod.Name)
			}
		}
		// A cycle that reaches it anyway (from the backoff queue) fails at PreFilter.
		if _, st := p.PreFilter(ctx, nil, g1, nil); st.Code() != fwk.Unschedulable {
			t.Errorf("PreFilter of g-1 while its gang waits = %v, want Unschedulable", st)
		}
		for _, pod := range []*v1.Pod{other, single} {
			if held(pod) {
				t.Errorf("%s, of no gang that waits, held", pod.Name)
			}
		}
	}

	// activated returns the pods activated since the last call, sorted, once there are want
	// of them or a second has passed: a gang the scheduler's cache shows ready is activated
	// apart from the hint (activateGang).
	activated := func(want int) []string {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
			h.mu.Lock()
			got = slices.Clone(h.activated)
			h.mu.Unlock()
			if len(slices.Compact(slices.Sorted(slices.Values(got)))) >= want || time.Now().After(deadline) {
				break
			}
		}
		h.mu.Lock()
		h.activated = nil
		h.mu.Unlock()
		return slices.Compact(slices.Sorted(slices.Values(got)))
	}
	all := []string{"default/g-1", "default/g-2", "default/g-3"}
	// cacheSees calls the hint of the scheduler's node event, after its cache took node.
	cacheSees := func(node *v1.Node, claim string) {
		t.Helper()
		node = node.DeepCopy()
		node.Labels = map[string]string{v1alpha1.LabelNodeClaim: claim}
		if hint, err := p.hintGangNode(logger, g1, nil, node); err != nil || hint != fwk.QueueSkip {
			t.Fatalf("hintGangNode = %v, %v; want QueueSkip: the gang goes by activation", hint, err)
		}
	}

	start()
	// The scheduler's cache took n1, and n2 with the not-ready taint.
	cacheSees(node("n1"), "c1")
	cacheSees(n2, "c2")
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c1)))
	// (Its registration activated its pods: PreEnqueue held them again.)
	if !held(g1) || !held(g3) {
		t.Fatalf("one of two nodes initialized: g-1 held %v, g-3 held %v, want both held", held(g1), held(g3))
	}
	activated(0)
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c2)))
	// Initialized, but its node still has the node controller's not-ready taint: held.
	if got := activated(0); !held(g1) || len(got) > 1 {
		t.Fatalf("a gang let go (activated %v) while a node has the not-ready taint", got)
	}
	// The taint lifted, in the plugin's informer: the gang still waits for the scheduler's
	// cache, whose node handler runs apart (a cycle on its snapshot would meet the taint).
	n2ready := node("n2")
	if err := nodes.Informer().GetStore().Update(n2ready); err != nil {
		t.Fatal(err)
	}
	n2ready.Labels = map[string]string{v1alpha1.LabelNodeClaim: "c2"}
	p.onNode(ctx, n2ready)
	if got := activated(0); !held(g1) || slices.Contains(got, "default/g-1") {
		t.Fatalf("a gang let go (activated %v) on the informer's word, before the scheduler's cache showed its last node untainted", got)
	}
	// The scheduler's event: its cache shows n2 untainted, and the gang goes.
	cacheSees(n2ready, "c2")
	if got := activated(3); !slices.Equal(got, all) {
		t.Errorf("all nodes initialized: activated %v, want %v", got, all)
	}
	if held(g1) || held(g3) {
		t.Error("a gang whose nodes are all initialized still held")
	}
	if _, st := p.PreFilter(ctx, nil, g1, nil); !st.IsSuccess() {
		t.Errorf("PreFilter of g-1 once its gang's nodes are initialized = %v", st)
	}

	// A claim of the gang deleted (it could not launch): its pods are planned again, and the
	// gang waits for their new claim too, then goes.
	start()
	p.onNodeClaimDeleted(ctx, unstructuredClaim(t, c2))
	if !held(g1) {
		t.Error("a gang let go while the pods of a claim that went are planned again")
	}
	c4 := plantest.Claim("c4", "n4", "g-3")
	p.onNodeClaim(ctx, unstructuredClaim(t, c4))
	if p.gangs.wait(logger, "default/g", []string{"c4"}) {
		t.Fatal("a gang planned again whose new node is not initialized does not wait")
	}
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c1)))
	if !held(g1) {
		t.Error("a gang let go before the node of its new claim is initialized")
	}
	activated(0)
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c4)))
	// The scheduler sent no node event (its pods were not in its unschedulable pool, say):
	// the gang goes gangSettle after the informer showed it ready.
	if got := activated(0); !held(g1) || slices.Contains(got, "default/g-1") {
		t.Fatalf("a gang let go (activated %v) before gangSettle without the scheduler's node event", got)
	}
	clk.Step(gangSettle)
	if got := activated(3); !slices.Equal(got, all) || held(g1) {
		t.Errorf("the gang's old and new nodes initialized, gangSettle passed: activated %v, want %v, and let go", got, all)
	}
	p.onNodeClaimDeleted(ctx, unstructuredClaim(t, c4))

	// gangLaunchTimeout after the gang's first claims (the attempt went on through c2's
	// deletion above), it is released: every claim its pods are reserved on is deleted, the
	// launched one counted in resource-hours; another group's claim stays.
	start()
	scheme := runtime.NewScheme() // the claims are unstructured
	launchedC1 := c1.DeepCopy()
	launchedC1.Status.LaunchTime = &metav1.Time{Time: clk.Now().Add(-time.Hour)}
	launchedC1.Status.Capacity = v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), "nvidia.com/gpu": resource.MustParse("1"),
		v1.ResourceMemory: resource.MustParse("16Gi")}
	p.onNodeClaim(ctx, unstructuredClaim(t, launchedC1))
	var objs []runtime.Object
	for _, nc := range []*v1alpha1.NodeClaim{launchedC1, c2, c3} {
		u := unstructuredClaim(t, nc)
		u.SetAPIVersion(v1alpha1.NodeClaimGVR.GroupVersion().String())
		u.SetKind("NodeClaim")
		objs = append(objs, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{v1alpha1.NodeClaimGVR: "NodeClaimList"}, objs...)
	p.opts.Dynamic = dyn
	registerMetrics()
	gpuHours := counterValue(t, gangReleasedResourceHours.WithLabelValues("nvidia.com/gpu"))
	released := counterValue(t, gangsReleased)
	clk.Step(DefaultGangLaunchTimeout)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return counterValue(t, gangsReleased) > released, nil
	}); err != nil {
		t.Fatal("no gang released past gangLaunchTimeout")
	}
	list, err := dyn.Resource(v1alpha1.NodeClaimGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, u := range list.Items {
		left = append(left, u.GetName())
	}
	if want := []string{"c3"}; !slices.Equal(left, want) {
		t.Errorf("claims left after the gang's release: %v, want %v (the gang's deleted, the other group's kept)", left, want)
	}
	// One GPU, launched an hour before the timeout's start.
	if got, want := counterValue(t, gangReleasedResourceHours.WithLabelValues("nvidia.com/gpu"))-gpuHours, (time.Hour + DefaultGangLaunchTimeout).Hours(); math.Abs(got-want) > 0.01 {
		t.Errorf("GPU-hours counted for the released gang: %v, want %v", got, want)
	}
	if held(g1) {
		t.Error("a released gang's pods still held")
	}
	// A gang whose nodes were all initialized in time is not released.
	start()
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c1)))
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c2)))
	released = counterValue(t, gangsReleased)
	clk.Step(DefaultGangLaunchTimeout)
	time.Sleep(100 * time.Millisecond)
	if got := counterValue(t, gangsReleased); got != released {
		t.Error("a gang whose nodes were all initialized was released")
	}

	// Claims initialized already.
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c1)))
	if !p.gangs.wait(logger, "default/g", []string{"c1"}) {
		t.Error("a gang whose nodes are initialized waits")
	}
}

// counterValue is the value of counter c.
func counterValue(t *testing.T, c metrics.CounterMetric) float64 {
	t.Helper()
	v, err := testutil.GetCounterMetricValue(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestGangPlannedInOneZone: a gang whose PodGroup requires one zone
// (schedulingConstraints.topology on topology.kubernetes.io/zone) is planned in the zone that
// holds all of it, where a plan without the constraint spreads it over two (its small pods'
// only type, arm64, is offered in one zone, its big pod's cheapest in another, and a dearer
// type that holds the big pod in the first zone too); and in the zone of its pods already
// placed, when some are (there, with no type for the small pods, they are left unplanned
// rather than put elsewhere).
func TestGangPlannedInOneZone(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	small := plantest.InstanceType("small.large", "arm64", 2, 8, 0.01, 0.05, "us-east-1a")
	big := plantest.InstanceType("big.2xlarge", "amd64", 8, 32, 0.04, 0.2, "us-east-1b")
	both := plantest.InstanceType("both.4xlarge", "amd64", 16, 64, 0.2, 0.8, "us-east-1a")
	prov := plantest.Provisioner("default")
	member := func(name, cpu string) *v1.Pod {
		pod := plantest.PendingPod(name, cpu).Obj()
		pod.Spec.SchedulingGroup = &v1.PodSchedulingGroup{PodGroupName: ptr.To("g")}
		return pod
	}
	arm := func(pod *v1.Pod) *v1.Pod {
		pod.Spec.NodeSelector = map[string]string{v1.LabelArchStable: "arm64"}
		return pod
	}
	pods := []*v1.Pod{arm(member("s-1", "1500m")), arm(member("s-2", "1500m")), member("b-1", "6")}
	in := &plan.Input{Pods: pods, Provisioners: []*v1alpha1.Provisioner{prov},
		InstanceTypes: map[string][]*cloud.InstanceType{"default": {small, big, both}}, Region: "us-east-1"}
	zonesOf := func(result *plan.Result) []string {
		zones := sets.New[string]()
		for _, n := range result.Nodes {
			zones.Insert(n.Template.Offering.Zone)
		}
		return sets.List(zones)
	}
	free, err := plan.Plan(ctx, *in)
	if err != nil {
		t.Fatal(err)
	}
	if got := zonesOf(free); len(got) != 2 {
		t.Fatalf("without the constraint the plan is in zones %v; the test wants it spread over two", got)
	}

	p, _, _ := activatingPlugin(ctx, pods[0], pods[1], pods[2])
	group := &schedulingv1beta1.PodGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "g"}}
	group.Spec.SchedulingPolicy.Gang = &schedulingv1beta1.GangSchedulingPolicy{MinCount: 3}
	group.Spec.SchedulingConstraints = &schedulingv1beta1.PodGroupSchedulingConstraints{
		Topology: []schedulingv1beta1.TopologyConstraint{{Key: v1.LabelTopologyZone}}}
	g := &gang{group: group, pods: pods}
	result, err := p.planInOneZone(ctx, in, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Unplanned) > 0 {
		t.Fatalf("unplanned %v", result.Unplanned[0].Message())
	}
	// Only us-east-1a has types for all of it.
	if got, want := zonesOf(result), []string{"us-east-1a"}; !slices.Equal(got, want) {
		t.Errorf("the gang planned in zones %v, want %v", got, want)
	}

	// One of its pods bound in us-east-1b already: the rest go there too.
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n-b", Labels: map[string]string{v1.LabelTopologyZone: "us-east-1b"}}}
	bound := member("b-0", "1")
	bound.Spec.NodeName = "n-b"
	p, _, _ = activatingPlugin(ctx, pods[0], pods[1], pods[2], bound, node)
	p.handle.SharedInformerFactory().Core().V1().Nodes().Informer()
	p.handle.SharedInformerFactory().Start(ctx.Done())
	p.handle.SharedInformerFactory().WaitForCacheSync(ctx.Done())
	if result, err = p.planInOneZone(ctx, in, g); err != nil {
		t.Fatal(err)
	}
	if got, want := zonesOf(result), []string{"us-east-1b"}; !slices.Equal(got, want) || len(result.Unplanned) != 2 {
		t.Errorf("the gang, one of whose pods runs in us-east-1b, planned in zones %v with %d unplanned, want %v and its 2 small pods unplanned",
			got, len(result.Unplanned), want)
	}
}
