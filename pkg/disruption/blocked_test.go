package disruption

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestBlocked(t *testing.T) {
	owned := func(name string, labels map[string]string) *v1.Pod {
		return st.MakePod().Namespace("default").Name(name).Labels(labels).
			OwnerReference("web-abc", metav1.SchemeGroupVersion.WithKind("ReplicaSet")).Obj()
	}
	annotated := func(pod *v1.Pod, key string) *v1.Pod {
		pod.Annotations = map[string]string{key: "true"}
		return pod
	}
	daemon := st.MakePod().Namespace("kube-system").Name("agent-x").
		OwnerReference("agent", metav1.SchemeGroupVersion.WithKind("DaemonSet")).Obj()
	bare := st.MakePod().Namespace("default").Name("bare").Obj()
	done := st.MakePod().Namespace("default").Name("job-done").Phase(v1.PodSucceeded).Obj()
	pdb := func(name string, allowed int32, selector *metav1.LabelSelector) *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{Selector: selector}, Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed}}
	}
	web := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	for _, tc := range []struct {
		name     string
		node     *v1.Node
		pods     []*v1.Pod
		pdbs     []*policyv1.PodDisruptionBudget
		blocking string // "" for none; else a part of the reason
	}{
		{name: "pods with a controller, a DaemonSet pod and a finished pod: free",
			pods: []*v1.Pod{owned("web-1", map[string]string{"app": "web"}), daemon, done}, pdbs: []*policyv1.PodDisruptionBudget{pdb("web", 1, web)}},
		{name: "the node annotated", node: st.MakeNode().Name("n").Annotation(v1alpha1.AnnotationDoNotDisrupt, "true").Obj(), blocking: "node has annotation nodewright.dev/do-not-disrupt"},
		{name: "a pod annotated", pods: []*v1.Pod{annotated(owned("web-1", nil), v1alpha1.AnnotationDoNotDisrupt)}, blocking: "pod default/web-1 has annotation nodewright.dev/do-not-disrupt"},
		{name: "a pod annotated for Karpenter", pods: []*v1.Pod{annotated(owned("web-1", nil), "karpenter.sh/do-not-disrupt")}, blocking: "karpenter.sh/do-not-disrupt"},
		{name: "annotated false: free", pods: []*v1.Pod{func() *v1.Pod {
			p := owned("web-1", nil)
			p.Annotations = map[string]string{v1alpha1.AnnotationDoNotDisrupt: "false"}
			return p
		}()}},
		{name: "a pod annotated do-not-evict, the seed's way", pods: []*v1.Pod{annotated(owned("web-1", nil), v1alpha1.AnnotationDoNotEvict)}, blocking: "nodewright.dev/do-not-evict"},
		{name: "a pod without a controller", pods: []*v1.Pod{bare}, blocking: "pod default/bare has no controller"},
		{name: "a budget that allows no eviction", pods: []*v1.Pod{owned("web-1", map[string]string{"app": "web"})},
			pdbs: []*policyv1.PodDisruptionBudget{pdb("web", 0, web)}, blocking: "PodDisruptionBudget default/web allows no eviction"},
		{name: "an empty selector covers every pod of the namespace", pods: []*v1.Pod{owned("db-1", map[string]string{"app": "db"})},
			pdbs: []*policyv1.PodDisruptionBudget{pdb("all", 0, &metav1.LabelSelector{})}, blocking: "PodDisruptionBudget default/all"},
		{name: "a null selector covers none", pods: []*v1.Pod{owned("db-1", map[string]string{"app": "db"})},
			pdbs: []*policyv1.PodDisruptionBudget{pdb("none", 0, nil)}},
		{name: "two budgets over one pod", pods: []*v1.Pod{owned("web-1", map[string]string{"app": "web"})},
			pdbs: []*policyv1.PodDisruptionBudget{pdb("a", 1, web), pdb("b", 1, &metav1.LabelSelector{})}, blocking: "covered by 2 PodDisruptionBudgets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := tc.node
			if node == nil {
				node = st.MakeNode().Name("n").Obj()
			}
			got := Blocked(node, tc.pods, tc.pdbs)
			if (got == "") != (tc.blocking == "") || !strings.Contains(got, tc.blocking) {
				t.Errorf("Blocked = %q, want %q", got, tc.blocking)
			}
		})
	}
}
