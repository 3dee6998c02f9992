package plan

import (
	"context"
	"fmt"
	"math"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
)

// Simulator decides whether pods fit nodes, existing or planned, by running the framework's
// PreFilter and Filter plugins over its snapshot, as the scheduler will once the planned
// nodes exist. It is not safe for concurrent use.
type Simulator struct {
	fw   framework.Framework
	snap *snapshot
	// verdicts caches, by pod signature and template key, whether a pod that does not depend
	// on other pods fits an empty template (one with only its DaemonSet pods).
	verdicts map[verdictKey]*fwk.Status
	// pre is the last PreFilter run: a pod checked on node after node with the snapshot
	// unchanged has its PreFilter state computed once, as in the scheduler's cycle.
	pre preFilterRun
	// stateFree is true when every PreFilter plugin of the profile is one whose
	// outcome for an independent pod does not depend on the other pods and nodes (see
	// stateFreePreFilters). Then such a pod's PreFilter state is kept for the round
	// (independentPre), and its fit on an empty template is decided without adding the
	// template to the snapshot.
	stateFree      bool
	independentPre map[string]*preFilterRun // by snapshot.class
	// placedPre are PreFilter runs over the snapshot for pods already in it, by class (see
	// snapshot.class), for CheckPlaced.
	placedPre map[string]*preFilterRun
	// probes are the NodeInfos of empty templates, by template key.
	probes map[string]*framework.NodeInfo
	// copies caches Template.renamed by name and template key: the snapshot derives what
	// it needs from a pod once per pod object.
	copies map[string]*Template
	// daemonCopies are the DaemonSet pods of copies, by template pod and name: a pod depends
	// on its DaemonSet and node name only, so the copies of one name share them, and with
	// them what the snapshot derives from them.
	daemonCopies map[daemonCopy]*v1.Pod
	// scored are the NodeInfos of empty templates that Score scores, by template key.
	scored map[string]*framework.NodeInfo
	// Checks counts Filter runs, PreFilters the PreFilter runs, CacheHits the verdicts reused,
	// Replays the changes replayed into PreFilter runs (see replay).
	Checks, PreFilters, CacheHits, Replays int
	// allConstrained is true when every pod may depend on others: under a hard default
	// spread (HardDefaultSpread), or a Filter plugin whose interactions are not audited (see
	// filterInteractions).
	allConstrained bool
	// spread judges the placed pods of spreadGroups, by spreadKey (see keepsSpread); nil
	// when the profile does not filter with PodTopologySpread. spreadOf is the group of each
	// placed pod, spreadOrder the groups in the order they came, spreadKeys caches spreadKey.
	spread       spreadFilter
	spreadGroups map[string]*spreadGroup
	spreadOf     map[*v1.Pod]*spreadGroup
	spreadOrder  []*spreadGroup
	spreadKeys   map[*v1.Pod]string
	// spreadRejects remembers keepsSpread's rejections by domain (see spreadVerdicts), unless
	// exhaustive (Input.exhaustive).
	spreadRejects spreadVerdicts
	exhaustive    bool
}

// verdictKey keys the verdicts: a pod signature and a template key.
type verdictKey struct{ sig, template string }

// preFilterRun is the outcome of the PreFilter plugins for pod on the snapshot at gen.
type preFilterRun struct {
	pod    *v1.Pod
	gen    uint64
	state  fwk.CycleState
	result *fwk.PreFilterResult
	status *fwk.Status
}

// stateFreePreFilters are the in-tree PreFilter plugins whose outcome for an independent pod
// (see Simulator.independent) depends on the pod alone: they read no other pod or node for
// a pod with no inter-pod constraint, volume claim or resource claim, that no other pod's
// required anti-affinity selects.
// (The framework lists every plugin enabled at PreFilter, whether it has a PreFilter or not.)
var stateFreePreFilters = sets.New(names.NodeName, names.NodeUnschedulable, names.TaintToleration,
	names.NodeAffinity, names.NodePorts, names.NodeResourcesFit, names.VolumeRestrictions,
	names.NodeVolumeLimits, names.VolumeBinding, names.VolumeZone, names.PodTopologySpread,
	names.InterPodAffinity, names.NodeDeclaredFeatures)

