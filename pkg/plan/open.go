package plan

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// open plans a new node for f's pod: the template of the heaviest Provisioner that accepts
// it alone, within limits, with the labels chosen for it (see templatesFor), and costs the
// least with it (Template.CostWith: a burstable type's price leaves out the surplus the pod's
// cpu costs), unless the pod's preferences choose another (see preferred). The node's
// candidates are the templates of that template's zone, capacity type and chosen labels that
// may hold the pod too, up to MaxOptionCostFactor times as dear as the node may grow
// (maxPrice).
func (p *packer) open(ctx context.Context, f *podFacts) *openNode {
	n := &openNode{name: fmt.Sprintf("nodewright-planned-%d", len(p.nodes)), podReqs: v1.ResourceList{}, independent: true}
	for _, prov := range p.provs {
		t := p.cheapestAccepting(ctx, n, prov, f)
		if t == nil {
			continue
		}
		if p.prefers(f.pod) {
			t = p.preferred(ctx, n, t, f)
		}
		n.candidates = []*Template{t}
		for _, o := range p.sameOffering(t) {
			if o != t && p.mayHold(ctx, o, f, nil) {
				n.candidates = append(n.candidates, o)
			}
		}
		n.maxPrice = p.maxPrice(n, f)
		// Options may cost up to MaxOptionCostFactor times the node's template (see finalize).
		n.candidates = slices.DeleteFunc(n.candidates, func(c *Template) bool {
			return c != t && p.typeCost(c) > n.maxPrice*MaxOptionCostFactor
		})
		n.pods = []*v1.Pod{f.pod}
		n.addApart(f)
		n.request(f.req)
		n.independent = f.independent
		n.invariant = f.invariant
		_ = p.sim.Place(f.pod, n.name)
		p.reserve(t)
		p.nodes = append(p.nodes, n)
		return n
	}
	return nil
}

// cheapestAccepting returns the template of prov that accepts f's pod alone on new node n
// (see accepts) and costs the least with it, with n installed as it; nil if none does.
// Templates come cheapest first by price, and a template costs at least its price: the
// search ends at the first that costs no more with the pod than it does without (any type
// but a burstable one), or at a price above the least cost found.
func (p *packer) cheapestAccepting(ctx context.Context, n *openNode, prov *v1alpha1.Provisioner, f *podFacts) *Template {
	var best *Template
	// moved is true when n was installed as another template, or taken out, after best.
	moved := false
	least, cpu := math.Inf(1), cores(f.req)
	for _, t := range p.templatesFor(prov, f.pod, f.sig) {
		if t.Cost() >= least {
			break
		}
		c := t.CostWith(cpu)
		if c >= least {
			continue
		}
		moved = best != nil
		if !p.accepts(ctx, n, t, f) {
			continue
		}
		best, least, moved = t, c, false
		if c == t.Cost() {
			break
		}
	}
	if best != nil && moved {
		p.install(n, best)
	}
	return best
}

// accepts reports whether new node n as t, within limits, takes f's pod alone; if it does,
// n is installed as t. A pod that depends on others is checked on n installed in the
// snapshot.
func (p *packer) accepts(ctx context.Context, n *openNode, t *Template, f *podFacts) bool {
	if p.excludedFor(t, f) != "" || !p.passes(t, f, nil) || !p.withinLimits(t, nil) {
		return false
	}
	if f.independent && !p.sim.CheckEmpty(ctx, f.pod, f.sig, t).IsSuccess() {
		return false
	}
	p.install(n, t)
	if !f.independent && !p.sim.Check(ctx, f.pod, n.name).IsSuccess() {
		p.sim.RemoveNode(n.name)
		return false
	}
	return true
}

// confirm checks every planned pod on its node with every other planned pod in place, and
// takes off the plan those the Filter plugins reject, until all are accepted. Taking a pod
// off can break another's affinity, hence the loop.
func (p *packer) confirm(ctx context.Context) {
	p.flush(ctx)
	for changed := true; changed; {
		changed = false
		for _, n := range slices.Concat(p.existing, p.launched, p.nodes) {
			var kept []*v1.Pod
			for _, pod := range n.pods {
				if st := p.sim.CheckPlaced(ctx, p.logger, pod, n.name); !st.IsSuccess() {
					p.logger.V(2).Info("Placement not confirmed by the filters; leaving pod for the next round",
						"pod", klog.KObj(pod), "node", n.name, "reason", st.Message())
					_ = p.sim.Unplace(p.logger, pod, n.name)
					p.unplanned = append(p.unplanned, &Unplanned{Pod: pod, Resolvable: true,
						Reasons: []string{"placement not confirmed by the scheduler's filters: " + st.Message()}})
					changed = true
					continue
				}
				kept = append(kept, pod)
			}
			n.pods = kept
		}
	}
}
