package provision

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// snapshot is the cluster as a provisioning round sees it: the existing nodes with their
// pods, plus the nodes being planned. Unlike the scheduler's cache snapshot it can gain and
// lose nodes, which is what simulating nodes that do not exist yet needs. It is not safe for
// concurrent use: one round owns it.
type snapshot struct {
	// Snapshot serves the pod group listers, which provisioning does not model.
	*cache.Snapshot
	nodes map[string]*framework.NodeInfo
	// lists are rebuilt from nodes when dirty.
	dirty                               bool
	all, withAffinity, withAntiAffinity []fwk.NodeInfo
	withNonHostScopedAntiAffinity       []fwk.NodeInfo
	usedPVCs                            map[string]int
}

var (
	_ fwk.SharedLister      = &snapshot{}
	_ fwk.NodeInfoLister    = &snapshot{}
	_ fwk.StorageInfoLister = &snapshot{}
)

// newSnapshot returns a snapshot of nodes with the pods whose spec.nodeName names one of them.
func newSnapshot(nodes []*v1.Node, pods []*v1.Pod) *snapshot {
	s := &snapshot{Snapshot: cache.NewEmptySnapshot(), nodes: map[string]*framework.NodeInfo{}, dirty: true}
	for _, n := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		s.nodes[n.Name] = ni
	}
	for _, p := range pods {
		if ni, ok := s.nodes[p.Spec.NodeName]; ok {
			ni.AddPod(p)
		}
	}
	return s
}

// addNode adds node with pods on it; a node of that name must not be there.
func (s *snapshot) addNode(node *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pods...)
	ni.SetNode(node)
	s.nodes[node.Name] = ni
	s.dirty = true
	return ni
}

func (s *snapshot) removeNode(name string) {
	delete(s.nodes, name)
	s.dirty = true
}

// addPod puts pod on the node named nodeName.
func (s *snapshot) addPod(pod *v1.Pod, nodeName string) error {
	ni, ok := s.nodes[nodeName]
	if !ok {
		return fmt.Errorf("node %s is not in the snapshot", nodeName)
	}
	ni.AddPod(pod)
	s.dirty = true
	return nil
}

func (s *snapshot) rebuild() {
	if !s.dirty {
		return
	}
	names := make([]string, 0, len(s.nodes))
	for name := range s.nodes {
		names = append(names, name)
	}
	// A stable order keeps rounds reproducible.
	sort.Strings(names)
	s.all, s.withAffinity, s.withAntiAffinity, s.withNonHostScopedAntiAffinity = nil, nil, nil, nil
	s.usedPVCs = map[string]int{}
	for _, name := range names {
		ni := s.nodes[name]
		s.all = append(s.all, ni)
		if len(ni.PodsWithAffinity) > 0 {
			s.withAffinity = append(s.withAffinity, ni)
		}
		if len(ni.PodsWithRequiredAntiAffinity) > 0 {
			s.withAntiAffinity = append(s.withAntiAffinity, ni)
		}
		if len(ni.PodsWithRequiredNonHostScopedAntiAffinity) > 0 {
			s.withNonHostScopedAntiAffinity = append(s.withNonHostScopedAntiAffinity, ni)
		}
		for key, n := range ni.PVCRefCounts {
			s.usedPVCs[key] += n
		}
	}
	s.dirty = false
}

// NodeInfos returns the snapshot itself.
func (s *snapshot) NodeInfos() fwk.NodeInfoLister { return s }

// StorageInfos returns the snapshot itself.
func (s *snapshot) StorageInfos() fwk.StorageInfoLister { return s }

// List returns every node, sorted by name.
func (s *snapshot) List() ([]fwk.NodeInfo, error) {
	s.rebuild()
	return s.all, nil
}

// HavePodsWithAffinityList returns the nodes with pods with inter-pod (anti-)affinity.
func (s *snapshot) HavePodsWithAffinityList() ([]fwk.NodeInfo, error) {
	s.rebuild()
	return s.withAffinity, nil
}

// HavePodsWithRequiredAntiAffinityList returns the nodes with pods with required anti-affinity.
func (s *snapshot) HavePodsWithRequiredAntiAffinityList() ([]fwk.NodeInfo, error) {
	s.rebuild()
	return s.withAntiAffinity, nil
}

// HavePodsWithRequiredNonHostScopedAntiAffinityList returns the nodes with pods with required
// anti-affinity over a topology wider than a host.
func (s *snapshot) HavePodsWithRequiredNonHostScopedAntiAffinityList() ([]fwk.NodeInfo, error) {
	s.rebuild()
	return s.withNonHostScopedAntiAffinity, nil
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

// removePod takes pod off the node named nodeName.
func (s *snapshot) removePod(logger klog.Logger, pod *v1.Pod, nodeName string) error {
	ni, ok := s.nodes[nodeName]
	if !ok {
		return fmt.Errorf("node %s is not in the snapshot", nodeName)
	}
	s.dirty = true
	return ni.RemovePod(logger, pod)
}