// NewSimulator returns a simulator over the cluster's nodes and pods. allConstrained says
// that every pod may depend on the others whatever its spec (see HardDefaultSpread); it is
// so as well when the framework has a Filter plugin filterInteractions does not list.
func NewSimulator(ctx context.Context, newFramework FrameworkFactory, nodes []*v1.Node, pods []*v1.Pod, allConstrained bool) (*Simulator, error) {
	snap := newSnapshot(nodes, pods)
	fw, err := newFramework(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("building the scheduler framework: %w", err)
	}
	known, hardDefaultSpread := true, allConstrained
	if pl := fw.ListPlugins(); pl != nil {
		for _, p := range pl.PreFilter.Enabled {
			known = known && stateFreePreFilters.Has(p.Name)
		}
		var filters []string
		for _, p := range pl.Filter.Enabled {
			filters = append(filters, p.Name)
		}
		if !auditedFilters(filters) {
			allConstrained = true
		}
	}
	spread, err := newSpreadFilter(ctx, fw)
	if err != nil {
		return nil, err
	}
	if known && !hardDefaultSpread {
		// A hard default spread constraint selects pods by their owners (Services,
		// ReplicaSets), which views do not follow.
		snap.views = newViewSet()
	}
	return &Simulator{fw: fw, snap: snap, verdicts: map[verdictKey]*fwk.Status{}, stateFree: known, allConstrained: allConstrained,
		independentPre: map[string]*preFilterRun{}, placedPre: map[string]*preFilterRun{}, probes: map[string]*framework.NodeInfo{},
		copies: map[string]*Template{}, daemonCopies: map[daemonCopy]*v1.Pod{}, spread: spread, spreadGroups: map[string]*spreadGroup{}, spreadOf: map[*v1.Pod]*spreadGroup{},
		spreadKeys: map[*v1.Pod]string{}}, nil
}

// Check runs the PreFilter plugins for pod over the snapshot and then the Filter plugins
// on the node named nodeName: the scheduling cycle the scheduler would run if that node were
// the only candidate; and it checks that pod there leaves the pods placed in the snapshot
// where PodTopologySpread accepts them (keepsSpread). pod must not be in the snapshot. The
// PreFilter outcome is reused while the snapshot does not change, so checking one pod on
// many nodes costs one PreFilter run, like one scheduling cycle over many nodes.
func (s *Simulator) Check(ctx context.Context, pod *v1.Pod, nodeName string) *fwk.Status {
	st, _ := s.CheckFiltered(ctx, pod, nodeName)
	return st
}

// CheckFiltered is Check, and says whether the Filter plugins turned pod away (filtered),
// not keepsSpread.
func (s *Simulator) CheckFiltered(ctx context.Context, pod *v1.Pod, nodeName string) (st *fwk.Status, filtered bool) {
	ni, st := s.nodeInfo(nodeName)
	if st != nil {
		return st, false
	}
	return s.checkFiltered(ctx, pod, ni)
}

// nodeInfo returns the node named nodeName, or an error status if it is not in the snapshot.
func (s *Simulator) nodeInfo(nodeName string) (*framework.NodeInfo, *fwk.Status) {
	ni, ok := s.snap.nodes[nodeName]
	if !ok {
		return nil, fwk.NewStatus(fwk.Error, fmt.Sprintf("node %s is not in the snapshot", nodeName))
	}
	return ni, nil
}

// checkFiltered is CheckOn, and says whether the Filter plugins turned pod away.
func (s *Simulator) checkFiltered(ctx context.Context, pod *v1.Pod, ni fwk.NodeInfo) (*fwk.Status, bool) {
	if st := s.cycle(ctx, pod, ni); !st.IsSuccess() {
		return st, true
	}
	return s.keepsSpread(ctx, pod, ni), false
}

// CheckOn is Check on ni, which need not be in the snapshot: the PreFilter plugins run over
// the snapshot, the Filter plugins on ni.
func (s *Simulator) CheckOn(ctx context.Context, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	st, _ := s.checkFiltered(ctx, pod, ni)
	return st
}

