package plan

import (
	"context"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// MaxInstanceTypeOptions is the most instance types a planned node offers CreateFleet.
const MaxInstanceTypeOptions = 60

// MaxOptionCostFactor is how much more than the node's chosen offering another option may
// cost (Template.Cost): CreateFleet's price-capacity-optimized strategy picks the spot pool
// least likely to be interrupted among the options, whatever its price, so options must be
// about as cheap as the choice. 20 % keeps a choice of pools for capacity (sizes and
// generations of a family usually price within it) and bounds what the choice can cost.
const MaxOptionCostFactor = 1.2

// Input is what a plan is computed from. Plan reads it and changes none of it.
type Input struct {
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
	// Used is, by Provisioner name, the capacity of its nodes and of its NodeClaims not yet
	// registered, which its limits count.
	Used map[string]v1.ResourceList
	// Reserved are the pods of ScheduledPods that earlier rounds reserved on NodeClaims and
	// that are not bound yet: they stand on their claims' nodes, and will bind after pods of
	// this plan may have. The plan keeps their hard topology spread constraints as it keeps
	// those of the pods it places (see keepsSpread): a pod a spread of theirs counts, put in
	// their domain and bound first, could leave them unable to fit on their own nodes.
	Reserved sets.Set[types.UID]
	// Launched are the nodes of NodeClaims launched by earlier rounds and not yet
	// registered, among Nodes as stand-ins, whose spare room pods may be planned into.
	Launched []LaunchedNode
	// Existing are names of nodes of Nodes whose free room pods may be planned into, before
	// any launched or new node: for scale-down, which plans the pods of some nodes on the
	// rest of the cluster (see Without). Scale-up leaves it empty: the scheduler itself
	// places pods on existing nodes.
	Existing []string
	// MaxNewNodes, when not nil, is the most new nodes the plan may open; pods that would
	// need more are unplanned. nil means no limit.
	MaxNewNodes *int
	// Region is the region label of the nodes.
	Region string
	// Framework builds the framework that judges placements; nil means
	// FrameworkFactoryWith(nil, nil, nil, PluginConfig).
	Framework FrameworkFactory
	// Avoid are, by pod UID, the shapes (Template.Shape) of templates a pod must not be
	// planned onto, whatever labels they were chosen: the shapes of nodes launched for it
	// that rejected it (the plugin's strands).
	Avoid map[types.UID]sets.Set[string]
	// PluginConfig are the plugin args Framework's plugins run with (see
	// ProfilePluginConfig); nil means their defaults. The packer follows them too: under a
	// default spread that filters (HardDefaultSpread) no pod is independent of the others,
	// whatever its spec, and the resources NodeResourcesFit ignores (IgnoredResources) are
	// left out of the prescreen.
	PluginConfig []config.PluginConfig
	// exhaustive, for the package's tests, has the packer share no verdict between nodes
	// (domainVerdicts, spreadVerdicts) and skip no node for a pod's own anti-affinity
	// (openNode.apart): those only leave out checks whose answer is known, so plans come out
	// the same either way.
	exhaustive bool
	// fromScratch, for the package's tests, has the simulator run PreFilter over the whole
	// snapshot, never over views (see view): plans come out the same either way.
	fromScratch bool
}

// LaunchedNode is the node of a NodeClaim that has launched and not yet registered: the
// instance it will be is known, and so is the room it will have.
type LaunchedNode struct {
	// Claim is the NodeClaim's name, Node the name of its node in Input.Nodes.
	Claim, Node string
	// Provisioner, InstanceType, Zone and CapacityType are the claim's and its instance's.
	Provisioner, InstanceType, Zone, CapacityType string
	// Labels are the labels of the user's the claim's requirements give its node (see
	// v1alpha1.RequirementLabels), nil if none.
	Labels map[string]string
}

// AddedPods are pods planned into the spare room of a launched node.
type AddedPods struct {
	// Claim is the NodeClaim of the node, Node its name in Input.Nodes.
	Claim, Node string
	// Pods are the pods planned there.
	Pods []*v1.Pod
}

// Result is the nodes to launch for pending pods: Plan's result.
type Result struct {
	// Nodes are the planned nodes, in the order they were opened.
	Nodes []*PlannedNode
	// Added are the pods planned into the spare room of launched nodes (and of Existing
	// ones, with no Claim), which need no new node.
	Added []*AddedPods
	// Unplanned are the pods no new node was planned for, with the reasons.
	Unplanned []*Unplanned
	// Spread is what the hard topology spread constraints of the plan's pods count, for
	// the plugin to let them go only once the scheduler will take them (see SpreadCounts);
	// nil if none has such a constraint.
	Spread *SpreadCounts
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

// Cost is what the node costs per hour as planned: Template.CostWith its pods' cpu.
func (n *PlannedNode) Cost() float64 {
	return n.Template.CostWith(cores(n.Requests) - cores(n.Template.DaemonRequests))
}

// Registered returns the node n registers as when launched as its chosen template, and the
// pods on it: its DaemonSet pods and its pods, bound to it. It is how tests and benchmarks
// stand up the cluster a plan makes.
func (n *PlannedNode) Registered() (*v1.Node, []*v1.Pod) {
	r := n.Template.renamed(n.Name)
	pods := slices.Clone(r.DaemonPods)
	for _, pod := range n.Pods {
		bound := pod.DeepCopy()
		bound.Spec.NodeName = n.Name
		pods = append(pods, bound)
	}
	return r.Node(), pods
}

// InstanceTypeNames returns the names of the node's options, cheapest first.
func (n *PlannedNode) InstanceTypeNames() []string {
	names := make([]string, len(n.Options))
	for i, t := range n.Options {
		names[i] = t.InstanceType.Name
	}
	return names
}

// Plan packs in.Pods, largest first, onto new nodes: each pod goes on the first planned
// node whose Filter plugins accept it with the pods already there, else on a new node of the
// cheapest instance type offering of the heaviest Provisioner that accepts it. It never
// exceeds a Provisioner's limits. Every placement of the result is confirmed by the Filter
// plugins on the final plan, each pod checked with all the others in place.
func Plan(ctx context.Context, in Input) (*Result, error) {
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
	sim.exhaustive = in.exhaustive
	if in.fromScratch {
		sim.snap.views = nil
	}
	for _, pod := range in.ScheduledPods {
		if in.Reserved.Has(pod.UID) {
			sim.watchSpread(pod, pod.Spec.NodeName)
		}
	}
	p := &packer{in: in, logger: klog.FromContext(ctx), sim: sim, templates: map[string][]*Template{}, used: map[string]v1.ResourceList{},
		openLabels: map[string]map[string][]v1alpha1.NodeSelectorRequirement{}, forPod: map[string][]*Template{},
		sigs: map[*v1.Pod]string{}, sigIDs: map[string]int32{}, selIDs: map[string]int32{}, reqs: map[*v1.Pod]v1.ResourceList{}, invariants: map[*v1.Pod]bool{}, podNames: map[labelsKey]bool{}, anyTypes: map[*v1.Pod]bool{},
		prices: map[string][3]float64{}, fillInfos: map[*Template]*fillInfo{}, scratch: objectiveScratch{seen: map[string]bool{}}, typeCosts: map[string]map[string]float64{}, inOffering: map[offeringOf][]*Template{},
		domainOnlys: map[*v1.Pod]bool{}, aparts: map[*v1.Pod]string{},
		ignored: IgnoredResources(in.PluginConfig)}
	p.buildTemplates()
	p.addPhantoms()
	p.openLaunched()
	p.openExisting()
	pods := append([]*v1.Pod(nil), in.Pods...)
	sortLargestFirst(pods)
	var shapes []shape
	for _, prov := range p.provs {
		if y, s, ok := p.shadowPrices(p.templates[prov.Name]); ok {
			p.prices[prov.Name] = y
			if shapes == nil {
				shapes = s
			}
		}
	}
	sortBalanced(pods, p.requests, shapes)
	pods = affinityTargetsFirst(apartFirst(pods, func(pod *v1.Pod) string { return perPod(p.aparts, pod, apartKey) }))
	p.queue = p.newQueue(pods)
	for _, pod := range pods {
		p.queue.take(pod)
		p.place(ctx, pod)
	}
	for _, name := range p.phantoms {
		sim.RemoveNode(name)
	}
	p.confirm(ctx)
	plan := &Result{Unplanned: p.unplanned}
	for _, n := range slices.Concat(p.existing, p.launched) {
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
	plan.Spread = p.spreadCounts(slices.Concat(p.launched, p.nodes))
	plan.Checks, plan.PreFilters, plan.CacheHits = sim.Checks, sim.PreFilters, sim.CacheHits
	return plan, nil
}
