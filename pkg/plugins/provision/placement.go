package provision

import (
	"context"
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// place puts pod on the first open node that accepts it, else on a new node, else records
// why it cannot be planned.
func (p *packer) place(ctx context.Context, pod *v1.Pod) {
	sig, req := p.signature(pod), p.requests(pod)
	if !p.sim.independent(pod) {
		// Its fit can depend on every planned node: they must all stand as planned.
		p.flush(ctx)
	}
	for _, n := range p.inFlight {
		if p.tryAddInFlight(ctx, n, pod, sig, req) {
			p.logger.V(5).Info("Planned pod into the spare room of an in-flight node", "pod", klog.KObj(pod), "node", n.name, "nodeClaim", n.claim)
			return
		}
	}
	for _, n := range p.nodes {
		if p.tryAdd(ctx, n, pod, sig, req) {
			p.logger.V(5).Info("Planned pod onto planned node", "pod", klog.KObj(pod), "node", n.name)
			return
		}
	}
	if n := p.open(ctx, pod, sig, req); n != nil {
		p.logger.V(5).Info("Planned pod onto new node", "pod", klog.KObj(pod), "node", n.name, "template", n.candidates[0].Key)
		return
	}
	p.unplanned = append(p.unplanned, p.explain(ctx, pod, sig, req))
}

// prescreen returns "" if t can hold pod next to podReqs, by arithmetic and labels: what
// must hold before the Filter plugins are worth running.
func prescreen(t *Template, pod *v1.Pod, req, podReqs v1.ResourceList) string {
	if reason := labelsReject(t, pod, req); reason != "" {
		return reason
	}
	return fitsResources(req, sum(podReqs, t.DaemonRequests), t.Node.Status.Allocatable)
}

// labelsReject is the part of prescreen that depends on pod's spec and t alone.
func labelsReject(t *Template, pod *v1.Pod, req v1.ResourceList) string {
	if !matchesNodeSelection(pod, t.Node) {
		return "node selector or affinity not matched"
	}
	return defaultsReject(t, pod, req)
}

// prescreen is prescreen with labelsReject cached by pod signature and template, and the
// shapes the pod must avoid (PlanInput.Avoid) left out.
func (p *packer) prescreen(t *Template, pod *v1.Pod, sig string, req, podReqs v1.ResourceList) string {
	if p.in.Avoid[pod.UID].Has(t.Shape) {
		return avoidedShape
	}
	key := labelsKey{sig, t}
	reason, ok := p.labels[key]
	if !ok {
		reason = labelsReject(t, pod, req)
		p.labels[key] = reason
	}
	if reason != "" {
		return reason
	}
	return fitsResources(req, sum(podReqs, t.DaemonRequests), t.Node.Status.Allocatable)
}

// avoidedShape is prescreen's reason for a template of PlanInput.Avoid.
const avoidedShape = "a node of this shape launched for the pod rejected it"

// labelsKey keys the cache of labelsReject.
type labelsKey struct {
	sig string
	t   *Template
}

// withinLimits reports whether a node of t fits the Provisioner's limits, with release (the
// capacity of what t would replace) given back.
func (p *packer) withinLimits(t *Template, release v1.ResourceList) bool {
	used := sum(p.used[t.Provisioner.Name])
	for name, q := range release {
		u := used[name]
		u.Sub(q)
		used[name] = u
	}
	return exceeds(t.Provisioner.Spec.Limits, used, t.InstanceType.Capacity) == ""
}

// tryAdd puts pod on n if a candidate of n accepts it with n's pods: the representative,
// or else the next cheapest candidates, each checked against every pod of n.
func (p *packer) tryAdd(ctx context.Context, n *openNode, pod *v1.Pod, sig string, req v1.ResourceList) bool {
	const maxSwitches = 3
	independent := p.sim.independent(pod)
	invariant := p.invariant(pod) && n.invariant
	if !independent && invariant && p.sim.knownPreFilters {
		// Whether pod's inter-pod constraints and taints let it onto n does not depend on
		// which candidate n becomes: ask once, of n as it stands, leaving resources aside.
		p.flushNode(ctx, n)
		if st := p.sim.CheckIgnoringResources(ctx, pod, n.name); !st.IsSuccess() && sameOnEveryCandidate.Has(st.Plugin()) {
			return false
		}
	}
	tried := 0
	installed := false
	for i, c := range n.candidates {
		if tried > maxSwitches {
			break
		}
		if p.prescreen(c, pod, sig, req, n.podReqs) != "" {
			continue
		}
		if independent && !p.sim.CheckEmpty(ctx, pod, sig, c).IsSuccess() {
			continue
		}
		if i > 0 && !p.withinLimits(c, n.candidates[0].InstanceType.Capacity) {
			continue
		}
		tried++
		// Independent pods on a node of independent pods: the prescreen (every pod of the
		// node passed it on every kept candidate, and the requests add up) and the verdict
		// on the empty template are exact, so the node is installed in the snapshot as c
		// only when another check needs it (flush).
		fast := independent && n.independent
		if !fast {
			p.flushNode(ctx, n)
			var st *fwk.Status
			switch {
			case i == 0:
				st = p.sim.Check(ctx, pod, n.name)
			case p.sim.knownPreFilters && invariant && matchesNodeSelection(pod, n.candidates[0].Node):
				// n as c differs from n as its representative only in what the prescreen
				// checked: the PreFilter state over the snapshot as it is holds for n as c,
				// so c is judged outside the snapshot, and installed only if it takes pod.
				st = p.sim.CheckOn(ctx, pod, p.nodeInfoAs(n, c))
				if st.IsSuccess() {
					p.install(ctx, n, c)
				}
			default:
				p.install(ctx, n, c)
				installed = true
				if !n.invariant && !p.acceptsAll(ctx, n) {
					continue
				}
				st = p.sim.Check(ctx, pod, n.name)
			}
			if !st.IsSuccess() {
				if invariant && sameOnEveryCandidate.Has(st.Plugin()) {
					// What turned pod away is the same on every candidate of n.
					break
				}
				continue
			}
		} else if i > 0 {
			n.stale = true
		}
		// c accepts pod: commit, and keep the candidates that still may.
		if i > 0 {
			p.release(n.candidates[0])
			p.reserve(c)
		}
		keep := []*Template{c}
		for _, o := range n.candidates[i+1:] {
			if p.prescreen(o, pod, sig, req, n.podReqs) == "" && (!independent || p.sim.CheckEmpty(ctx, pod, sig, o).IsSuccess()) {
				keep = append(keep, o)
			}
		}
		n.candidates = keep
		n.pods = append(n.pods, pod)
		addTo(n.podReqs, req)
		n.independent = n.independent && independent
		n.invariant = invariant
		_ = p.sim.snap.addPod(pod, n.name)
		return true
	}
	if installed {
		p.install(ctx, n, n.candidates[0])
	}
	return false
}

// tryAddInFlight puts pod on in-flight node n if its Filter plugins accept it there, with
// the pods reserved on it and those planned there now. Only movable pods go into such room:
// a pod reserved on a claim skips the wait of pods that interact with pods still pending on
// other claims (see Provision.reservedConflict), and the pods reserved earlier were planned
// without it, so it must neither constrain nor be constrained by another pod.
func (p *packer) tryAddInFlight(ctx context.Context, n *openNode, pod *v1.Pod, sig string, req v1.ResourceList) bool {
	if !p.sim.movable(pod) || p.prescreen(n.candidates[0], pod, sig, req, n.podReqs) != "" || !p.sim.Check(ctx, pod, n.name).IsSuccess() {
		return false
	}
	n.pods = append(n.pods, pod)
	addTo(n.podReqs, req)
	_ = p.sim.snap.addPod(pod, n.name)
	return true
}

// sameOnEveryCandidate are the Filter plugins whose verdict on a node does not change when
// it switches between candidates, for pods whose inter-pod constraints name only
// invariantKeys (see invariantOnly): a Provisioner's templates share taints, and those
// topologies do not depend on the instance type.
var sameOnEveryCandidate = sets.New(names.InterPodAffinity, names.PodTopologySpread, names.TaintToleration)

// nodeInfoAs returns n as candidate c, with n's pods, outside the snapshot.
func (p *packer) nodeInfoAs(n *openNode, c *Template) *framework.NodeInfo {
	r := p.sim.renamed(c, n.name)
	ni := framework.NewNodeInfo()
	ni.SetNode(r.Node)
	for _, q := range r.DaemonPods {
		ni.AddPodInfo(p.sim.snap.entry(q).info)
	}
	for _, q := range n.pods {
		ni.AddPodInfo(p.sim.snap.entry(q).info)
	}
	return ni
}

// invariantKeys are the node labels every candidate of an open node shares: they share a
// Provisioner, a zone and a capacity type, and the node its hostname.
var invariantKeys = map[string]bool{
	v1.LabelHostname: true, v1.LabelTopologyZone: true, v1.LabelTopologyRegion: true,
	v1alpha1.LabelCapacityType: true, v1alpha1.LabelProvisionerName: true,
}

// invariant returns invariantOnly(pod), computed once per pod.
func (p *packer) invariant(pod *v1.Pod) bool { return perPod(p.invariants, pod, invariantOnly) }

// perPod returns f(pod), computed once per pod and kept in cache.
func perPod[V any](cache map[*v1.Pod]V, pod *v1.Pod, f func(*v1.Pod) V) V {
	v, ok := cache[pod]
	if !ok {
		v = f(pod)
		cache[pod] = v
	}
	return v
}

// invariantOnly reports whether every topology pod's inter-pod constraints name is one of
// invariantKeys, the same on every candidate of an open node, and pod has no volumes
// (volume limits differ by instance type). A node whose pods all are (openNode.invariant),
// which passed the prescreen on every candidate the node keeps, is sure to accept any of
// them: their requests add up and their node selection and nodewright's defaults match
// (prescreen), and their inter-pod constraints see the same topology. Then switching the
// node to a larger candidate needs no Filter run for the pods already on it.
func invariantOnly(pod *v1.Pod) bool {
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if !invariantKeys[c.TopologyKey] {
			return false
		}
	}
	if len(filterVolumes(pod)) > 0 {
		return false
	}
	a := pod.Spec.Affinity
	if a == nil {
		return true
	}
	var terms []v1.PodAffinityTerm
	if a.PodAffinity != nil {
		terms = append(terms, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
	}
	if a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
	}
	for _, t := range terms {
		if !invariantKeys[t.TopologyKey] {
			return false
		}
	}
	return true
}