// cycle runs the PreFilter plugins for pod over the snapshot and the Filter plugins on ni.
func (s *Simulator) cycle(ctx context.Context, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	if run := s.viewRun(ctx, pod); run != nil {
		return s.filter(ctx, run, pod, ni)
	}
	if s.pre.pod != pod || s.pre.gen != s.snap.gen {
		s.pre = s.preFilter(ctx, pod)
	}
	return s.filter(ctx, &s.pre, pod, ni)
}

// viewRun returns the PreFilter run for pod over its view (see view), made anew only when
// the view changed since the last run for a pod of pod's class; nil when pod gets no view.
// It is the run over the whole snapshot would be.
func (s *Simulator) viewRun(ctx context.Context, pod *v1.Pod) *preFilterRun {
	v := s.snap.viewFor(pod)
	if v == nil {
		return nil
	}
	class := s.snap.class(pod)
	r := v.runs[class]
	if r != nil && r.digest == v.digest {
		return &r.run
	}
	if r != nil && s.replay(ctx, v, r) {
		return &r.run
	}
	s.snap.viewing = v
	r = &viewRun{digest: v.digest, seen: v.seen(), run: s.preFilter(ctx, pod)}
	s.snap.viewing = nil
	v.runs[class] = r
	return &r.run
}

// replay brings r, a run over v, up to date with the pods added to and removed from v since,
// by the PreFilter plugins' AddPod and RemovePod extensions, and reports whether it could.
// It can when every change was one (v has no spread constraint, so no node's coming or going
// changes a run) and InterPodAffinity, the only plugin such pods change, ran: its counts
// follow such changes exactly, while a skipped plugin would not see an anti-affinity pod
// come. PodTopologySpread's extensions are never replayed: they keep the least count of a
// domain exact after a removal, not after additions.
func (s *Simulator) replay(ctx context.Context, v *view, r *viewRun) bool {
	if len(v.spread) > 0 || !r.run.status.IsSuccess() || r.run.state.GetSkipFilterPlugins().Has(names.InterPodAffinity) {
		return false
	}
	events, ok := v.since(r.seen)
	if !ok {
		return false
	}
	for _, e := range events {
		var st *fwk.Status
		if e.added {
			st = s.fw.RunPreFilterExtensionAddPod(ctx, r.run.state, r.run.pod, e.pod, e.node)
		} else {
			st = s.fw.RunPreFilterExtensionRemovePod(ctx, r.run.state, r.run.pod, e.pod, e.node)
		}
		if !st.IsSuccess() {
			delete(v.runs, s.snap.class(r.run.pod))
			return false
		}
	}
	s.Replays += len(events)
	r.digest, r.seen = v.digest, v.seen()
	return true
}

func (s *Simulator) preFilter(ctx context.Context, pod *v1.Pod) preFilterRun {
	s.PreFilters++
	state := framework.NewCycleState()
	result, status, _ := s.fw.RunPreFilterPlugins(ctx, state, pod)
	return preFilterRun{pod: pod, gen: s.snap.gen, state: state, result: result, status: status}
}

func (s *Simulator) filter(ctx context.Context, pre *preFilterRun, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s.Checks++
	if !pre.status.IsSuccess() {
		return pre.status
	}
	if !pre.result.AllNodes() && !pre.result.NodeNames.Has(ni.Node().Name) {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "node is not among the nodes PreFilter selected")
	}
	return s.fw.RunFilterPlugins(ctx, pre.state, pod, ni)
}

// CheckIgnoringResources is Check with the node's allocatable left aside: whether anything
// but room turns pod away from the node named nodeName. filtered is true when the Filter
// plugins did, not keepsSpread.
func (s *Simulator) CheckIgnoringResources(ctx context.Context, pod *v1.Pod, nodeName string) (st *fwk.Status, filtered bool) {
	ni, st := s.nodeInfo(nodeName)
	if st != nil {
		return st, false
	}
	return s.checkFiltered(ctx, pod, roomless{ni})
}

