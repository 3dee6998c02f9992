package provision

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// affinityTargetsFirst reorders pods, largest first (sortLargestFirst), so that a pod whose
// required inter-pod affinity selects other pods of the plan comes after them: a chain of pods
// each affine to the one before it by hostname (db <- web <- cache) is planned link by link
// onto the node of its first link, which grows to hold them all, within one plan. Planned the
// other way round, a link finds none of its targets placed, is left to a later round, and
// then finds its target's node launched too small to take it.
//
// A pod waits for every pod its terms select, though one would satisfy it; pods that select
// each other (a cycle) keep their order. Only pods with required affinity terms move.
func affinityTargetsFirst(pods []*v1.Pod) []*v1.Pod {
	deps := map[*v1.Pod][]*v1.Pod{}
	for _, pod := range pods {
		a := pod.Spec.Affinity
		if a == nil || a.PodAffinity == nil || len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
			continue
		}
		// Like NodeInfo.AddPod, ignore terms the apiserver let through unparsed.
		info, _ := framework.NewPodInfo(pod)
		if info == nil {
			continue
		}
		var terms constraintTerms
		for _, t := range info.RequiredAffinityTerms {
			terms = append(terms, constraintTerm{AffinityTerm: t})
		}
		for _, other := range pods {
			if other != pod && terms.selects(other) {
				deps[pod] = append(deps[pod], other)
			}
		}
	}
	if len(deps) == 0 {
		return pods
	}
	out := make([]*v1.Pod, 0, len(pods))
	placed := make(map[*v1.Pod]bool, len(pods))
	ready := func(pod *v1.Pod) bool {
		for _, d := range deps[pod] {
			if !placed[d] {
				return false
			}
		}
		return true
	}
	var waiting []*v1.Pod
	emit := func(pod *v1.Pod) {
		out = append(out, pod)
		placed[pod] = true
		// Each placement may free pods that wait; those freed may free others.
		for progress := true; progress; {
			progress = false
			for i, w := range waiting {
				if w != nil && !placed[w] && ready(w) {
					waiting[i] = nil
					out = append(out, w)
					placed[w] = true
					progress = true
				}
			}
		}
	}
	for _, pod := range pods {
		if ready(pod) {
			emit(pod)
			continue
		}
		waiting = append(waiting, pod)
	}
	// What still waits selects pods that wait for it in turn: in order.
	for _, w := range waiting {
		if w != nil && !placed[w] {
			emit(w)
		}
	}
	return out
}
