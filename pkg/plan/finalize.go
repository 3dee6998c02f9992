package plan

import (
	"context"

	v1 "k8s.io/api/core/v1"
)

// rehome moves n, whose pods are movable (no pod's placement depends on where they go, and
// theirs on no other pod), to the template of its Provisioner and chosen labels, in any zone
// and capacity type, that costs the least with them (Template.CostWith) and holds them all:
// the node grew within the zone and capacity type of its first pod's cheapest template, by
// price alone, which need not be the cheapest place for all of them.
func (p *packer) rehome(ctx context.Context, n *openNode) {
	current := n.candidates[0]
	cpu := cores(n.podReqs)
	best, least := current, current.CostWith(cpu)
	for _, t := range p.templates[current.group] {
		if t.Cost() >= least {
			break // cheapest first, and CostWith is at least Cost
		}
		if c := t.CostWith(cpu); t != current && c < least && p.holdsAll(ctx, t, n.pods, n.podReqs) &&
			p.withinLimits(t, current.InstanceType.Capacity) {
			best, least = t, c
		}
	}
	if best == current {
		return
	}
	t := p.preferredHome(ctx, n, best)
	if t.CostWith(cpu) >= current.CostWith(cpu) {
		return
	}
	candidates := []*Template{t}
	for _, o := range p.sameOffering(t) {
		if o != t && o.Offering.Price >= t.Offering.Price &&
			p.holdsAll(ctx, o, n.pods, n.podReqs) {
			candidates = append(candidates, o)
		}
	}
	p.logger.V(4).Info("Moved planned node to a cheaper offering", "node", n.name, "from", current.Key, "to", t.Key)
	p.release(current)
	p.reserve(t)
	n.candidates = candidates
	p.install(n, t)
}

// holdsAll reports whether a node of t holds pods, which are independent, together; total
// is the sum of their requests.
func (p *packer) holdsAll(ctx context.Context, t *Template, pods []*v1.Pod, total v1.ResourceList) bool {
	if fitsResources(total, t.DaemonRequests, t.allocatable) != "" {
		return false
	}
	for _, pod := range pods {
		if f := p.facts(pod); p.in.Avoid[pod.UID].Has(t.Shape) || !p.labelsPass(t, f) || p.excludedFor(t, f) != "" ||
			!p.sim.CheckEmpty(ctx, pod, p.signature(pod), t).IsSuccess() {
			return false
		}
	}
	return true
}

// mayHoldAll reports whether a node of t may hold pods, which request total together, by
// what mayHold checks of pods that depend on others: the defaults, the prescreen of each
// pod and their total.
func (p *packer) mayHoldAll(t *Template, pods []*v1.Pod, total v1.ResourceList) bool {
	if fitsResources(total, t.DaemonRequests, t.allocatable) != "" {
		return false
	}
	for _, pod := range pods {
		if f := p.facts(pod); p.excludedFor(t, f) != "" || !p.passes(t, f, nil) {
			return false
		}
	}
	return true
}

// finalize turns n into a planned node: its representative and the other candidates that
// hold all its pods, within limits and MaxOptionCostFactor of its cost, cheapest first.
func (p *packer) finalize(ctx context.Context, n *openNode) *PlannedNode {
	if n.independent && all(n.pods, p.sim.movable) {
		p.rehome(ctx, n)
	}
	chosen := n.candidates[0]
	cpu := cores(n.podReqs)
	limit := chosen.CostWith(cpu) * MaxOptionCostFactor
	options := []*Template{chosen}
	seen := map[string]bool{chosen.InstanceType.Name: true}
	for _, c := range n.candidates[1:] {
		if len(options) == MaxInstanceTypeOptions || c.Cost() > limit {
			break // cheapest first: the rest cost more
		}
		if c.CostWith(cpu) > limit {
			continue
		}
		if seen[c.InstanceType.Name] || !p.withinLimits(c, chosen.InstanceType.Capacity) {
			continue
		}
		if !n.independent && !n.invariant {
			// Pods that depend on each other, other than on invariantKeys, are checked on
			// the alternative itself.
			p.install(n, c)
			ok := p.acceptsAll(ctx, n)
			p.install(n, chosen)
			if !ok {
				continue
			}
		}
		seen[c.InstanceType.Name] = true
		options = append(options, c)
	}
	req := sum(sumRequests(n.pods), sumRequests(chosen.DaemonPods))
	return &PlannedNode{Name: n.name, Template: chosen, Options: options, Pods: n.pods, Requests: req}
}

// all reports whether ok holds for every pod of pods.
func all(pods []*v1.Pod, ok func(*v1.Pod) bool) bool {
	for _, pod := range pods {
		if !ok(pod) {
			return false
		}
	}
	return true
}