// roomless is a node with no limit on room: its allocatable is as large as it gets, so the
// NodeResourcesFit plugin takes any pod (but for extended resources it does not have).
type roomless struct{ *framework.NodeInfo }

func (roomless) GetAllocatable() fwk.Resource { return unlimitedRoom }

var unlimitedRoom = &framework.Resource{MilliCPU: math.MaxInt64 / 4, Memory: math.MaxInt64 / 4,
	EphemeralStorage: math.MaxInt64 / 4, AllowedPodNumber: math.MaxInt32}

// CheckPlaced is Check for pod, which is on the node named nodeName in the snapshot, with
// the snapshot as if it were not: whether the scheduler would place pod there with every
// other pod of the snapshot in place. Pods alike (see snapshot.class) share one PreFilter run
// over the snapshot with them all in it; each then takes itself out of the state with the
// plugins' RemovePod extensions, as preemption takes out victims: out of a copy, or, for a
// run over a view, out of the run itself, put back with AddPod after (InterPodAffinity's
// counts come back as they were, PodTopologySpread's too, and its least count of a domain,
// all its Filter reads of the rest, stays exact after a removal and the addition that
// undoes it).
func (s *Simulator) CheckPlaced(ctx context.Context, logger klog.Logger, pod *v1.Pod, nodeName string) *fwk.Status {
	ni, missing := s.nodeInfo(nodeName)
	if missing != nil {
		return missing
	}
	run := s.viewRun(ctx, pod)
	viewed := run != nil
	if !viewed {
		class := s.snap.class(pod)
		run = s.placedPre[class]
		if s.stateFree && (run == nil || run.gen != s.snap.gen) {
			r := s.preFilter(ctx, pod)
			run = &r
			s.placedPre[class] = run
		}
	}
	if !s.stateFree || !run.status.IsSuccess() {
		// Out-of-tree PreFilter plugins may have no RemovePod extension, and a failed
		// PreFilter says nothing about the pod out of the snapshot: check it out of it.
		if err := s.snap.removePod(logger, pod, nodeName); err != nil {
			return fwk.AsStatus(err)
		}
		st := s.cycle(ctx, pod, ni)
		_ = s.snap.addPod(pod, nodeName)
		return st
	}
	state := run.state
	if !viewed {
		state = state.Clone()
	}
	info := s.snap.entry(pod).info
	if st := s.fw.RunPreFilterExtensionRemovePod(ctx, state, pod, info, ni); !st.IsSuccess() {
		s.dropViewRun(pod)
		return st
	}
	// The node without the pod, for the Filter plugins only: it is put back as it was, so
	// the snapshot's generation stands.
	if err := ni.RemovePod(logger, pod); err != nil {
		s.dropViewRun(pod)
		return fwk.AsStatus(err)
	}
	restorePorts(ni, pod)
	st := s.filter(ctx, &preFilterRun{pod: pod, state: state, result: run.result, status: run.status}, pod, ni)
	ni.AddPodInfo(info)
	if viewed && !s.fw.RunPreFilterExtensionAddPod(ctx, state, pod, info, ni).IsSuccess() {
		s.dropViewRun(pod)
	}
	return st
}

// dropViewRun forgets the run over pod's view for pods of its class, whose state a failed
// extension may have left half changed.
func (s *Simulator) dropViewRun(pod *v1.Pod) {
	if v := s.snap.viewFor(pod); v != nil {
		delete(v.runs, s.snap.class(pod))
	}
}

// CheckEmpty is Check on template t with nothing but its DaemonSet pods. The verdict is
// cached for pods that do not depend on other pods (see independent).
func (s *Simulator) CheckEmpty(ctx context.Context, pod *v1.Pod, sig string, t *Template) *fwk.Status {
	// A DaemonSet pod with inter-pod constraints can tell pods of one signature apart by
	// their labels.
	cacheable := s.independent(pod) && !t.daemonAffinity
	key := verdictKey{sig, t.Key}
	if cacheable {
		if st, ok := s.verdicts[key]; ok {
			s.CacheHits++
			return st
		}
	}
	var st *fwk.Status
	if cacheable && s.stateFree {
		// Nothing the PreFilter plugins compute for the pod depends on the snapshot, and
		// nothing the Filter plugins read for it beyond the node: no need to add t to it.
		class := s.snap.class(pod)
		pre, ok := s.independentPre[class]
		if !ok {
			run := s.preFilter(ctx, pod)
			pre = &run
			s.independentPre[class] = pre
		}
		st = s.filter(ctx, pre, pod, s.probe(t))
	} else {
		probe := s.renamed(t, probeNodeName)
		s.snap.addNode(probe.Node(), probe.DaemonPods...)
		st = s.Check(ctx, pod, probeNodeName)
		s.snap.removeNode(probeNodeName)
	}
	if cacheable {
		s.verdicts[key] = st
	}
	return st
}

