package provision

import (
	"context"
	"fmt"
	"slices"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// MaxInstanceTypeOptions is the most instance types a planned node offers CreateFleet.
const MaxInstanceTypeOptions = 60

// PlanInput is what a plan is computed from. Plan reads it and changes none of it.
type PlanInput struct {
	// Pods are the pending pods to plan nodes for.
	Pods []*v1.Pod
	// Provisioners are the Provisioners nodes may be launched for.
	Provisioners []*v1alpha1.Provisioner
	// InstanceTypes are the instance types each Provisioner's node class offers, by
	// Provisioner name (see cloud.Provider.InstanceTypes).
	InstanceTypes map[string][]*cloud.InstanceType
	// Nodes and ScheduledPods are the cluster now: the nodes, and the pods bound to them.
	Nodes         []*v1.Node
	ScheduledPods []*v1.Pod
	// DaemonSets are the cluster's DaemonSets, whose pods will run on the new nodes.
	DaemonSets []*appsv1.DaemonSet
	// Used is, by Provisioner name, the capacity of its nodes and in-flight NodeClaims, which
	// its limits count.
	Used map[string]v1.ResourceList
	// InFlight are nodes of NodeClaims launched by earlier rounds and not yet registered,
	// among Nodes as stand-ins, whose spare room pods may be planned into.
	InFlight []InFlightNode
	// Region is the region label of the nodes.
	Region string
	// Framework builds the framework that judges placements; nil means
	// FrameworkFactoryWith(nil, nil, nil, PluginConfig).
	Framework FrameworkFactory
	// Avoid are, by pod UID, the shapes (Template.Shape) of templates a pod must not be
	// planned onto, whatever labels they were chosen: the shapes of nodes launched for it that rejected it (see Provision.strandRelease).
	Avoid map[types.UID]sets.Set[string]
	// PluginConfig are the plugin args Framework's plugins run with (see
	// ProfilePluginConfig); nil means their defaults. The packer follows them too: under a
	// default spread that filters (HardDefaultSpread) no pod is independent of the others,
	// whatever its spec, and the resources NodeResourcesFit ignores (IgnoredResources) are
	// left out of the prescreen.
	PluginConfig []config.PluginConfig
}

// InFlightNode is the node of a NodeClaim that has launched and not yet registered: the
// instance it will be is known, and so is the room it will have.
type InFlightNode struct {
	// Claim is the NodeClaim's name, Node the name of its node in PlanInput.Nodes.
	Claim, Node string
	// Provisioner, InstanceType, Zone and CapacityType are the claim's and its instance's.
	Provisioner, InstanceType, Zone, CapacityType string
	// Labels are the labels of the user's the claim's requirements give its node (see
	// NodeClaimFor), nil if none.
	Labels map[string]string
}

// AddedPods are pods planned into the spare room of an in-flight node.
type AddedPods struct {
	// Claim is the NodeClaim of the node, Node its name in PlanInput.Nodes.
	Claim, Node string
	// Pods are the pods planned there.
	Pods []*v1.Pod
}

// Packing is the nodes to launch for pending pods: Plan's result.
type Packing struct {
	// Nodes are the planned nodes, in the order they were opened.
	Nodes []*PlannedNode
	// Added are the pods planned into the spare room of in-flight nodes, which need no new
	// node.
	Added []*AddedPods
	// Unplanned are the pods no new node was planned for, with the reasons.
	Unplanned []*Unplanned
	// Checks, PreFilters and CacheHits count the simulator's Filter runs, PreFilter runs
	// and reused verdicts.
	Checks, PreFilters, CacheHits int
}

// PlannedNode is one node of a plan.
type PlannedNode struct {
	// Name is the node's placeholder name in the simulation (its hostname label).
	Name string
	// Template is the cheapest instance type offering that holds the pods.
	Template *Template
	// Options are the instance types the node may be, Template first and then cheapest
	// first, all in Template's zone and capacity type, each confirmed to hold every pod of
	// the node; at most MaxInstanceTypeOptions.
	Options []*Template
	// Pods are the pods planned onto the node.
	Pods []*v1.Pod
	// Requests are the requests of Pods and of the DaemonSet pods of Template.
	Requests v1.ResourceList
}

// InstanceTypeNames returns the names of the node's options, cheapest first.
func (n *PlannedNode) InstanceTypeNames() []string {
	names := make([]string, len(n.Options))
	for i, t := range n.Options {
		names[i] = t.InstanceType.Name
	}
	return names
}

// openNode is a node being packed. Its candidates all share one Provisioner, zone and
// capacity type; candidates[0] is the representative that stands for the node in the
// snapshot and has been checked with the Filter plugins against every pod on it.
type openNode struct {
	name       string
	candidates []*Template
	pods       []*v1.Pod
	podReqs    v1.ResourceList
	// independent is true while every pod on the node is independent (see
	// Simulator.independent), so that prescreening its candidates is exact.
	independent bool
	// invariant is true while every pod on the node is invariantOnly.
	invariant bool
	// stale is true when the snapshot holds the node as another candidate than
	// candidates[0] (see packer.flushNode).
	stale bool
	// claim is, for an in-flight node (see PlanInput.InFlight), its NodeClaim: its one
	// candidate is its instance type, and pods holds only the pods planned there now.
	claim string
}

// packer is the state of one Plan call.
type packer struct {
	in     PlanInput
	logger klog.Logger
	sim    *Simulator
	provs  []*v1alpha1.Provisioner
	// templates are, cheapest first, by Provisioner name, each Provisioner's templates, and
	// by group (see groupOf) those with labels chosen for the keys it leaves open.
	templates map[string][]*Template
	// openLabels are the open keys of each Provisioner that has some (see openKeys), and
	// forPod the result of templatesFor by Provisioner and pod signature.
	openLabels map[string]map[string][]v1alpha1.NodeSelectorRequirement
	forPod     map[string][]*Template
	used       map[string]v1.ResourceList
	nodes      []*openNode
	inFlight   []*openNode
	unplanned  []*Unplanned
	phantoms   []string
	// sigs, reqs and invariants cache podSignature, podRequests and invariantOnly by pod,
	// labels labelsReject by signature and template.
	sigs       map[*v1.Pod]string
	reqs       map[*v1.Pod]v1.ResourceList
	invariants map[*v1.Pod]bool
	labels     map[labelsKey]string
	// ignored are the resources the profile's NodeResourcesFit ignores (nil: none).
	ignored func(v1.ResourceName) bool
	// prefs caches prefers by pod.
	prefs map[*v1.Pod]bool
}

// Plan packs in.Pods, largest first, onto new nodes: each pod goes on the first planned
// node whose Filter plugins accept it with the pods already there, else on a new node of the
// cheapest instance type offering of the heaviest Provisioner that accepts it. It never
// exceeds a Provisioner's limits. Every placement of the result is confirmed by the Filter
// plugins on the final plan, each pod checked with all the others in place.
func Plan(ctx context.Context, in PlanInput) (*Packing, error) {
	if in.Framework == nil {
		in.Framework = FrameworkFactoryWith(nil, nil, nil, in.PluginConfig)
	}
	// The framework's background goroutines end with ctx.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sim, err := NewSimulator(ctx, in.Framework, in.Nodes, in.ScheduledPods, HardDefaultSpread(in.PluginConfig))
	if err != nil {
		return nil, err
	}
	p := &packer{in: in, logger: klog.FromContext(ctx), sim: sim, templates: map[string][]*Template{}, used: map[string]v1.ResourceList{},
		openLabels: map[string]map[string][]v1alpha1.NodeSelectorRequirement{}, forPod: map[string][]*Template{},
		sigs: map[*v1.Pod]string{}, reqs: map[*v1.Pod]v1.ResourceList{}, invariants: map[*v1.Pod]bool{}, labels: map[labelsKey]string{},
		ignored: IgnoredResources(in.PluginConfig)}
	p.buildTemplates()
	p.addPhantoms()
	p.openInFlight()
	pods := append([]*v1.Pod(nil), in.Pods...)
	sortLargestFirst(pods)
	for _, pod := range affinityTargetsFirst(pods) {
		p.place(ctx, pod)
	}
	for _, name := range p.phantoms {
		sim.snap.removeNode(name)
	}
	p.confirm(ctx)
	plan := &Packing{Unplanned: p.unplanned}
	for _, n := range p.inFlight {
		if len(n.pods) > 0 {
			plan.Added = append(plan.Added, &AddedPods{Claim: n.claim, Node: n.name, Pods: n.pods})
		}
	}
	for _, n := range p.nodes {
		if len(n.pods) == 0 {
			continue
		}
		plan.Nodes = append(plan.Nodes, p.finalize(ctx, n))
	}
	plan.Checks, plan.PreFilters, plan.CacheHits = sim.Checks, sim.PreFilters, sim.CacheHits
	return plan, nil
}

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
	for _, prov := range p.provs {
		p.used[prov.Name] = sum(p.in.Used[prov.Name])
		reqs := requirementsSelector(prov)
		var ts []*Template
		for _, it := range p.in.InstanceTypes[prov.Name] {
			for _, o := range it.Offerings {
				if !o.Available {
					continue
				}
				t := NewTemplate(p.logger, prov, it, o, p.in.Region, templateNodeName, nil, p.in.DaemonSets)
				if reqs != nil && !reqs.Match(t.Node) {
					continue
				}
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
// node selector, nil if there are none: they choose the instance types and offerings. Those
// on keys of the user's are met by the labels templates carry (see openKeys).
func requirementsSelector(prov *v1alpha1.Provisioner) *nodeaffinity.NodeSelector {
	var exprs []v1.NodeSelectorRequirement
	for _, r := range prov.Spec.Requirements {
		if v1alpha1.WellKnownLabels.Has(r.Key) {
			exprs = append(exprs, r.Core())
		}
	}
	if len(exprs) == 0 {
		return nil
	}
	sel, _ := nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: exprs}}})
	return sel
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
	spread := p.sim.allConstrained
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
				key := fmt.Sprintf("%s/%s/%s/%s", t.group, t.Offering.Zone, t.Offering.CapacityType, t.Node.Labels[v1.LabelArchStable])
				if seen[key] {
					continue
				}
				seen[key] = true
				name := fmt.Sprintf("nodewright-phantom-%d", len(p.phantoms))
				node := t.renamed(name).Node
				node.Status.Allocatable = v1.ResourceList{}
				p.sim.snap.addNode(node)
				p.phantoms = append(p.phantoms, name)
			}
		}
	}
}

