package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/util/feature"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	plfeature "k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/podtopologyspread"
)

// Topology spread both ways. PodTopologySpread's Filter judges a pod by its own constraints
// only, and the scheduler never judges a bound pod again, though a pod bound after it into
// its domain, which its constraint selects, raises the count it was judged by. A plan is
// confirmed with each of its pods judged as if it came last, every other pod in place
// (packer.confirm): the scheduler binds them in an order of its own. So checking a pod on a
// node also judges, with the pod there, the pods placed before it whose hard spread
// constraints select it, as InterPodAffinity's Filter judges required anti-affinity both
// ways. Only the pods the plan places (Simulator.Place) count: bound pods are judged again
// neither by the scheduler nor by confirm.

// spreadFilter is the PodTopologySpread plugin the simulator judges placed pods with.
type spreadFilter interface {
	fwk.PreFilterPlugin
	fwk.FilterPlugin
}

// newSpreadFilter returns a PodTopologySpread plugin over fw's snapshot, with the feature
// gates the in-tree registry gives it, nil if fw's profile does not filter with it. Its
// default constraints do not matter: it judges only pods with constraints of their own.
func newSpreadFilter(ctx context.Context, fw framework.Framework) (spreadFilter, error) {
	if pl := fw.ListPlugins(); pl != nil {
		enabled := false
		for _, p := range pl.Filter.Enabled {
			enabled = enabled || p.Name == names.PodTopologySpread
		}
		if !enabled {
			return nil, nil
		}
	}
	args := &config.PodTopologySpreadArgs{DefaultingType: config.ListDefaulting}
	pl, err := podtopologyspread.New(ctx, args, fw, plfeature.NewSchedulerFeaturesFromGates(feature.DefaultFeatureGate))
	if err != nil {
		return nil, fmt.Errorf("building the %s plugin: %w", names.PodTopologySpread, err)
	}
	return pl.(spreadFilter), nil
}

// spreadGroup are pods PodTopologySpread cannot tell apart when it judges them: the same
// namespace, labels, node selection, tolerations and spread constraints, some of them hard.
type spreadGroup struct {
	// terms select, by the hard constraints' label selectors without their matchLabelKeys
	// (which only narrow them), the pods whose placement may change the group's verdict;
	// keys are the constraints' topology keys.
	terms Terms
	keys  []string
	// invariant is true when every key is one of invariantKeys: then the verdict is the
	// same on every candidate of an open node (see sameOnEveryCandidate). byDomain is true
	// when every key is one of domainKeys and the node a pod joins counts for the group by
	// those keys alone (its pods select nodes by no label, and their constraints leave
	// taints aside): then keepsSpread's verdict on a node is the same on every node that
	// shares its values of the keys.
	invariant, byDomain bool
	// placed are the group's pods placed in the snapshot, with their nodes. For an
	// invariant group, in holds them by the domains (key=value, see spreadDomain) of the nodes
	// they were placed on, in the order they came; a pod moved or taken off stays listed
	// where it was (placed says where it is).
	placed map[*v1.Pod]string
	in     map[string][]*v1.Pod
	// pre is the plugin's PreFilter run for a pod of the group over the snapshot at gen, or
	// over preView when its digest was preDigest.
	pre       preFilterRun
	preView   *view
	preDigest uint64
}

// spreadKey identifies pod's spreadGroup; "" when pod has no hard spread constraint.
func spreadKey(pod *v1.Pod) string {
	hard := false
	for _, c := range pod.Spec.TopologySpreadConstraints {
		hard = hard || c.WhenUnsatisfiable == v1.DoNotSchedule
	}
	if !hard {
		return ""
	}
	var nodeAffinity *v1.NodeAffinity
	if pod.Spec.Affinity != nil {
		nodeAffinity = pod.Spec.Affinity.NodeAffinity
	}
	b, _ := json.Marshal(struct {
		Namespace    string
		Labels       map[string]string
		NodeSelector map[string]string
		NodeAffinity *v1.NodeAffinity
		Tolerations  []v1.Toleration
		Spread       []v1.TopologySpreadConstraint
	}{pod.Namespace, pod.Labels, pod.Spec.NodeSelector, nodeAffinity, pod.Spec.Tolerations, pod.Spec.TopologySpreadConstraints})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// newSpreadGroup returns the group of pod, which has hard spread constraints.
func newSpreadGroup(pod *v1.Pod) *spreadGroup {
	selects := pod.Spec.NodeSelector != nil || pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil &&
		pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
	g := &spreadGroup{invariant: true, byDomain: !selects, placed: map[*v1.Pod]string{}, in: map[string][]*v1.Pod{}}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != v1.DoNotSchedule {
			continue
		}
		g.terms = append(g.terms, spreadTerm(pod, c))
		g.keys = append(g.keys, c.TopologyKey)
		g.invariant = g.invariant && invariantKeys[c.TopologyKey]
		g.byDomain = g.byDomain && domainKeys[c.TopologyKey] && (c.NodeTaintsPolicy == nil || *c.NodeTaintsPolicy == v1.NodeInclusionPolicyIgnore)
	}
	return g
}