// probe returns the NodeInfo of t empty but for its DaemonSet pods, outside the snapshot.
func (s *Simulator) probe(t *Template) *framework.NodeInfo {
	ni, ok := s.probes[t.Key]
	if !ok {
		ni = s.emptyNode(t, probeNodeName)
		s.probes[t.Key] = ni
	}
	return ni
}

// emptyNode returns a NodeInfo of t named name, with its DaemonSet pods only.
func (s *Simulator) emptyNode(t *Template, name string) *framework.NodeInfo {
	return s.NodeAs(t, name, nil)
}

// renamed returns t.renamed(name), made once per name and template, its DaemonSet pods once
// per name and template pod.
func (s *Simulator) renamed(t *Template, name string) *Template {
	key := name + "|" + t.Key
	c, ok := s.copies[key]
	if !ok {
		c = t.renamedWith(name, s.renamedDaemonPod)
		s.copies[key] = c
	}
	return c
}

// daemonCopy is a DaemonSet pod of a template and the name of the node it is copied for.
type daemonCopy struct {
	pod  *v1.Pod
	name string
}

func (s *Simulator) renamedDaemonPod(p *v1.Pod, name string) *v1.Pod {
	key := daemonCopy{p, name}
	c, ok := s.daemonCopies[key]
	if !ok {
		c = renamedDaemonPod(p, name)
		s.daemonCopies[key] = c
	}
	return c
}

// probeNodeName names the template being probed in the snapshot.
const probeNodeName = "nodewright-probe"

// independent reports whether pod's fit on a node cannot depend on pods other than the
// DaemonSet pods of a template: it is not constrained (inter-pod constraints, host ports,
// volumes or resource claims of its own: see constrained and filterInteractions) and no
// required anti-affinity term or hard topology spread constraint (see keepsSpread) of a pod
// in the snapshot selects it. Only independent pods' verdicts are cached, and only they are
// packed by arithmetic alone.
func (s *Simulator) independent(pod *v1.Pod) bool {
	m := s.snap.matchedBy(pod)
	return !s.allConstrained && !s.snap.entry(pod).constrained && !m.anti && !m.spread
}

// filteredByDomain reports whether the Filter plugins of sameOnEveryCandidate judge pod,
// whose own constraints name only domainKeys (domainOnly), alike on every node of one
// nodeDomain: no required anti-affinity term of a pod in the snapshot keeps it off nodes one
// by one, and no default or unaudited plugin constrains every pod. (The placed pods whose
// spread it must keep are judged node by node: keepsSpread.)
func (s *Simulator) filteredByDomain(pod *v1.Pod) bool {
	return s.stateFree && !s.allConstrained && !s.snap.matchedBy(pod).perNodeAnti
}

// movable reports whether pod, which is independent, can move to another zone without
// changing another pod's fit: no inter-pod constraint of a pod in the snapshot selects it.
func (s *Simulator) movable(pod *v1.Pod) bool {
	return !s.allConstrained && !s.snap.entry(pod).constrained && !s.snap.matchedBy(pod).any
}

