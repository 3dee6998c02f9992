package v1alpha1

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
)

// AnnotationProvisionerHash on a NodeClaim is the NodeHash of its Provisioner's spec when
// the claim was written: a claim whose Provisioner's NodeHash is another now was made for a
// spec that has changed in a way its node shows (drift).
const AnnotationProvisionerHash = GroupName + "/provisioner-hash"

// NodeHash returns a hash of what in s a node takes at launch and keeps: its node class,
// labels, taints, startup taints and kubelet configuration. Not its requirements: a node
// still meets them or not, whatever else changed in them (widening them changes no node);
// nor its limits, weight, node cost or TTLs, which change what is launched next or when
// nodes go, not what a node is. The order of taints does not count.
func (s *ProvisionerSpec) NodeHash() string {
	return hashOf(struct {
		NodeClassRef  NodeClassReference
		Labels        map[string]LabelValue
		Taints        []Taint
		StartupTaints []Taint
		Kubelet       *KubeletConfiguration
	}{s.NodeClassRef, s.Labels, sortedTaints(s.Taints), sortedTaints(s.StartupTaints), s.Kubelet})
}

// Hash returns a hash of s, all of which shapes the instances launched with it (AMIs,
// subnets, security groups, instance profile, user data, block devices, tags, metadata
// options): a node launched with another drifts. The order of its lists counts.
func (s *EC2NodeClassSpec) Hash() string { return hashOf(s) }

// sortedTaints returns taints by key, effect and value.
func sortedTaints(taints []Taint) []Taint {
	return slices.SortedFunc(slices.Values(taints), func(a, b Taint) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Effect, b.Effect), cmp.Compare(a.Value, b.Value))
	})
}

// hashOf returns the FNV-1a hash of v's JSON, in hex. encoding/json writes map keys in
// order, so equal values hash alike; it fails only on channels, functions and cycles, which
// API types do not hold.
func hashOf(v any) string {
	b, _ := json.Marshal(v)
	h := fnv.New64a()
	_, _ = h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}