// spreadVerdicts are keepsSpread's rejections of one pod at one generation of the snapshot,
// by byDomain group and domain (spreadGroup.domain): a pod that a placed group's spread over
// zones keeps out of a zone is judged once there, not once per node of the zone.
type spreadVerdicts struct {
	pod      *v1.Pod
	gen      uint64
	rejected map[spreadVerdict]*fwk.Status
}

// spreadVerdict is a group and a domain of it.
type spreadVerdict struct {
	group  *spreadGroup
	domain string
}

// watchSpread notes pod, placed on the node named nodeName, as one whose hard spread
// constraints the placements after it must keep (see keepsSpread).
func (s *Simulator) watchSpread(pod *v1.Pod, nodeName string) {
	if s.spread == nil {
		return
	}
	key := perPod(s.spreadKeys, pod, spreadKey)
	if key == "" {
		return
	}
	g := s.spreadGroups[key]
	if g == nil {
		g = newSpreadGroup(pod)
		s.spreadGroups[key] = g
		s.spreadOrder = append(s.spreadOrder, g)
	}
	g.placed[pod] = nodeName
	s.spreadOf[pod] = g
	if ni, ok := s.snap.nodes[nodeName]; ok && g.invariant {
		for _, k := range g.keys {
			if v, ok := ni.Node().Labels[k]; ok {
				g.in[spreadDomain(k, v)] = append(g.in[spreadDomain(k, v)], pod)
			}
		}
	}
}

// spreadDomain names the domain of a spreadGroup's topology key where its value is value.
func spreadDomain(key, value string) string { return key + "=" + value }

// unwatchSpread forgets pod, taken off its node.
func (s *Simulator) unwatchSpread(pod *v1.Pod) {
	if g := s.spreadOf[pod]; g != nil {
		delete(g.placed, pod)
		delete(s.spreadOf, pod)
	}
}

// keepsSpread reports whether pod, on ni, leaves every placed pod whose hard spread
// constraints select it where PodTopologySpread accepts it: each such pod in a domain of
// ni, of each group once per domain, is judged by the plugin as CheckPlaced judges it, with
// pod added on ni. A placed pod the plugin rejects already is not pod's doing, and does not
// count. Nor do the pods of pod's own group: the plugin accepting pod on ni, with their
// counts and domains, is accepting each of them with pod there.
func (s *Simulator) keepsSpread(ctx context.Context, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	if s.spread == nil || !s.snap.matchedBy(pod).spread {
		return nil
	}
	info := s.snap.entry(pod).info
	own := s.spreadGroups[perPod(s.spreadKeys, pod, spreadKey)]
	for _, g := range s.spreadOrder {
		if g == own || len(g.placed) == 0 || !g.terms.Selects(pod) {
			continue
		}
		var at spreadVerdict
		byDomain := g.byDomain && !s.exhaustive
		if byDomain {
			at = spreadVerdict{g, g.domain(ni.Node())}
			if r := &s.spreadRejects; r.pod == pod && r.gen == s.snap.gen && r.rejected[at] != nil {
				return r.rejected[at]
			}
		}
		st := s.keepsGroupSpread(ctx, g, info, ni)
		if st.IsSuccess() {
			continue
		}
		if byDomain {
			if r := &s.spreadRejects; r.pod != pod || r.gen != s.snap.gen {
				*r = spreadVerdicts{pod: pod, gen: s.snap.gen, rejected: map[spreadVerdict]*fwk.Status{}}
			}
			s.spreadRejects.rejected[at] = st
		}
		return st
	}
	return nil
}