// Score runs the framework's PreScore and Score plugins (preferencePlugins, see
// FrameworkFactoryWith) for pod over templates, each as a new node with only its DaemonSet
// pods, as the scheduler scores the nodes that passed its filters: PreScore reads the
// snapshot, Score and NormalizeScore the templates, and the plugins' scores are weighted as
// the profile weighs them. It returns each template's total score.
func (s *Simulator) Score(ctx context.Context, pod *v1.Pod, templates []*Template) ([]int64, *fwk.Status) {
	nodes := make([]fwk.NodeInfo, len(templates))
	for i, t := range templates {
		nodes[i] = s.scoredNode(t)
	}
	state := framework.NewCycleState()
	if st := s.fw.RunPreScorePlugins(ctx, state, pod, nodes); !st.IsSuccess() {
		return nil, st
	}
	scores, st := s.fw.RunScorePlugins(ctx, state, pod, nodes)
	if !st.IsSuccess() {
		return nil, st
	}
	out := make([]int64, len(scores))
	for i, sc := range scores {
		out[i] = sc.TotalScore
	}
	return out, nil
}

// scoredNode returns the NodeInfo of t empty but for its DaemonSet pods, outside the
// snapshot, named after t's key: PodTopologySpread tells the scored nodes apart by name.
func (s *Simulator) scoredNode(t *Template) *framework.NodeInfo {
	if s.scored == nil {
		s.scored = map[string]*framework.NodeInfo{}
	}
	ni, ok := s.scored[t.Key]
	if !ok {
		ni = s.emptyNode(t, "nodewright-scored/"+t.Key)
		s.scored[t.Key] = ni
	}
	return ni
}

// The operations the packer changes the simulated cluster with. Each keeps the snapshot's
// generation, and with it every cached PreFilter run, consistent.

// AddNode adds node with pods on it; a node of that name must not be there.
func (s *Simulator) AddNode(node *v1.Node, pods ...*v1.Pod) { s.snap.addNode(node, pods...) }

// RemoveNode removes the node named name, with its pods, if it is there.
func (s *Simulator) RemoveNode(name string) { s.snap.removeNode(name) }

// Generation changes with every change of the simulated cluster: what is computed from it
// holds while the generation stands.
func (s *Simulator) Generation() uint64 { return s.snap.gen }

// HasNode reports whether a node named name is there.
func (s *Simulator) HasNode(name string) bool { return s.snap.nodes[name] != nil }

// Place puts pod, planned, on the node named nodeName, which must be there. Checks after it
// keep its hard topology spread constraints (see keepsSpread).
func (s *Simulator) Place(pod *v1.Pod, nodeName string) error {
	if err := s.snap.addPod(pod, nodeName); err != nil {
		return err
	}
	s.watchSpread(pod, nodeName)
	return nil
}

// Unplace takes pod off the node named nodeName.
func (s *Simulator) Unplace(logger klog.Logger, pod *v1.Pod, nodeName string) error {
	if err := s.snap.removePod(logger, pod, nodeName); err != nil {
		return err
	}
	s.unwatchSpread(pod)
	return nil
}

// Install makes the node named name a node of template t, with t's DaemonSet pods and pods,
// in place of the node of that name if there is one.
func (s *Simulator) Install(name string, t *Template, pods []*v1.Pod) {
	r := s.renamed(t, name)
	all := append(slices.Clone(r.DaemonPods), pods...)
	if s.snap.setNode(r.Node(), all) {
		return
	}
	s.snap.removeNode(name)
	s.snap.addNode(r.Node(), all...)
}

// NodeAs returns a node of template t named name with t's DaemonSet pods and pods, outside
// the snapshot: what the node of that name would be as t.
func (s *Simulator) NodeAs(t *Template, name string, pods []*v1.Pod) *framework.NodeInfo {
	c := s.renamed(t, name)
	ni := framework.NewNodeInfo()
	ni.SetNode(c.Node())
	for _, p := range slices.Concat(c.DaemonPods, pods) {
		ni.AddPodInfo(s.snap.entry(p).info)
	}
	return ni
}

// AllConstrained reports whether every pod may depend on the others whatever its spec (see
// NewSimulator).
func (s *Simulator) AllConstrained() bool { return s.allConstrained }

// StateFreePreFilters reports whether every PreFilter plugin of the profile is one of
// stateFreePreFilters: then a PreFilter run for a pod holds for a node switched between
// templates that differ only in what the prescreen checks.
func (s *Simulator) StateFreePreFilters() bool { return s.stateFree }