// openInFlight gives the stand-in of each in-flight node the room of its instance type: it
// becomes its template, with the DaemonSet pods and the pods already reserved there, and is
// tried before any new node. A node whose Provisioner or instance type the round does not
// know keeps no room.
func (p *packer) openInFlight() {
	if len(p.in.InFlight) == 0 {
		return
	}
	on := map[string][]*v1.Pod{}
	for _, pod := range p.in.ScheduledPods {
		on[pod.Spec.NodeName] = append(on[pod.Spec.NodeName], pod)
	}
	for _, f := range p.in.InFlight {
		t := p.inFlightTemplate(f)
		if t == nil || p.sim.snap.nodes[f.Node] == nil {
			p.logger.V(4).Info("No room known for in-flight nodeclaim", "nodeClaim", f.Claim, "instanceType", f.InstanceType)
			continue
		}
		n := &openNode{name: f.Node, claim: f.Claim, candidates: []*Template{t}, podReqs: v1.ResourceList{}}
		for _, pod := range on[f.Node] {
			addTo(n.podReqs, p.requests(pod))
		}
		p.sim.snap.removeNode(f.Node)
		p.sim.snap.addNode(t.Node, append(slices.Clone(t.DaemonPods), on[f.Node]...)...)
		p.inFlight = append(p.inFlight, n)
	}
}

// inFlightTemplate returns the template of in-flight node f's instance, named as f's node,
// with the labels its claim was planned with, nil if its Provisioner or instance type is not
// among the round's.
func (p *packer) inFlightTemplate(f InFlightNode) *Template {
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
					return NewTemplate(p.logger, prov, it, o, p.in.Region, f.Node, f.Labels, p.in.DaemonSets)
				}
			}
		}
	}
	return nil
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
