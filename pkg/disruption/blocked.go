package disruption

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// doNotDisruptKeys are the annotations by which a user keeps a node, or the node of a pod,
// from being disrupted, with the value "true": nodewright's, Karpenter's (users migrating keep
// it on their workloads), and the seed's do-not-evict, which keeps a pod's node from emptiness
// and expiry already.
var doNotDisruptKeys = []string{v1alpha1.AnnotationDoNotDisrupt, "karpenter.sh/do-not-disrupt", v1alpha1.AnnotationDoNotEvict}

// Blocked returns why node, running pods, may not be disrupted now; "" if it may. A node is
// blocked by:
//   - a do-not-disrupt annotation (doNotDisruptKeys) on it, or on one of its pods;
//   - a pod no controller recreates (a pod without a controller owner): evicted, it is gone;
//   - a pod that a PodDisruptionBudget covers which allows no eviction now, or that more than
//     one budget covers (the Eviction API refuses to evict such a pod).
//
// DaemonSet and mirror pods do not count: they go with the node (plan.GoesWithNode).
// Terminal pods (Succeeded, Failed) do not either: nothing runs.
func Blocked(node *v1.Node, pods []*v1.Pod, pdbs []*policyv1.PodDisruptionBudget) string {
	if key := DoNotDisrupt(node.Annotations); key != "" {
		return fmt.Sprintf("node has annotation %s=true", key)
	}
	for _, pod := range pods {
		if plan.GoesWithNode(pod) || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		if key := DoNotDisrupt(pod.Annotations); key != "" {
			return fmt.Sprintf("pod %s has annotation %s=true", klog.KObj(pod), key)
		}
		if metav1.GetControllerOf(pod) == nil {
			return fmt.Sprintf("pod %s has no controller to recreate it", klog.KObj(pod))
		}
		if reason := pdbBlocks(pod, pdbs); reason != "" {
			return reason
		}
	}
	return ""
}

// DoNotDisrupt returns the first of doNotDisruptKeys that annotations set to "true"; "" if
// none.
func DoNotDisrupt(annotations map[string]string) string {
	for _, key := range doNotDisruptKeys {
		if annotations[key] == "true" {
			return key
		}
	}
	return ""
}

// pdbBlocks returns why the budgets keep pod from being evicted now; "" if they do not.
func pdbBlocks(pod *v1.Pod, pdbs []*policyv1.PodDisruptionBudget) string {
	var covering []*policyv1.PodDisruptionBudget
	for _, pdb := range pdbs {
		if pdb.Namespace != pod.Namespace || pdb.Spec.Selector == nil {
			continue
		}
		// In policy/v1 a null selector selects no pod and an empty one every pod of the
		// namespace; the Eviction API ignores a budget whose selector does not parse.
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		covering = append(covering, pdb)
	}
	switch {
	case len(covering) > 1:
		return fmt.Sprintf("pod %s is covered by %d PodDisruptionBudgets (%s, %s, ...): the Eviction API refuses to evict it",
			klog.KObj(pod), len(covering), covering[0].Name, covering[1].Name)
	case len(covering) == 1 && covering[0].Status.DisruptionsAllowed < 1:
		return fmt.Sprintf("PodDisruptionBudget %s allows no eviction of pod %s now", klog.KObj(covering[0]), klog.KObj(pod))
	}
	return ""
}
