// Package disruption decides which of the nodes nodewright launched the cluster can do
// without, and what replaces them, with the scheduler's own Filter plugins: a consolidation
// is a plan (pkg/plan) of the candidates' pods, those their controllers will recreate, and of
// the pending pods, on the cluster without the candidates, into the free room of the nodes
// that stay and onto at most one new node. It is accepted only if every one of those pods is
// placed, so a consolidation never leaves a pod without a node the scheduler accepts.
//
// This package holds the decision. Finding the candidates (past consolidateAfter, no pod
// that blocks, within budgets), deciding again after a delay, and carrying the decision out
// (taint, launch the replacement, evict, terminate) are the disruption controller's.
package disruption

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// MinSavingsFraction is the least fraction of the removed nodes' price a replacement must
// save: a consolidation that moves pods for pennies is churn, and prices move by more than
// that. Deleting nodes whose pods fit elsewhere saves their whole price and is always taken.
const MinSavingsFraction = 0.10

// MaxMultiNode is the most candidates one decision removes.
const MaxMultiNode = 100

// Candidate is a node nodewright launched that a consolidation may remove.
type Candidate struct {
	// Node is the node's name among the cluster's nodes, Claim its NodeClaim's name.
	Node, Claim string
	// Provisioner names the claim's Provisioner, whose budget the node counts against.
	Provisioner string
	// Price is what the node costs per hour: its offering's price and its node cost (as
	// plan.Template.Cost counts a planned node's).
	Price float64
}

// Method is how a decision removes its nodes.
type Method string

const (
	// MethodDelete removes the nodes: their pods fit on the nodes that stay.
	MethodDelete Method = "delete"
	// MethodReplace removes the nodes and launches one node for the pods that do not fit on
	// the nodes that stay: cheaper than them, for a consolidation.
	MethodReplace Method = "replace"
)

// Decision is a consolidation.
type Decision struct {
	// Reason is why: Underutilized for a consolidation, Drifted for a drifted node's
	// replacement.
	Reason v1alpha1.DisruptionReason
	// Why says more of the reason: what drifted.
	Why    string
	Method Method
	// Nodes are the candidates it removes.
	Nodes []Candidate
	// Replacement is the node it launches (Replace only), with the pods planned onto it.
	Replacement *plan.PlannedNode
	// Moves are the pods planned into the free room of the nodes that stay.
	Moves []*plan.AddedPods
	// Savings is what the fleet costs less per hour: the nodes' price, less the
	// replacement's cost.
	Savings float64
}

// String describes d in one line, as the logs and events say it.
func (d *Decision) String() string {
	s := fmt.Sprintf("%s %d node(s) (%s)", d.Method, len(d.Nodes), names(d.Nodes))
	if r := d.Replacement; r != nil {
		s += fmt.Sprintf(" with a %s node from types [%s]", r.Template.Offering.CapacityType, strings.Join(r.InstanceTypeNames(), ", "))
	}
	return s + fmt.Sprintf(", saving %.4f USD/h", d.Savings)
}

// Consolidate returns the consolidation of candidates that saves the most it can find, or
// nil if none saves anything. cluster is the cluster now: its nodes (the candidates among
// them), the pods bound to them, its pending pods, Provisioners, instance types and
// DaemonSets; it is not changed.
//
// Candidates are ordered by what they cost per unit of disruption (disruptionCost), dearest
// first. The longest prefix of them, of 2 up to MaxMultiNode, that can be deleted or
// replaced by one cheaper node is found by bisection (which assumes that a prefix that
// cannot be consolidated has no longer one that can: not always so, but it bounds the plans
// to a few); failing that, each candidate alone, in order.
//
// allowed bounds how many nodes of each Provisioner one decision removes (its budget; a
// Provisioner it does not name is unbounded): the prefixes are of the candidates that fit
// in them, in order; each candidate alone needs a budget of one.
func Consolidate(ctx context.Context, cluster plan.Input, candidates []Candidate, allowed map[string]int) (*Decision, error) {
	ordered := byValue(cluster, candidates)
	taken := map[string]int{}
	var multi []Candidate
	for _, c := range ordered {
		if n, bounded := allowed[c.Provisioner]; !bounded || taken[c.Provisioner] < n {
			taken[c.Provisioner]++
			multi = append(multi, c)
		}
	}
	lo, hi := 2, min(len(multi), MaxMultiNode)
	var best *Decision
	for lo <= hi {
		mid := (lo + hi) / 2
		d, err := consolidate(ctx, cluster, multi[:mid], v1alpha1.DisruptionUnderutilized)
		if err != nil {
			return nil, err
		}
		if d == nil {
			hi = mid - 1
			continue
		}
		// Of two that save alike, the one that moves fewer nodes' pods.
		if best == nil || d.Savings > best.Savings+1e-9 {
			best = d
		}
		lo = mid + 1
	}
	if best != nil {
		return best, nil
	}
	for _, c := range ordered {
		if n, bounded := allowed[c.Provisioner]; bounded && n < 1 {
			continue
		}
		d, err := consolidate(ctx, cluster, []Candidate{c}, v1alpha1.DisruptionUnderutilized)
		if err != nil || d != nil {
			return d, err
		}
	}
	return nil, nil
}

// Replace returns the decision that removes a drifted node: deleting it if its pods and the
// pending ones all fit on the nodes that stay, else replacing it with one new node that
// takes the rest, whatever it costs; nil if neither.
func Replace(ctx context.Context, cluster plan.Input, node Candidate) (*Decision, error) {
	return consolidate(ctx, cluster, []Candidate{node}, v1alpha1.DisruptionDrifted)
}