// flushNode installs n as its representative if a fast placement left the snapshot behind.
func (p *packer) flushNode(ctx context.Context, n *openNode) {
	if n.stale {
		p.install(ctx, n, n.candidates[0])
	}
}

// flush installs every node a fast placement left behind.
func (p *packer) flush(ctx context.Context) {
	for _, n := range p.nodes {
		p.flushNode(ctx, n)
	}
}

// signature returns podSignature(pod), computed once per pod.
func (p *packer) signature(pod *v1.Pod) string { return perPod(p.sigs, pod, podSignature) }

// requests returns podRequests(pod) and one pod, computed once per pod, so that prescreens
// count pods against the node's maximum as well, without the resources the profile's
// NodeResourcesFit ignores. Callers must not change it.
func (p *packer) requests(pod *v1.Pod) v1.ResourceList {
	return perPod(p.reqs, pod, func(pod *v1.Pod) v1.ResourceList {
		req := sum(podRequests(pod), onePod)
		if p.ignored != nil {
			maps.DeleteFunc(req, func(name v1.ResourceName, _ resource.Quantity) bool { return p.ignored(name) })
		}
		return req
	})
}

// onePod is the pod count of one pod.
var onePod = v1.ResourceList{v1.ResourcePods: resource.MustParse("1")}

