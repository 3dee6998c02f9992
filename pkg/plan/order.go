package plan

import (
	"sort"

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
	deps := affinityTargets(pods)
	if len(deps) == 0 {
		return pods
	}
	o := &targetsFirst{deps: deps, out: make([]*v1.Pod, 0, len(pods)), placed: make(map[*v1.Pod]bool, len(pods))}
	for _, pod := range pods {
		if o.ready(pod) {
			o.emit(pod)
			continue
		}
		o.waiting = append(o.waiting, pod)
	}
	// What still waits selects pods that wait for it in turn: in order.
	for _, w := range o.waiting {
		if w != nil && !o.placed[w] {
			o.emit(w)
		}
	}
	return o.out
}

// affinityTargets returns, for each pod of pods with required inter-pod affinity terms, the
// other pods of pods those terms select.
func affinityTargets(pods []*v1.Pod) map[*v1.Pod][]*v1.Pod {
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
		var terms Terms
		for _, t := range info.RequiredAffinityTerms {
			terms = append(terms, Term{AffinityTerm: t})
		}
		for _, other := range pods {
			if other != pod && terms.Selects(other) {
				deps[pod] = append(deps[pod], other)
			}
		}
	}
	return deps
}

// targetsFirst is the state of affinityTargetsFirst: the pods in order so far, and those
// waiting for their targets.
type targetsFirst struct {
	deps    map[*v1.Pod][]*v1.Pod
	out     []*v1.Pod
	placed  map[*v1.Pod]bool
	waiting []*v1.Pod
}

// ready reports whether every target of pod is in order already.
func (o *targetsFirst) ready(pod *v1.Pod) bool {
	for _, d := range o.deps[pod] {
		if !o.placed[d] {
			return false
		}
	}
	return true
}

// emit puts pod next in order, and after it the waiting pods it frees.
func (o *targetsFirst) emit(pod *v1.Pod) {
	o.out = append(o.out, pod)
	o.placed[pod] = true
	// Each placement may free pods that wait; those freed may free others.
	for progress := true; progress; {
		progress = false
		for i, w := range o.waiting {
			if w != nil && !o.placed[w] && o.ready(w) {
				o.waiting[i] = nil
				o.out = append(o.out, w)
				o.placed[w] = true
				progress = true
			}
		}
	}
}

// sortLargestFirst orders pods by CPU request, then memory request, largest first, then by
// namespace and name so that plans are reproducible.
func sortLargestFirst(pods []*v1.Pod) {
	type key struct{ cpu, mem int64 }
	keys := map[*v1.Pod]key{}
	for _, pod := range pods {
		r := podRequests(pod)
		keys[pod] = key{r.Cpu().MilliValue(), r.Memory().Value()}
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := keys[pods[i]], keys[pods[j]]
		if a.cpu != b.cpu {
			return a.cpu > b.cpu
		}
		if a.mem != b.mem {
			return a.mem > b.mem
		}
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
}