// consolidate returns the decision that removes nodes for reason, deleting them if their pods
// and the pending ones all fit on the nodes that stay, else replacing them if one new node
// takes the rest (and, for a consolidation, costs less than the nodes by
// MinSavingsFraction); nil if neither.
func consolidate(ctx context.Context, cluster plan.Input, nodes []Candidate, reason v1alpha1.DisruptionReason) (*Decision, error) {
	names := make([]string, len(nodes))
	var price float64
	for i, c := range nodes {
		names[i] = c.Node
		price += c.Price
	}
	in := cluster.Without(names...)
	in.Existing = nil
	for _, n := range in.Nodes {
		in.Existing = append(in.Existing, n.Name)
	}
	in.Nodes, in.ScheduledPods = draining(cluster, in, names)
	for _, newNodes := range []int{0, 1} {
		in.MaxNewNodes = &newNodes
		result, err := plan.Plan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("planning the pods of %s elsewhere: %w", strings.Join(names, ", "), err)
		}
		if len(result.Unplanned) > 0 {
			continue
		}
		d := &Decision{Reason: reason, Method: MethodDelete, Nodes: nodes, Moves: result.Added, Savings: price}
		if len(result.Nodes) == 1 {
			d.Method, d.Replacement = MethodReplace, result.Nodes[0]
			d.Savings -= d.Replacement.Cost()
			if reason == v1alpha1.DisruptionUnderutilized {
				// The launch may pick any of the replacement's instance types: keep those
				// that save enough, and count the dearest of them, or a replacement of a
				// dearer type would itself be replaced, and so on.
				r := *d.Replacement
				extra := r.Cost() - r.Template.Cost()
				r.Options = slices.DeleteFunc(slices.Clone(r.Options), func(o *plan.Template) bool {
					return price-(o.Cost()+extra) <= MinSavingsFraction*price
				})
				if len(r.Options) == 0 {
					return nil, nil
				}
				worst := 0.0
				for _, o := range r.Options {
					worst = max(worst, o.Cost()+extra)
				}
				d.Replacement, d.Savings = &r, price-worst
			}
		}
		return d, nil
	}
	return nil, nil
}

// draining returns in's nodes and bound pods with the nodes named names back, as they are
// while their pods move: cordoned and tainted disrupted, running only the pods that go with
// them. The scheduler places the moved pods while those nodes drain, and they still count as
// domains of topology spread then (nodeTaintsPolicy Ignore, the default): a hostname-spread
// pod may not join its sibling on the replacement while its old node holds none. Planning
// as if they were gone already sent such pods pending, to be provisioned for, and
// consolidated again: churn. They are not in Existing: no pod is planned onto them.
func draining(cluster, in plan.Input, names []string) ([]*v1.Node, []*v1.Pod) {
	gone := sets.New(names...)
	nodes, pods := slices.Clone(in.Nodes), slices.Clone(in.ScheduledPods)
	for _, n := range cluster.Nodes {
		if !gone.Has(n.Name) {
			continue
		}
		c := n.DeepCopy()
		c.Spec.Unschedulable = true
		c.Spec.Taints = append(c.Spec.Taints, v1.Taint{Key: v1alpha1.TaintDisrupted, Effect: v1.TaintEffectNoSchedule})
		nodes = append(nodes, c)
	}
	for _, pod := range cluster.ScheduledPods {
		if gone.Has(pod.Spec.NodeName) && plan.GoesWithNode(pod) {
			pods = append(pods, pod)
		}
	}
	return nodes, pods
}

// byValue returns candidates ordered by price per unit of disruption (disruptionCost of the
// pods on the node), highest first, then by name.
func byValue(cluster plan.Input, candidates []Candidate) []Candidate {
	names := sets.New[string]()
	for _, c := range candidates {
		names.Insert(c.Node)
	}
	cost := map[string]float64{}
	for _, pod := range cluster.ScheduledPods {
		if names.Has(pod.Spec.NodeName) && !plan.GoesWithNode(pod) {
			cost[pod.Spec.NodeName] += disruptionCost(pod)
		}
	}
	out := slices.Clone(candidates)
	slices.SortStableFunc(out, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(b.Price/(1+cost[b.Node]), a.Price/(1+cost[a.Node])), strings.Compare(a.Node, b.Node))
	})
	return out
}

// disruptionCost is what evicting pod costs, in pods: 1, more for a pod whose
// controller.kubernetes.io/pod-deletion-cost or priority is high, less (down to 1/16) for
// one whose deletion cost is negative. Each of the two, an int32, adds up to 16 at its
// largest.
func disruptionCost(pod *v1.Pod) float64 {
	c := 1.0
	if s, ok := pod.Annotations[podDeletionCost]; ok {
		if v, err := strconv.ParseInt(s, 10, 32); err == nil {
			c += float64(v) / (math.MaxInt32 / 16)
		}
	}
	if pod.Spec.Priority != nil {
		c += float64(*pod.Spec.Priority) / (math.MaxInt32 / 16)
	}
	return max(c, 1.0/16)
}

// podDeletionCost is the annotation by which a pod's owner says how much its deletion costs
// against its siblings' (the ReplicaSet controller's).
const podDeletionCost = "controller.kubernetes.io/pod-deletion-cost"
