package provision

import (
	"fmt"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/utils/ptr"

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
