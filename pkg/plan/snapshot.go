package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	schedutil "k8s.io/kubernetes/pkg/scheduler/util"
)

// snapshot is the cluster as a provisioning round sees it: the existing nodes with their
// pods, plus the nodes being planned. Unlike the scheduler's cache snapshot it can gain and
// lose nodes, which is what simulating nodes that do not exist yet needs. It is not safe for
// concurrent use: one round owns it.
//
// A round changes it thousands of times, so what the Filter plugins list is kept up to date
// as it changes rather than rebuilt: the nodes in name order on every node change, the
// lists of nodes with (anti-)affinity pods when they are next asked for after a pod change.
type snapshot struct {
	// Snapshot serves the pod group listers, which provisioning does not model.
	*cache.Snapshot
	nodes map[string]*framework.NodeInfo
	// all is every node, sorted by name.
	all []fwk.NodeInfo
	// gen changes with every change; what is computed from the snapshot is valid while it
	// stays the same.
	gen uint64
	// The lists below are rebuilt from all when listed at a gen other than listed.
	listed   uint64
	kinds    podLists
	usedPVCs map[string]int
	// pods caches what the snapshot derives from a pod, by pod.
	pods map[*v1.Pod]*podEntry
	// selectors counts, by Term.key, the terms of the required inter-pod
	// (anti-)affinity and topology spread constraints of the snapshot's pods: the pods one
	// of them selects are the ones whose placement others depend on.
	selectors map[string]*selectorEntry
	// selectorsGen changes when a selector comes or goes.
	selectorsGen uint64
	// views are kept up to date with every change (see view); nil when the simulator uses
	// none. viewing is the view the PreFilter plugins see during a run over one, nil when
	// they see the whole snapshot.
	views   *viewSet
	viewing *view
	// podIDs numbers the pods the snapshot has seen, for the views' digests.
	podIDs uint64
}

// podEntry is what the snapshot derives from a pod once.
type podEntry struct {
	info *framework.PodInfo
	// constrained is constrained(pod).
	constrained bool
	// class is the pod's class, computed on first use (see snapshot.class).
	class string
	// selectors are the keys of the pod's Terms, anti its required anti-affinity Terms.
	selectors []string
	anti      Terms
	// id tells the pod apart in the views' digests.
	id uint64
	// matched caches matchedBy for selectorsGen matchedGen.
	matchedGen uint64
	matched    selectorMatch
}

// selectorEntry is one term of the snapshot's pods' constraints and how many of its pods
// carry it.
type selectorEntry struct {
	term Term
	pods int
}

// selectorMatch says which of the snapshot's constraints select a pod.
type selectorMatch struct {
	// any is true if one does; anti if a required anti-affinity term does, perNodeAnti if
	// one that keeps it off nodes one by one (Term.perNode) does, spread if a hard topology
	// spread constraint does.
	any, anti, perNodeAnti, spread bool
}

var (
	_ fwk.SharedLister      = &snapshot{}
	_ fwk.NodeInfoLister    = &snapshot{}
	_ fwk.StorageInfoLister = &snapshot{}
)

// newSnapshot returns a snapshot of nodes with the pods whose spec.nodeName names one of them.
func newSnapshot(nodes []*v1.Node, pods []*v1.Pod) *snapshot {
	s := &snapshot{Snapshot: cache.NewEmptySnapshot(), nodes: map[string]*framework.NodeInfo{},
		pods: map[*v1.Pod]*podEntry{}, selectors: map[string]*selectorEntry{}, gen: 1}
	for _, n := range nodes {
		s.addNode(n)
	}
	for _, p := range pods {
		if _, ok := s.nodes[p.Spec.NodeName]; ok {
			_ = s.addPod(p, p.Spec.NodeName)
		}
	}
	return s
}

// entry returns what the snapshot derives from pod, computing it the first time.
func (s *snapshot) entry(pod *v1.Pod) *podEntry {
	e, ok := s.pods[pod]
	if !ok {
		// Like NodeInfo.AddPod, ignore terms the apiserver let through unparsed.
		info, _ := framework.NewPodInfo(pod)
		s.podIDs++
		e = &podEntry{info: info, constrained: constrained(pod), id: mix64(s.podIDs)}
		e.selectors, e.anti = s.registerSelectors(pod, info)
		s.pods[pod] = e
	}
	return e
}

// class returns a key shared by the pods the PreFilter plugins cannot tell apart: same
// namespace, labels, signature (PodSignature) and topology spread constraints.
func (s *snapshot) class(pod *v1.Pod) string {
	e := s.entry(pod)
	if e.class == "" {
		b, _ := json.Marshal(struct {
			Namespace string
			Labels    map[string]string
			Signature string
			Spread    []v1.TopologySpreadConstraint
		}{pod.Namespace, pod.Labels, PodSignature(pod), pod.Spec.TopologySpreadConstraints})
		h := sha256.Sum256(b)
		e.class = hex.EncodeToString(h[:16])
	}
	return e.class
}