// install makes t the node n stands for in the snapshot, with n's pods.
func (p *packer) install(_ context.Context, n *openNode, t *Template) {
	n.stale = false
	r := p.sim.renamed(t, n.name)
	p.sim.snap.removeNode(n.name)
	p.sim.snap.addNode(r.Node, append(append([]*v1.Pod(nil), r.DaemonPods...), n.pods...)...)
}

// acceptsAll checks every pod of n on n as installed, each with the others in place.
func (p *packer) acceptsAll(ctx context.Context, n *openNode) bool {
	for _, q := range n.pods {
		if !p.sim.CheckPlaced(ctx, p.logger, q, n.name).IsSuccess() {
			return false
		}
	}
	return true
}

func (p *packer) reserve(t *Template) { addTo(p.used[t.Provisioner.Name], t.InstanceType.Capacity) }

func (p *packer) release(t *Template) {
	used := p.used[t.Provisioner.Name]
	for name, q := range t.InstanceType.Capacity {
		u := used[name]
		u.Sub(q)
		used[name] = u
	}
}

// open plans a new node for pod: the cheapest template of the heaviest Provisioner that
// accepts it alone, within limits, with the labels chosen for it (see templatesFor), unless
// pod's preferences choose another (see preferred). The node's candidates are the templates
// of that template's zone, capacity type and chosen labels that may hold pod too.
func (p *packer) open(ctx context.Context, pod *v1.Pod, sig string, req v1.ResourceList) *openNode {
	independent := p.sim.independent(pod)
	n := &openNode{name: fmt.Sprintf("nodewright-planned-%d", len(p.nodes)), podReqs: v1.ResourceList{}, independent: true}
	for _, prov := range p.provs {
		for _, t := range p.templatesFor(prov, pod, sig) {
			if !p.accepts(ctx, n, t, pod, sig, req, independent) {
				continue
			}
			if p.prefers(pod) {
				t = p.preferred(ctx, n, t, pod, sig, req, independent)
			}
			n.candidates = []*Template{t}
			for _, o := range p.templates[t.group] {
				if o == t || o.Offering.Zone != t.Offering.Zone || o.Offering.CapacityType != t.Offering.CapacityType {
					continue
				}
				if p.prescreen(o, pod, sig, req, nil) == "" && (!independent || p.sim.CheckEmpty(ctx, pod, sig, o).IsSuccess()) {
					n.candidates = append(n.candidates, o)
				}
			}
			n.pods = []*v1.Pod{pod}
			n.podReqs = sum(req)
			n.independent = independent
			n.invariant = p.invariant(pod)
			_ = p.sim.snap.addPod(pod, n.name)
			p.reserve(t)
			p.nodes = append(p.nodes, n)
			return n
		}
	}
	return nil
}

