package plan

import (
	"slices"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	o := &targetsFirst{out: make([]*v1.Pod, 0, len(pods)), placed: make(map[*v1.Pod]bool, len(pods)),
		missing: make(map[*v1.Pod]int, len(deps)), dependents: map[*v1.Pod][]*v1.Pod{}}
	for pod, targets := range deps {
		o.missing[pod] = len(targets)
		for _, t := range targets {
			o.dependents[t] = append(o.dependents[t], pod)
		}
	}
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
	// Terms select pods by namespace and labels: pods alike in both are selected alike.
	var alike [][]*v1.Pod
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
		if alike == nil {
			alike = byNamespaceAndLabels(pods)
		}
		for _, group := range alike {
			if !terms.Selects(group[0]) {
				continue
			}
			for _, other := range group {
				if other != pod {
					deps[pod] = append(deps[pod], other)
				}
			}
		}
	}
	return deps
}

// byNamespaceAndLabels groups pods by namespace and labels, in the order of each group's first pod.
func byNamespaceAndLabels(pods []*v1.Pod) [][]*v1.Pod {
	index := map[string]int{}
	var groups [][]*v1.Pod
	for _, pod := range pods {
		key := pod.Namespace + "/" + labels.Set(pod.Labels).String()
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], pod)
	}
	return groups
}

// targetsFirst is the state of affinityTargetsFirst: the pods in order so far (placed), and
// those waiting for their targets; missing counts, for each pod with targets, those not in
// order yet, dependents are the pods whose targets include each pod, and freed is set when a
// count comes to 0.
type targetsFirst struct {
	freed      bool
	out        []*v1.Pod
	placed     map[*v1.Pod]bool
	waiting    []*v1.Pod
	missing    map[*v1.Pod]int
	dependents map[*v1.Pod][]*v1.Pod
}

// ready reports whether every target of pod is in order already.
func (o *targetsFirst) ready(pod *v1.Pod) bool { return o.missing[pod] == 0 }

// put puts pod next in order.
func (o *targetsFirst) put(pod *v1.Pod) {
	o.out = append(o.out, pod)
	o.placed[pod] = true
	for _, d := range o.dependents[pod] {
		if o.missing[d]--; o.missing[d] == 0 {
			o.freed = true
		}
	}
}

// emit puts pod next in order, and after it the waiting pods it frees.
func (o *targetsFirst) emit(pod *v1.Pod) {
	o.put(pod)
	// Each placement may free pods that wait; those freed may free others.
	for o.freed {
		o.freed = false
		for i, w := range o.waiting {
			if w != nil && !o.placed[w] && o.ready(w) {
				o.waiting[i] = nil
				o.put(w)
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

// sortBalanced reorders pods, sorted largest first (sortLargestFirst), to the shapes of the
// LP relaxation's optimum (see shadowPrices), fewest GiB per core first: as many cores of pods
// as each shape covers come in that shape's ratio of memory to cpu, those that request more
// memory per core interleaved with those that request less, while pods of both kinds are
// left. First-fit then fills the cpu and memory of a node of the shape together, and the
// pods that suit another shape are left for its nodes. Packed in plain largest-first order,
// the first nodes fill their cpu with the cpu-heavy pods and keep memory nobody takes, and
// the last ones the reverse. Without shapes the order stays largest first.
func sortBalanced(pods []*v1.Pod, requests func(*v1.Pod) v1.ResourceList, shapes []shape) {
	if len(shapes) == 0 {
		return
	}
	sorted := slices.Clone(pods)
	used := make([]bool, len(sorted))
	// next[kind] is where the search for the next pod of a kind (0: cpu-heavy, 1: memory-heavy
	// at the current shape's ratio) resumes: the pods before it are used or of the other kind.
	var next [2]int
	var cpu, mem, covered float64
	s := 0
	for i := range pods {
		for s < len(shapes)-1 && cpu >= covered+shapes[s].cores {
			covered += shapes[s].cores
			s++
			next = [2]int{}
		}
		ratio := shapes[s].ratio
		kind := 0
		if mem < ratio*cpu {
			kind = 1
		}
		k := -1
		for _, want := range []int{kind, 1 - kind} {
			for j := next[want]; j < len(sorted); j++ {
				if r := requests(sorted[j]); !used[j] && (gib(r) >= ratio*cores(r)) == (want == 1) {
					k, next[want] = j, j
					break
				}
			}
			if k >= 0 {
				break
			}
			next[want] = len(sorted)
		}
		used[k] = true
		r := requests(sorted[k])
		cpu, mem = cpu+cores(r), mem+gib(r)
		pods[i] = sorted[k]
	}
}

// apartFirst moves to the front, in their order, the pods that keep pods like themselves off
// their node (key, apartKey or a cache of it, is not ""): every such pod needs a node of its
// own, so the plan opens those nodes first, each sized by the objective for the fill the
// queue holds, and the other pods fill their room. Placed in size order among the others, the
// last of them each open a node for one pod at the end, when the queue has little left to
// fill it.
func apartFirst(pods []*v1.Pod, key func(*v1.Pod) string) []*v1.Pod {
	out := make([]*v1.Pod, 0, len(pods))
	var rest []*v1.Pod
	for _, pod := range pods {
		if key(pod) != "" {
			out = append(out, pod)
		} else {
			rest = append(rest, pod)
		}
	}
	return append(out, rest...)
}

// apartKey identifies the required anti-affinity term on the hostname by which pod keeps
// pods like itself off its node (replicas one per node): the first that selects pod itself;
// "" if none does. Two pods with one key keep each other off a node.
func apartKey(pod *v1.Pod) string {
	a := pod.Spec.Affinity
	if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		return ""
	}
	for _, t := range TermsOf(pod) {
		if t.anti && t.TopologyKey == v1.LabelHostname && t.Selects(pod) {
			return t.key()
		}
	}
	return ""
}
