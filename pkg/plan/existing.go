package plan

import (
	"context"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Without returns in with the nodes named nodeNames taken out of the cluster, and their pods
// to be planned again, as their controllers will recreate them once the nodes are gone: each
// a copy with no node, added to Pods. DaemonSet pods and mirror pods go with their nodes. It
// is the question scale-down asks: where would the pods of these nodes go without them?
// Plan it with Existing naming the nodes whose room may take them, and MaxNewNodes.
func (in Input) Without(nodeNames ...string) Input {
	gone := sets.New(nodeNames...)
	out := in
	out.Nodes = slices.DeleteFunc(slices.Clone(in.Nodes), func(n *v1.Node) bool { return gone.Has(n.Name) })
	out.Pods = slices.Clone(in.Pods)
	out.ScheduledPods = nil
	for _, pod := range in.ScheduledPods {
		switch {
		case !gone.Has(pod.Spec.NodeName):
			out.ScheduledPods = append(out.ScheduledPods, pod)
		case !GoesWithNode(pod):
			c := pod.DeepCopy()
			c.Spec.NodeName = ""
			out.Pods = append(out.Pods, c)
		}
	}
	return out
}

// GoesWithNode reports whether pod is one its node's removal removes for good: a DaemonSet's
// pod or a mirror pod.
func GoesWithNode(pod *v1.Pod) bool {
	if _, mirror := pod.Annotations[v1.MirrorPodAnnotationKey]; mirror {
		return true
	}
	return slices.ContainsFunc(pod.OwnerReferences, func(o metav1.OwnerReference) bool { return o.Kind == "DaemonSet" })
}

// openExisting makes an open node of each Existing node of the cluster, whose free room the
// plan may use.
func (p *packer) openExisting() {
	for _, name := range p.in.Existing {
		if !p.sim.HasNode(name) {
			p.logger.V(4).Info("Existing node not in the cluster; its room is not used", "node", name)
			continue
		}
		p.existing = append(p.existing, &openNode{name: name, podReqs: v1.ResourceList{}})
	}
}

// tryAddExisting puts f's pod on existing node n if its Filter plugins accept it there, with
// the node's pods and those planned there now.
func (p *packer) tryAddExisting(ctx context.Context, n *openNode, f *podFacts) bool {
	if !p.sim.Check(ctx, f.pod, n.name).IsSuccess() {
		return false
	}
	n.pods = append(n.pods, f.pod)
	n.request(f.req)
	_ = p.sim.Place(f.pod, n.name)
	return true
}

// atNodeLimit reports whether the plan has opened the most new nodes Input.MaxNewNodes
// allows.
func (p *packer) atNodeLimit() bool {
	return p.in.MaxNewNodes != nil && len(p.nodes) >= *p.in.MaxNewNodes
}