// keepsGroupSpread is keepsSpread for the placed pods of g: one of each domain of g near
// ni is judged.
func (s *Simulator) keepsGroupSpread(ctx context.Context, g *spreadGroup, info fwk.PodInfo, ni fwk.NodeInfo) *fwk.Status {
	node := ni.Node()
	var judged map[string]bool // by domain; with one key, the first judged ends the search
	judge := func(q *v1.Pod) (*fwk.Status, bool) {
		name, placed := g.placed[q]
		m, ok := s.snap.nodes[name]
		if !placed || !ok || !g.near(m.Node(), node) {
			return nil, false
		}
		if len(g.keys) > 1 {
			domain := g.domain(m.Node())
			if judged[domain] {
				return nil, false
			}
			if judged == nil {
				judged = map[string]bool{}
			}
			judged[domain] = true
		}
		return s.stillSpread(ctx, g, q, m, info, ni), true
	}
	if !g.invariant {
		for q := range g.placed {
			st, judgedQ := judge(q)
			if !st.IsSuccess() {
				return st
			}
			if judgedQ && len(g.keys) == 1 {
				break // ni has one domain of the group's only key
			}
		}
		return nil
	}
	// The nodes' values of invariant keys stay as they were placed: the pods near ni are
	// those listed in ni's domains.
	for _, k := range g.keys {
		v, ok := node.Labels[k]
		if !ok {
			continue
		}
		for _, q := range g.in[spreadDomain(k, v)] {
			st, judgedQ := judge(q)
			if !st.IsSuccess() {
				return st
			}
			if judgedQ && len(g.keys) == 1 {
				break
			}
		}
	}
	return nil
}

// errReasonPlacedSpread is keepsSpread's reason, worded as the scheduler words its own.
const errReasonPlacedSpread = "node(s) didn't satisfy planned pods' topology spread constraints"

// stillSpread judges q, a placed pod of g on m, with the pod of info added on ni.
func (s *Simulator) stillSpread(ctx context.Context, g *spreadGroup, q *v1.Pod, m *framework.NodeInfo, info fwk.PodInfo, ni fwk.NodeInfo) *fwk.Status {
	// Over q's view when it has one (see view): the plugin reads no more of the snapshot.
	nodes, v := s.snap.all, s.snap.viewFor(q)
	if v != nil {
		v.lists()
		nodes = v.list
	}
	if v == nil && g.pre.gen != s.snap.gen || v != nil && (g.preView != v || g.preDigest != v.digest) {
		s.PreFilters++
		state := framework.NewCycleState()
		_, status := s.spread.PreFilter(ctx, state, q, nodes)
		g.pre = preFilterRun{pod: q, gen: s.snap.gen, state: state, status: status}
		g.preView = v
		if v != nil {
			g.preDigest = v.digest
		}
	}
	if !g.pre.status.IsSuccess() {
		return nil
	}
	state := g.pre.state.Clone()
	ext := s.spread.PreFilterExtensions()
	if st := ext.RemovePod(ctx, state, q, s.snap.entry(q).info, m); !st.IsSuccess() {
		return st
	}
	s.Checks++
	if !s.spread.Filter(ctx, state, q, m).IsSuccess() {
		return nil
	}
	if st := ext.AddPod(ctx, state, q, info, ni); !st.IsSuccess() {
		return st
	}
	s.Checks++
	if s.spread.Filter(ctx, state, q, m).IsSuccess() {
		return nil
	}
	st := fwk.NewStatus(fwk.Unschedulable, errReasonPlacedSpread)
	if g.invariant {
		st = st.WithPlugin(names.PodTopologySpread)
	}
	return st
}

// near reports whether nodes a and b share the domain of one of g's constraints.
func (g *spreadGroup) near(a, b *v1.Node) bool {
	for _, key := range g.keys {
		va, okA := a.Labels[key]
		vb, okB := b.Labels[key]
		if okA && okB && va == vb {
			return true
		}
	}
	return false
}

// domain returns node's domains of g's constraints, as one string.
func (g *spreadGroup) domain(node *v1.Node) string {
	values := make([]string, len(g.keys))
	for i, key := range g.keys {
		values[i] = node.Labels[key]
	}
	return strings.Join(values, "\x00")
}
