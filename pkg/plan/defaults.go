package plan

import (
	v1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// DefaultArchitecture is the architecture of the nodes planned for a pod that selects none,
// unless its Provisioner's requirements name the architectures: images are built for amd64
// far more often than for arm64, and an amd64-only image crashes on an arm64 node, which no
// Filter plugin can see.
const DefaultArchitecture = "amd64"

// defaultsReject returns why t is not a node nodewright plans for pod by its defaults, which
// go beyond what the scheduler's filters decide, or "" if it is:
//   - a pod that selects no kubernetes.io/arch gets DefaultArchitecture nodes, unless t's
//     Provisioner names architectures in its requirements;
//   - a pod that requests no GPU or accelerator gets no node that has one (a GPU instance
//     costs far more per CPU than its price per offering suggests to the other pods).
func defaultsReject(t *Template, pod *v1.Pod, req v1.ResourceList) string {
	if arch := t.Node.Labels[v1.LabelArchStable]; arch != DefaultArchitecture && !selectsLabel(pod, v1.LabelArchStable) &&
		!requiresLabel(t.Provisioner, v1.LabelArchStable) {
		return "pods that select no " + v1.LabelArchStable + " are planned onto " + DefaultArchitecture + " nodes"
	}
	if hasAccelerator(t) && !requestsAccelerator(req) {
		return "pods that request no GPU are not planned onto GPU nodes"
	}
	return ""
}

// hasAccelerator reports whether t's instance type has a GPU or accelerator, counted or
// fractional (its GPU name label says so when the count is 0).
func hasAccelerator(t *Template) bool {
	if t.Node.Labels[v1alpha1.LabelInstanceGPUName] != "" {
		return true
	}
	for _, name := range cloud.AcceleratorResources {
		if q, ok := t.Node.Status.Capacity[name]; ok && !q.IsZero() {
			return true
		}
	}
	return false
}

func requestsAccelerator(req v1.ResourceList) bool {
	for _, name := range cloud.AcceleratorResources {
		if q, ok := req[name]; ok && !q.IsZero() {
			return true
		}
	}
	return false
}

// selectsLabel reports whether pod's nodeSelector or required node affinity names key.
func selectsLabel(pod *v1.Pod, key string) bool {
	if _, ok := pod.Spec.NodeSelector[key]; ok {
		return true
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == key {
				return true
			}
		}
	}
	return false
}

// requiresLabel reports whether p's requirements name key.
func requiresLabel(p *v1alpha1.Provisioner, key string) bool {
	for _, r := range p.Spec.Requirements {
		if r.Key == key {
			return true
		}
	}
	return false
}