// addNode adds node with pods on it; a node of that name must not be there.
func (s *snapshot) addNode(node *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo()
	ni.SetNode(node)
	s.views.nodeAdded(node)
	for _, p := range pods {
		s.addPodInfo(ni, p)
	}
	s.nodes[node.Name] = ni
	i, _ := slices.BinarySearchFunc(s.all, node.Name, byNodeName)
	s.all = slices.Insert(s.all, i, fwk.NodeInfo(ni))
	s.gen++
	return ni
}

func (s *snapshot) removeNode(name string) {
	ni, ok := s.nodes[name]
	if !ok {
		return
	}
	for _, pi := range ni.Pods {
		s.countSelectors(pi.GetPod(), -1)
		s.views.podRemoved(ni.Node(), s.entry(pi.GetPod()))
	}
	s.views.nodeRemoved(ni.Node())
	delete(s.nodes, name)
	if i, found := slices.BinarySearchFunc(s.all, name, byNodeName); found {
		s.all = slices.Delete(s.all, i, i+1)
	}
	s.gen++
}

// setNode makes node the node of its name, if that node holds exactly pods, in that order:
// the node changes, not its pods, whose NodeInfo need not be rebuilt. It reports whether it
// did.
func (s *snapshot) setNode(node *v1.Node, pods []*v1.Pod) bool {
	ni, ok := s.nodes[node.Name]
	if !ok || len(ni.Pods) != len(pods) {
		return false
	}
	for i, pi := range ni.Pods {
		if pi.GetPod() != pods[i] {
			return false
		}
	}
	entries := make([]*podEntry, len(pods))
	for i, p := range pods {
		entries[i] = s.entry(p)
	}
	s.views.nodeChanged(ni.Node(), node, entries)
	ni.SetNode(node)
	s.gen++
	return true
}

func byNodeName(ni fwk.NodeInfo, name string) int { return strings.Compare(ni.Node().Name, name) }

// addPod puts pod on the node named nodeName.
func (s *snapshot) addPod(pod *v1.Pod, nodeName string) error {
	ni, ok := s.nodes[nodeName]
	if !ok {
		return fmt.Errorf("node %s is not in the snapshot", nodeName)
	}
	s.addPodInfo(ni, pod)
	s.gen++
	return nil
}

func (s *snapshot) addPodInfo(ni *framework.NodeInfo, pod *v1.Pod) {
	e := s.entry(pod)
	ni.AddPodInfo(e.info)
	s.countSelectors(pod, 1)
	s.views.podAdded(ni.Node(), e)
}

// removePod takes pod off the node named nodeName.
func (s *snapshot) removePod(logger klog.Logger, pod *v1.Pod, nodeName string) error {
	ni, ok := s.nodes[nodeName]
	if !ok {
		return fmt.Errorf("node %s is not in the snapshot", nodeName)
	}
	if err := ni.RemovePod(logger, pod); err != nil {
		return err
	}
	restorePorts(ni, pod)
	s.countSelectors(pod, -1)
	s.views.podRemoved(ni.Node(), s.entry(pod))
	s.gen++
	return nil
}

// rebuild brings the lists of nodes with some kind of pod up to date.
func (s *snapshot) rebuild() {
	if s.listed == s.gen {
		return
	}
	s.kinds = podLists{}
	s.usedPVCs = map[string]int{}
	for _, n := range s.all {
		ni := n.(*framework.NodeInfo)
		s.kinds.add(ni)
		for key, n := range ni.PVCRefCounts {
			s.usedPVCs[key] += n
		}
	}
	s.listed = s.gen
}

// NodeInfos returns the snapshot itself.
func (s *snapshot) NodeInfos() fwk.NodeInfoLister { return s }

// StorageInfos returns the snapshot itself.
func (s *snapshot) StorageInfos() fwk.StorageInfoLister { return s }

// List returns every node, sorted by name; during a run over a view, the view's nodes.
func (s *snapshot) List() ([]fwk.NodeInfo, error) {
	if v := s.viewing; v != nil {
		v.lists()
		return v.list, nil
	}
	return s.all, nil
}

// HavePodsWithAffinityList returns the nodes with pods with inter-pod (anti-)affinity.
func (s *snapshot) HavePodsWithAffinityList() ([]fwk.NodeInfo, error) {
	return s.podLists().withAffinity, nil
}

