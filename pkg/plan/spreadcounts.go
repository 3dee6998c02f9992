package plan

import (
	"encoding/json"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Spread counts. The plan places pods one after another, each where PodTopologySpread accepts
// it with the pods placed before it; the scheduler binds the pods of the new nodes in an
// order of its own, as their nodes register and its queue pops them. A pod of a zone spread
// whose node registers first fails its cycle when the pods its skew needs in the other zones
// have not bound yet: each failure writes the pod's status from the scheduler's only
// scheduling goroutine (some 40 ms on a busy apiserver; 150 of them in the last 9 s of a
// 1,000-pod scale-up) and waits for a retry.
//
// SpreadCounts lets the plugin try such a pod only once PodTopologySpread will take it: for
// each hard spread constraint of a pod reserved on a NodeClaim, the domains the constraint
// counts pods in (those of its bound pods and of the pods reserved on claims) with the pods
// bound there, and for each reserved pod the constraints that count it, and where. The
// plugin adds the reserved pods as the scheduler places them, and lets a pod go once its
// domain's count (with the pods let go there and not placed yet) plus one exceeds the
// smallest count by at most the constraint's maxSkew, PodTopologySpread's own rule.
//
// The pods the scheduler places that no plan reserved (into an existing node's room, say)
// are counted where they land, through each constraint's counter. What the gate cannot see
// is not: a bound pod that goes, a pod another scheduler binds, a node with no pod the
// constraint counts. The scheduler then judges as it would without the counts.
type SpreadCounts struct {
	// Bound are, by constraint (SpreadNeed.Constraint), the pods it counts bound in each of
	// its domains; every domain with a pod it counts is there, with 0 if none is bound.
	Bound map[string]map[string]int
	// Needs are, by pod UID, the hard spread constraints of the pods of the plan, each with
	// the domain of the pod's node.
	Needs map[types.UID][]SpreadNeed
	// Counted are, by pod UID, the constraints that count a pod reserved on a claim (of this
	// plan or an earlier one), each with the domain of its node.
	Counted map[types.UID][]SpreadDomain
	// counters say, by constraint, in which domain a pod on a node counts, if it does: for
	// the pods the scheduler places that no plan reserved (SpreadGate.PlacedOn).
	counters map[string]spreadCount
}

// spreadCount says in which domain of a constraint pod, on node, counts, if it does.
type spreadCount func(pod *v1.Pod, node *v1.Node) (string, bool)

// SpreadNeed is a hard spread constraint of a pod: the pod's node is in Domain.
type SpreadNeed struct {
	SpreadDomain
	MaxSkew int
}

// SpreadDomain is a domain of a constraint, named by its key in SpreadCounts.Bound.
type SpreadDomain struct {
	Constraint, Domain string
}

// spreadCounts returns the SpreadCounts of the plan: nodes are the nodes of the claims, new
// and launched, with the pods planned there.
func (p *packer) spreadCounts(nodes []*openNode) *SpreadCounts {
	var reserved, bound []placedPod
	for _, pod := range p.in.ScheduledPods {
		if p.in.Reserved.Has(pod.UID) {
			reserved = append(reserved, placedPod{pod, pod.Spec.NodeName})
		} else {
			bound = append(bound, placedPod{pod, pod.Spec.NodeName})
		}
	}
	var constrained []placedPod
	for _, n := range nodes {
		for _, pod := range n.pods {
			reserved = append(reserved, placedPod{pod, n.name})
			if spreadKey(pod) != "" {
				constrained = append(constrained, placedPod{pod, n.name})
			}
		}
	}
	if len(constrained) == 0 {
		return nil
	}
	nodeOf := func(name string) *v1.Node {
		if ni, ok := p.sim.snap.nodes[name]; ok {
			return ni.Node()
		}
		return nil
	}
	out := &SpreadCounts{Bound: map[string]map[string]int{}, Needs: map[types.UID][]SpreadNeed{}, Counted: map[types.UID][]SpreadDomain{},
		counters: map[string]spreadCount{}}
	on := func(count spreadCount, q placedPod) (string, bool) {
		if node := nodeOf(q.node); node != nil {
			return count(q.pod, node)
		}
		return "", false
	}
	for _, x := range constrained {
		node := nodeOf(x.node)
		if node == nil {
			continue
		}
		for _, c := range x.pod.Spec.TopologySpreadConstraints {
			d, ok := node.Labels[c.TopologyKey]
			if c.WhenUnsatisfiable != v1.DoNotSchedule || !ok {
				continue
			}
			key, count := spreadCounter(x.pod, c)
			out.Needs[x.pod.UID] = append(out.Needs[x.pod.UID], SpreadNeed{SpreadDomain{key, d}, int(c.MaxSkew)})
			if out.Bound[key] != nil {
				continue
			}
			out.counters[key] = count
			counts := map[string]int{}
			for _, b := range bound {
				if dom, ok := on(count, b); ok {
					counts[dom]++
				}
			}
			for _, r := range reserved {
				if dom, ok := on(count, r); ok {
					counts[dom] += 0
					out.Counted[r.pod.UID] = append(out.Counted[r.pod.UID], SpreadDomain{key, dom})
				}
			}
			out.Bound[key] = counts
		}
	}
	return out
}

type placedPod struct {
	pod  *v1.Pod
	node string
}

// spreadCounter returns a key that names what pod's constraint c counts, and in which domain
// a pod counts for it, if it does: a pod of pod's namespace that c's selector (with its
// matchLabelKeys) selects, on a node with c's topology key that pod's required node affinity
// accepts, unless c's nodeAffinityPolicy ignores it. Pods whose constraints count the same
// pods share the key, whatever else differs (a StatefulSet's pods are labelled each with its
// own name).
func spreadCounter(pod *v1.Pod, c v1.TopologySpreadConstraint) (string, spreadCount) {
	sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
	if err != nil {
		sel = labels.Nothing()
	}
	for _, k := range c.MatchLabelKeys {
		if v, ok := pod.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, selection.Equals, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	affinity := nodeaffinity.GetRequiredNodeAffinity(pod)
	honor := c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor
	nodes := ""
	if honor {
		var required *v1.NodeSelector
		if pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil {
			required = pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		}
		b, _ := json.Marshal(struct {
			Selector map[string]string
			Required *v1.NodeSelector
		}{pod.Spec.NodeSelector, required})
		nodes = string(b)
	}
	key := strings.Join([]string{pod.Namespace, sel.String(), c.TopologyKey, nodes}, "\x00")
	return key, func(q *v1.Pod, node *v1.Node) (string, bool) {
		if q.Namespace != pod.Namespace || !sel.Matches(labels.Set(q.Labels)) {
			return "", false
		}
		dom, ok := node.Labels[c.TopologyKey]
		if !ok {
			return "", false
		}
		if honor {
			if match, _ := affinity.Match(node); !match {
				return "", false
			}
		}
		return dom, true
	}
}
