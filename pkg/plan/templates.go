package plan

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// buildTemplates makes a template of every available offering each Provisioner's
// requirements allow, and orders the Provisioners by weight.
func (p *packer) buildTemplates() {
	p.provs = append([]*v1alpha1.Provisioner(nil), p.in.Provisioners...)
	sort.SliceStable(p.provs, func(i, j int) bool {
		wi, wj := weight(p.provs[i]), weight(p.provs[j])
		if wi != wj {
			return wi > wj
		}
		return p.provs[i].Name < p.provs[j].Name
	})
	p.parts = newTemplateParts()
	for _, prov := range p.provs {
		p.used[prov.Name] = sum(p.in.Used[prov.Name])
		reqs, keys := requirementsSelector(prov)
		var ts []*Template
		for _, it := range p.in.InstanceTypes[prov.Name] {
			for _, o := range it.Offerings {
				if !o.Available {
					continue
				}
				t := newTemplate(p.logger, prov, it, o, p.in.Region, templateNodeName, nil, p.in.DaemonSets, p.parts)
				if reqs != nil && !reqs.Match(t.nodeWith(keys)) {
					continue
				}
				p.hasExcluded = p.hasExcluded || t.excluded != ""
				ts = append(ts, t)
			}
		}
		sortCheapestFirst(ts)
		p.templates[prov.Name] = ts
		if open := openKeys(prov); open != nil {
			p.openLabels[prov.Name] = open
		}
	}
}

// templateNodeName is the name of templates' nodes: planned nodes are copies renamed.
const templateNodeName = "nodewright-template"

// sortCheapestFirst orders templates by price, then by key.
func sortCheapestFirst(ts []*Template) {
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Offering.Price != ts[j].Offering.Price {
			return ts[i].Offering.Price < ts[j].Offering.Price
		}
		return ts[i].Key < ts[j].Key
	})
}

// requirementsSelector returns the Provisioner's requirements on well-known labels as a
// node selector, and the keys they name, nil if there are none: they choose the instance
// types and offerings. Those on keys of the user's are met by the labels templates carry
// (see openKeys).
func requirementsSelector(prov *v1alpha1.Provisioner) (*nodeaffinity.NodeSelector, []string) {
	var exprs []v1.NodeSelectorRequirement
	var keys []string
	for _, r := range prov.Spec.Requirements {
		if v1alpha1.WellKnownLabels.Has(r.Key) {
			exprs = append(exprs, r.Core())
			keys = append(keys, r.Key)
		}
	}
	if len(exprs) == 0 {
		return nil, nil
	}
	sel, _ := nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: exprs}}})
	return sel, keys
}

func weight(p *v1alpha1.Provisioner) int32 {
	if p.Spec.Weight == nil {
		return 0
	}
	return *p.Spec.Weight
}

// addPhantoms adds, when a pending pod spreads over a topology (or the profile spreads every
// pod: HardDefaultSpread), an empty node per Provisioner, labels chosen for the pending pods
// (see templateGroups), zone, capacity type and architecture it can launch, with no room.
// Topology spread then sees every domain a plan could open, as the real scheduler will once
// the nodes exist, and spreads the plan over them. Phantoms only make the spread stricter (an
// empty domain lowers the minimum); Plan removes them before it confirms the plan.
func (p *packer) addPhantoms() {
	spread := p.sim.AllConstrained()
	for _, pod := range p.in.Pods {
		spread = spread || len(pod.Spec.TopologySpreadConstraints) > 0
	}
	if !spread {
		return
	}
	seen := map[string]bool{}
	for _, prov := range p.provs {
		for _, ts := range p.templateGroups(prov) {
			for _, t := range ts {
				key := fmt.Sprintf("%s/%s/%s/%s", t.group, t.Offering.Zone, t.Offering.CapacityType, t.labelValue(v1.LabelArchStable))
				if seen[key] {
					continue
				}
				seen[key] = true
				name := fmt.Sprintf("nodewright-phantom-%d", len(p.phantoms))
				node := t.renamed(name).Node()
				node.Status.Allocatable = v1.ResourceList{}
				p.sim.AddNode(node)
				p.phantoms = append(p.phantoms, name)
			}
		}
	}
}

// openLaunched gives the stand-in of each launched node the room of its instance type: it
// becomes its template, with the DaemonSet pods and the pods already reserved there, and is
// tried before any new node. A node whose Provisioner or instance type the round does not
// know keeps no room.
func (p *packer) openLaunched() {
	if len(p.in.Launched) == 0 {
		return
	}
	on := map[string][]*v1.Pod{}
	for _, pod := range p.in.ScheduledPods {
		on[pod.Spec.NodeName] = append(on[pod.Spec.NodeName], pod)
	}
	for _, f := range p.in.Launched {
		t := p.launchedTemplate(f)
		if t == nil || !p.sim.HasNode(f.Node) {
			p.logger.V(4).Info("No room known for launched nodeclaim", "nodeClaim", f.Claim, "instanceType", f.InstanceType)
			continue
		}
		n := &openNode{name: f.Node, claim: f.Claim, candidates: []*Template{t}, podReqs: v1.ResourceList{}}
		for _, pod := range on[f.Node] {
			n.request(p.requests(pod))
		}
		p.sim.Install(f.Node, t, on[f.Node])
		p.launched = append(p.launched, n)
	}
}

// launchedTemplate returns the template of launched node f's instance, named as f's node,
// with the labels its claim was planned with, nil if its Provisioner or instance type is not
// among the round's.
func (p *packer) launchedTemplate(f LaunchedNode) *Template {
	for _, prov := range p.provs {
		if prov.Name != f.Provisioner {
			continue
		}
		for _, it := range p.in.InstanceTypes[prov.Name] {
			if it.Name != f.InstanceType {
				continue
			}
			for _, o := range it.Offerings {
				// Available or not: the instance exists.
				if o.Zone == f.Zone && o.CapacityType == f.CapacityType {
					return newTemplate(p.logger, prov, it, o, p.in.Region, f.Node, f.Labels, p.in.DaemonSets, p.parts)
				}
			}
		}
	}
	return nil
}