// HavePodsWithRequiredAntiAffinityList returns the nodes with pods with required anti-affinity.
func (s *snapshot) HavePodsWithRequiredAntiAffinityList() ([]fwk.NodeInfo, error) {
	return s.podLists().withAntiAffinity, nil
}

// HavePodsWithRequiredNonHostScopedAntiAffinityList returns the nodes with pods with required
// anti-affinity over a topology wider than a host.
func (s *snapshot) HavePodsWithRequiredNonHostScopedAntiAffinityList() ([]fwk.NodeInfo, error) {
	return s.podLists().withNonHostScopedAntiAffinity, nil
}

// podLists returns the lists of the view being run over, else of the whole snapshot, up to
// date.
func (s *snapshot) podLists() *podLists {
	if v := s.viewing; v != nil {
		v.lists()
		return &v.kinds
	}
	s.rebuild()
	return &s.kinds
}

// podLists are the nodes that hold pods of the kinds InterPodAffinity lists nodes by.
type podLists struct {
	withAffinity, withAntiAffinity, withNonHostScopedAntiAffinity []fwk.NodeInfo
}

// add lists ni under each kind of pod it holds.
func (l *podLists) add(ni *framework.NodeInfo) {
	if len(ni.PodsWithAffinity) > 0 {
		l.withAffinity = append(l.withAffinity, ni)
	}
	if len(ni.PodsWithRequiredAntiAffinity) > 0 {
		l.withAntiAffinity = append(l.withAntiAffinity, ni)
	}
	if len(ni.PodsWithRequiredNonHostScopedAntiAffinity) > 0 {
		l.withNonHostScopedAntiAffinity = append(l.withNonHostScopedAntiAffinity, ni)
	}
}

// Get returns the node named nodeName.
func (s *snapshot) Get(nodeName string) (fwk.NodeInfo, error) {
	if ni, ok := s.nodes[nodeName]; ok {
		return ni, nil
	}
	return nil, fmt.Errorf("nodeinfo not found for node name %q", nodeName)
}

// IsPVCUsedByPods reports whether a pod of the snapshot uses the PVC namespace/name.
func (s *snapshot) IsPVCUsedByPods(key string) bool {
	s.rebuild()
	return s.usedPVCs[key] > 0
}

// registerSelectors returns the keys of pod's Terms, adding each new one to
// s.selectors with no pods, and its required anti-affinity Terms.
func (s *snapshot) registerSelectors(pod *v1.Pod, info *framework.PodInfo) (keys []string, anti Terms) {
	for _, t := range newTerms(pod, info) {
		key := t.key()
		if _, ok := s.selectors[key]; !ok {
			s.selectors[key] = &selectorEntry{term: t}
		}
		keys = append(keys, key)
		if t.anti {
			anti = append(anti, t)
		}
	}
	return keys, anti
}

// countSelectors adds delta to the pod counts of pod's selectors, noting when one comes or
// goes.
func (s *snapshot) countSelectors(pod *v1.Pod, delta int) {
	for _, key := range s.entry(pod).selectors {
		e := s.selectors[key]
		before := e.pods
		e.pods += delta
		if (before == 0) != (e.pods == 0) {
			s.selectorsGen++
		}
	}
}

// matchedBy reports which of the constraints of the snapshot's pods select pod, by labels
// and namespace.
func (s *snapshot) matchedBy(pod *v1.Pod) selectorMatch {
	e := s.entry(pod)
	if e.matchedGen == s.selectorsGen+1 {
		return e.matched
	}
	var m selectorMatch
	for _, sel := range s.selectors {
		if sel.pods == 0 || m.any && (m.anti || !sel.term.anti) && (m.spread || !sel.term.spread) && (m.perNodeAnti || !sel.term.perNode()) ||
			!sel.term.Selects(pod) {
			continue
		}
		m.any = true
		m.anti = m.anti || sel.term.anti
		m.spread = m.spread || sel.term.spread
		m.perNodeAnti = m.perNodeAnti || sel.term.perNode()
	}
	// +1 so that the zero value of a new entry is never current.
	e.matched, e.matchedGen = m, s.selectorsGen+1
	return m
}

// restorePorts puts back the host ports that removing pod from ni took from the pods still
// on it. NodeInfo keeps the ports in use as a set, not a count: the scheduler never places
// two pods with one host port on a node, but the simulation, checking a plan, takes a pod out
// of a node whose other pods may share its ports, and must not forget theirs.
func restorePorts(ni *framework.NodeInfo, pod *v1.Pod) {
	if len(schedutil.GetHostPorts(pod)) == 0 {
		return
	}
	for _, pi := range ni.Pods {
		for _, p := range schedutil.GetHostPorts(pi.GetPod()) {
			ni.UsedPorts.Add(p.HostIP, string(p.Protocol), p.HostPort)
		}
	}
}