// accepts reports whether new node n as t, within limits, takes pod alone; if it does, n is
// installed as t. A pod that depends on others is checked on n installed in the snapshot.
func (p *packer) accepts(ctx context.Context, n *openNode, t *Template, pod *v1.Pod, sig string, req v1.ResourceList, independent bool) bool {
	if p.prescreen(t, pod, sig, req, nil) != "" || !p.withinLimits(t, nil) {
		return false
	}
	if independent && !p.sim.CheckEmpty(ctx, pod, sig, t).IsSuccess() {
		return false
	}
	p.install(ctx, n, t)
	if !independent && !p.sim.Check(ctx, pod, n.name).IsSuccess() {
		p.sim.snap.removeNode(n.name)
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
		for _, n := range slices.Concat(p.inFlight, p.nodes) {
			var kept []*v1.Pod
			for _, pod := range n.pods {
				if st := p.sim.CheckPlaced(ctx, p.logger, pod, n.name); !st.IsSuccess() {
					p.logger.V(2).Info("Placement not confirmed by the filters; leaving pod for the next round",
						"pod", klog.KObj(pod), "node", n.name, "reason", st.Message())
					_ = p.sim.snap.removePod(p.logger, pod, n.name)
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

// rehome moves n, whose pods are movable (no pod's placement depends on where they go, and
// theirs on no other pod), to the cheapest template of its Provisioner and chosen labels, in
// any zone and capacity type, that holds all its pods: the node grew within the zone and
// capacity type of its first pod's cheapest template, which need not be the cheapest place
// for all of them.
func (p *packer) rehome(ctx context.Context, n *openNode) {
	current := n.candidates[0]
	for _, t := range p.templates[current.group] {
		if t.Offering.Price >= current.Offering.Price {
			return
		}
		if !p.holdsAll(ctx, t, n.pods, n.podReqs) || !p.withinLimits(t, current.InstanceType.Capacity) {
			continue
		}
		if t = p.preferredHome(ctx, n, t); t.Offering.Price >= current.Offering.Price {
			return
		}
		candidates := []*Template{t}
		for _, o := range p.templates[t.group] {
			if o != t && o.Offering.Zone == t.Offering.Zone && o.Offering.CapacityType == t.Offering.CapacityType && o.Offering.Price >= t.Offering.Price &&
				p.holdsAll(ctx, o, n.pods, n.podReqs) {
				candidates = append(candidates, o)
			}
		}
		p.logger.V(4).Info("Moved planned node to a cheaper offering", "node", n.name, "from", current.Key, "to", t.Key)
		p.release(current)
		p.reserve(t)
		n.candidates = candidates
		p.install(ctx, n, t)
		return
	}
}

// holdsAll reports whether a node of t holds pods, which are independent, together; total
// is the sum of their requests.
func (p *packer) holdsAll(ctx context.Context, t *Template, pods []*v1.Pod, total v1.ResourceList) bool {
	if fitsResources(total, t.DaemonRequests, t.Node.Status.Allocatable) != "" {
		return false
	}
	for _, pod := range pods {
		if p.in.Avoid[pod.UID].Has(t.Shape) || !matchesNodeSelection(pod, t.Node) || defaultsReject(t, pod, p.requests(pod)) != "" ||
			!p.sim.CheckEmpty(ctx, pod, p.signature(pod), t).IsSuccess() {
			return false
		}
	}
	return true
}

// finalize turns n into a planned node: its representative and the other candidates that
// hold all its pods, within limits, cheapest first.
func (p *packer) finalize(ctx context.Context, n *openNode) *PlannedNode {
	if n.independent && all(n.pods, p.sim.movable) {
		p.rehome(ctx, n)
	}
	chosen := n.candidates[0]
	options := []*Template{chosen}
	seen := map[string]bool{chosen.InstanceType.Name: true}
	for _, c := range n.candidates[1:] {
		if len(options) == MaxInstanceTypeOptions {
			break
		}
		if seen[c.InstanceType.Name] || !p.withinLimits(c, chosen.InstanceType.Capacity) {
			continue
		}
		if !n.independent && !n.invariant {
			// Pods that depend on each other, other than on invariantKeys, are checked on
			// the alternative itself.
			p.install(ctx, n, c)
			ok := p.acceptsAll(ctx, n)
			p.install(ctx, n, chosen)
			if !ok {
				continue
			}
		}
		seen[c.InstanceType.Name] = true
		options = append(options, c)
	}
	req := v1.ResourceList{}
	for _, pod := range n.pods {
		addTo(req, podRequests(pod))
	}
	for _, dp := range chosen.DaemonPods {
		addTo(req, podRequests(dp))
	}
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
