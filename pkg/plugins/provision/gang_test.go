package provision

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
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
	p, h, clk := activatingPlugin(ctx, g1, g2, g3, other, single)
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

	start()
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c1)))
	// (Its registration activated its pods: PreEnqueue held them again.)
	if !held(g1) || !held(g3) {
		t.Fatalf("one of two nodes initialized: g-1 held %v, g-3 held %v, want both held", held(g1), held(g3))
	}
	h.activated = nil
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c2)))
	// (c2's registration, in the same update, activated g-3 too.)
	slices.Sort(h.activated)
	h.activated = slices.Compact(h.activated)
	if want := []string{"default/g-1", "default/g-2", "default/g-3"}; !slices.Equal(h.activated, want) {
		t.Errorf("all nodes initialized: activated %v, want %v", h.activated, want)
	}
	if held(g1) || held(g3) {
		t.Error("a gang whose nodes are all initialized still held")
	}
	if _, st := p.PreFilter(ctx, nil, g1, nil); !st.IsSuccess() {
		t.Errorf("PreFilter of g-1 once its gang's nodes are initialized = %v", st)
	}

	// A claim of the gang deleted: the others' pods no longer wait for it.
	start()
	p.onNodeClaimDeleted(ctx, unstructuredClaim(t, c2))
	if held(g1) {
		t.Error("a gang one of whose claims went still holds its other pods")
	}

	// The limit.
	start()
	clk.Step(gangWaitLimit)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return !held(g1), nil
	}); err != nil {
		t.Error("a gang still held past the limit")
	}

	// Claims initialized already.
	p.onNodeClaim(ctx, unstructuredClaim(t, initialized(c1)))
	if !p.gangs.wait(logger, "default/g", []string{"c1"}) {
		t.Error("a gang whose nodes are initialized waits")
	}
}
