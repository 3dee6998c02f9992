package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// Views. Of the PreFilter plugins simulated (stateFreePreFilters), only PodTopologySpread
// and InterPodAffinity read the snapshot's pods and nodes, and they read all of them: the
// pods on every node that a pod's spread constraints or affinity terms select, the pods
// whose required anti-affinity selects it, every node's domains. A plan changes the snapshot
// with every pod it places and node it adds, so a PreFilter run over the whole snapshot,
// once per pod per change, is most of what a plan of thousands of pods costs. Yet the run
// depends on few of those pods and nodes:
//
//   - PodTopologySpread counts, for each hard constraint, the pods of the pod's namespace its
//     selector selects, on the nodes that have every constraint's topology key and pass its
//     node inclusion policies (the pod's node affinity, the node's taints); a node with none
//     of those pods adds a domain with no pods, which every node of the same domain
//     signature (domainSig) adds as well.
//   - InterPodAffinity counts the pods the pod's required terms select and the pods whose
//     required anti-affinity terms select the pod, by their nodes' values of the terms'
//     topology keys. Pods of neither kind, and nodes without them, change nothing.
//
// A view is the snapshot as those plugins see it for the pods of one viewKey: its
// relevant pods on their nodes, and one bare node for each domain signature of the
// snapshot's nodes. A hard constraint over kubernetes.io/hostname makes every node a domain
// of its own; of those, the plugin's Filter reads only the counts of the nodes that hold pods
// it counts, and whether some node holds none (then the least count is 0, whatever the
// number of such nodes). So for such a constraint (view.host) the domain signature leaves
// the hostname out, and its bare node, named by no real hostname, stands for the nodes of the
// signature that hold no counted pod, as long as there is one.
//
// The snapshot keeps its views up to date as it changes; each view keeps a digest of what
// the plugins read, and a PreFilter run over a view holds while the digest is what it was
// when the run was made (Simulator.viewRun), or is brought up to date by the plugins'
// extensions (Simulator.replay). The other PreFilter plugins read the pod alone
// (VolumeRestrictions, for a pod with claims, the snapshot's claims: such pods get no view).

// maxViews bounds the views a snapshot keeps up to date: each change of the snapshot visits
// every view. The least recently used goes first.
const maxViews = 64

// view is the snapshot as the PreFilter plugins see it for the pods of one viewKey.
type view struct {
	// rep is a pod of the view's key; terms are its Terms, whose selection of a pod makes it
	// relevant, keys their topology keys, spread its hard topology spread constraints.
	rep    *v1.Pod
	terms  Terms
	keys   []string
	spread []v1.TopologySpreadConstraint
	// selection is rep's required node affinity, which PodTopologySpread's node inclusion
	// policy applies.
	selection nodeaffinity.RequiredNodeAffinity
	// nodes hold the relevant pods, by node name; domains are one bare node per domain
	// signature of the snapshot's nodes, with the number of nodes of that signature (only
	// when spread is not empty).
	nodes   map[string]*framework.NodeInfo
	domains map[string]*viewDomain
	// host is the hard constraint over kubernetes.io/hostname when there is exactly one and
	// hostCounts decides exactly which pods it counts (hostSelector); counted are, by node
	// name, how many of the node's pods it counts.
	host         *v1.TopologySpreadConstraint
	hostSelector labels.Selector
	counted      map[string]int
	// digest sums, over the relevant pods and the domain signatures, a hash of what the
	// plugins read of each: a PreFilter run holds while it is the same. Sums of 64-bit
	// hashes can collide; the odds that two different contents of one view ever compare
	// equal in a plan are about 2^-64 per comparison.
	digest uint64
	// changed counts the changes of the lists below, rebuilt when listed falls behind.
	changed, listed uint64
	list            []fwk.NodeInfo
	kinds           podLists
	// runs are the PreFilter runs over the view, by snapshot.class.
	runs map[string]*viewRun
	// events are the relevant pods added and removed, in order, when the view has no spread
	// constraint (see Simulator.replay); the first is the logged-th since the view was made.
	events []viewEvent
	logged int
	// used orders the views by last use (viewSet.clock).
	used uint64
}

// viewDomain is one domain signature of a view: how many of the snapshot's nodes have it,
// how many of those hold pods of the view's host constraint (occupied), and the bare node
// that stands for the others, in the view while there is one (present).
type viewDomain struct {
	nodes, occupied int
	present         bool
	info            *framework.NodeInfo
}

// viewRun is a PreFilter run over a view whose digest was digest, after the view's first
// seen events.
type viewRun struct {
	digest uint64
	seen   int
	run    preFilterRun
}

// viewEvent is a relevant pod added to or removed from a node of a view: the extensions read
// the node's labels only.
type viewEvent struct {
	added bool
	pod   *framework.PodInfo
	node  *framework.NodeInfo
}

// maxViewEvents bounds a view's log: a run further behind is made anew.
const maxViewEvents = 4096

// logEvent logs a relevant pod added to or removed from ni, if the view keeps a log.
func (v *view) logEvent(added bool, e *podEntry, ni *framework.NodeInfo) {
	if len(v.spread) > 0 {
		return
	}
	if len(v.events) == maxViewEvents {
		v.logged += len(v.events)
		v.events = v.events[:0]
	}
	v.events = append(v.events, viewEvent{added: added, pod: e.info, node: ni})
}

// seen is how many events the view has seen since it was made.
func (v *view) seen() int { return v.logged + len(v.events) }

// since returns the events after the first seen, or false if the log no longer holds them.
func (v *view) since(seen int) ([]viewEvent, bool) {
	if seen < v.logged {
		return nil, false
	}
	return v.events[seen-v.logged:], true
}

// viewKey identifies the pods the PreFilter plugins see the snapshot alike for: the same
// namespace, labels (which others' terms select), node selection, tolerations, inter-pod
// terms and topology spread constraints.
func viewKey(pod *v1.Pod) string {
	b, _ := json.Marshal(struct {
		Namespace    string
		Labels       map[string]string
		NodeSelector map[string]string
		Affinity     *v1.Affinity
		Tolerations  []v1.Toleration
		Spread       []v1.TopologySpreadConstraint
	}{pod.Namespace, pod.Labels, pod.Spec.NodeSelector, pod.Spec.Affinity, pod.Spec.Tolerations, pod.Spec.TopologySpreadConstraints})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// newView returns the view of rep's key, empty.
func newView(rep *v1.Pod, terms Terms) *view {
	v := &view{rep: rep, terms: terms, selection: nodeaffinity.GetRequiredNodeAffinity(rep),
		nodes: map[string]*framework.NodeInfo{}, domains: map[string]*viewDomain{}, runs: map[string]*viewRun{}}
	for _, t := range terms {
		if !slices.Contains(v.keys, t.TopologyKey) {
			v.keys = append(v.keys, t.TopologyKey)
		}
	}
	hosts := 0
	for _, c := range rep.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == v1.DoNotSchedule {
			v.spread = append(v.spread, c)
			if c.TopologyKey == v1.LabelHostname {
				hosts++
				v.host = &v.spread[len(v.spread)-1]
			}
		}
	}
	if hosts != 1 || len(v.host.MatchLabelKeys) > 0 || v.host.LabelSelector == nil ||
		len(v.host.LabelSelector.MatchLabels)+len(v.host.LabelSelector.MatchExpressions) == 0 {
		// Two such constraints count different pods; matchLabelKeys narrow a selector in ways
		// the plugin decides; an empty selector counts no pod.
		v.host = nil
	}
	if v.host != nil {
		sel, err := metav1.LabelSelectorAsSelector(v.host.LabelSelector)
		if err != nil {
			v.host = nil
			return v
		}
		v.hostSelector, v.counted = sel, map[string]int{}
	}
	return v
}

// hostCounts reports whether the view's host constraint counts pod: as PodTopologySpread
// counts, a pod of rep's namespace, not terminating, that its selector selects.
func (v *view) hostCounts(pod *v1.Pod) bool {
	return pod.Namespace == v.rep.Namespace && pod.DeletionTimestamp == nil && v.hostSelector.Matches(labels.Set(pod.Labels))
}

// relevant reports whether the pod of e can change what the plugins compute for the view's
// pods: one of their terms selects it, or one of its required anti-affinity terms selects
// them. Term.Selects errs toward selecting.
func (v *view) relevant(e *podEntry) bool {
	return v.terms.Selects(e.info.Pod) || e.anti.Selects(v.rep)
}

// nodeAdded counts node's domain signature.
func (v *view) nodeAdded(node *v1.Node) {
	if len(v.spread) == 0 {
		return
	}
	sig := v.domainSig(node)
	d := v.domains[sig]
	if d == nil {
		d = &viewDomain{info: framework.NewNodeInfo()}
		d.info.SetNode(v.domainNode(node))
		v.domains[sig] = d
	}
	d.nodes++
	v.present(sig, d)
}

// nodeRemoved uncounts node's domain signature. The node's pods are removed before it.
func (v *view) nodeRemoved(node *v1.Node) {
	if len(v.spread) == 0 {
		return
	}
	sig := v.domainSig(node)
	d := v.domains[sig]
	if d == nil {
		return
	}
	d.nodes--
	v.present(sig, d)
	if d.nodes == 0 {
		delete(v.domains, sig)
	}
}

// occupy counts delta pods of the host constraint on node.
func (v *view) occupy(node *v1.Node, delta int) {
	before := v.counted[node.Name]
	v.counted[node.Name] += delta
	if after := v.counted[node.Name]; (before == 0) != (after == 0) {
		if after == 0 {
			delete(v.counted, node.Name)
			delta = -1
		} else {
			delta = 1
		}
		sig := v.domainSig(node)
		if d := v.domains[sig]; d != nil {
			d.occupied += delta
			v.present(sig, d)
		}
	}
}

// present puts d's bare node in the view or takes it out, as a node of its signature holds no
// pod of the host constraint or none does.
func (v *view) present(sig string, d *viewDomain) {
	if present := d.nodes > d.occupied; present != d.present {
		d.present = present
		if present {
			v.digest += hashString(domainSeed, sig)
		} else {
			v.digest -= hashString(domainSeed, sig)
		}
		v.changed++
	}
}

// domainNode returns the bare node of node's domain signature: node itself, or with a host
// constraint a copy named by a hostname no node has.
func (v *view) domainNode(node *v1.Node) *v1.Node {
	if _, ok := node.Labels[v1.LabelHostname]; v.host == nil || !ok {
		return node
	}
	c := &v1.Node{ObjectMeta: *node.ObjectMeta.DeepCopy(), Spec: node.Spec}
	// Not a valid label value: no node has it.
	c.Name, c.Labels[v1.LabelHostname] = unoccupiedHost, unoccupiedHost
	return c
}

// unoccupiedHost names the bare node that stands for the nodes that hold no pod of a host
// constraint.
const unoccupiedHost = "no pod counted here"

// podAdded adds the pod of e, on node, if it is relevant.
func (v *view) podAdded(node *v1.Node, e *podEntry) {
	if !v.relevant(e) {
		return
	}
	ni := v.nodes[node.Name]
	if ni == nil {
		ni = framework.NewNodeInfo()
		ni.SetNode(node)
		v.nodes[node.Name] = ni
	}
	ni.AddPodInfo(e.info)
	v.digest += v.podHash(node, e)
	v.changed++
	v.logEvent(true, e, ni)
	if v.host != nil && v.hostCounts(e.info.Pod) {
		v.occupy(node, 1)
	}
}

// podRemoved removes the pod of e, on node, if it is relevant.
func (v *view) podRemoved(logger klog.Logger, node *v1.Node, e *podEntry) {
	ni := v.nodes[node.Name]
	if ni == nil || !v.relevant(e) {
		return
	}
	if err := ni.RemovePod(logger, e.info.Pod); err != nil {
		return
	}
	if len(ni.Pods) == 0 {
		delete(v.nodes, node.Name)
	}
	v.digest -= v.podHash(node, e)
	v.changed++
	v.logEvent(false, e, ni)
	if v.host != nil && v.hostCounts(e.info.Pod) {
		v.occupy(node, -1)
	}
}

// domainSig is what PodTopologySpread reads of a node with none of the pods it counts: the
// values of the hard constraints' topology keys, or their absence, and what its node
// inclusion policies read (whether the node matches rep's node affinity; its taints, which
// are kept whole rather than judged).
func (v *view) domainSig(node *v1.Node) string {
	var b strings.Builder
	for _, c := range v.spread {
		if v.host != nil && c.TopologyKey == v1.LabelHostname {
			_, ok := node.Labels[c.TopologyKey]
			b.WriteString("|host:" + strconv.FormatBool(ok))
			continue
		}
		writeLabel(&b, node, c.TopologyKey)
	}
	if ok, _ := v.selection.Match(node); ok {
		b.WriteString("|selected")
	}
	for _, t := range node.Spec.Taints {
		b.WriteString("|" + t.ToString())
	}
	return b.String()
}

// readsAlike reports whether the view reads the same of nodes a and b, whatever pods they
// hold whose anti-affinity terms have topology keys antiKeys: their domain signature, and their
// values of the view's keys and of antiKeys (see podHash).
func (v *view) readsAlike(a, b *v1.Node, antiKeys []string) bool {
	same := func(key string) bool {
		va, okA := a.Labels[key]
		vb, okB := b.Labels[key]
		return okA == okB && va == vb
	}
	for _, k := range v.keys {
		if !same(k) {
			return false
		}
	}
	for _, k := range antiKeys {
		if !same(k) {
			return false
		}
	}
	return len(v.spread) == 0 || v.domainSig(a) == v.domainSig(b)
}

// writeLabel writes node's value of key, or that it has none.
func writeLabel(b *strings.Builder, node *v1.Node, key string) {
	if value, ok := node.Labels[key]; ok {
		b.WriteString("|" + key + "=" + value)
	} else {
		b.WriteString("|" + key + "!")
	}
}

// podHash hashes what the plugins read of a relevant pod: the pod itself and its node's
// values of every topology key its counts go by (the view's terms' and the pod's own
// anti-affinity terms'), and whether PodTopologySpread counts pods on that node.
func (v *view) podHash(node *v1.Node, e *podEntry) uint64 {
	var b strings.Builder
	for _, k := range v.keys {
		writeLabel(&b, node, k)
	}
	for _, t := range e.anti {
		writeLabel(&b, node, t.TopologyKey)
	}
	if len(v.spread) > 0 {
		b.WriteString("||" + v.domainSig(node))
	}
	return mix64(e.id ^ hashString(podSeed, b.String()))
}

// lists rebuilds what the view lists, if it changed since it was last listed.
func (v *view) lists() {
	if v.listed == v.changed && v.list != nil {
		return
	}
	v.list, v.kinds = make([]fwk.NodeInfo, 0, len(v.nodes)+len(v.domains)), podLists{}
	// The plugins sum what they count over the nodes: order does not matter.
	for _, ni := range v.nodes {
		v.list = append(v.list, ni)
		v.kinds.add(ni)
	}
	for _, d := range v.domains {
		if d.present {
			v.list = append(v.list, d.info)
		}
	}
	v.listed = v.changed
}

// viewSet are the views a snapshot keeps up to date, by viewKey.
type viewSet struct {
	byKey map[string]*view
	// keys caches viewKey by pod.
	keys  map[*v1.Pod]string
	clock uint64
}

// The seeds of the view's hashes.
const (
	domainSeed uint64 = 0x6a09e667f3bcc908
	podSeed    uint64 = 0xbb67ae8584caa73b
)

// hashString is FNV-1a of s from seed, finished by mix64.
func hashString(seed uint64, s string) uint64 {
	h := seed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return mix64(h)
}

// mix64 is splitmix64's finalizer: it spreads every bit of x over the result.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// newViewSet returns a set with no views yet.
func newViewSet() *viewSet {
	return &viewSet{byKey: map[string]*view{}, keys: map[*v1.Pod]string{}}
}

// The changes of the snapshot, passed on to every view; a nil set has none.

func (vs *viewSet) nodeAdded(node *v1.Node) {
	if vs == nil {
		return
	}
	for _, v := range vs.byKey {
		v.nodeAdded(node)
	}
}

func (vs *viewSet) nodeRemoved(node *v1.Node) {
	if vs == nil {
		return
	}
	for _, v := range vs.byKey {
		v.nodeRemoved(node)
	}
}

func (vs *viewSet) podAdded(node *v1.Node, e *podEntry) {
	if vs == nil {
		return
	}
	for _, v := range vs.byKey {
		v.podAdded(node, e)
	}
}

// nodeChanged passes on old, holding the pods of entries, becoming node of the same name and
// pods. A view that reads the same of both nodes (see reads) keeps old.
func (vs *viewSet) nodeChanged(old, node *v1.Node, entries []*podEntry) {
	if vs == nil {
		return
	}
	var keys []string
	for _, e := range entries {
		for _, t := range e.anti {
			keys = append(keys, t.TopologyKey)
		}
	}
	for _, v := range vs.byKey {
		if v.readsAlike(old, node, keys) {
			continue
		}
		for _, e := range entries {
			v.podRemoved(klog.Background(), old, e)
		}
		v.nodeRemoved(old)
		v.nodeAdded(node)
		for _, e := range entries {
			v.podAdded(node, e)
		}
	}
}

func (vs *viewSet) podRemoved(node *v1.Node, e *podEntry) {
	if vs == nil {
		return
	}
	for _, v := range vs.byKey {
		v.podRemoved(klog.Background(), node, e)
	}
}

// viewFor returns the view of pod's key, made from the snapshot s if there is none; nil
// when s keeps no views or pod gets none: a pod with volumes the filters read, whose
// VolumeRestrictions state reads the claims of the whole snapshot.
func (s *snapshot) viewFor(pod *v1.Pod) *view {
	vs := s.views
	if vs == nil || len(filterVolumes(pod)) > 0 {
		return nil
	}
	key := perPod(vs.keys, pod, viewKey)
	vs.clock++
	if v := vs.byKey[key]; v != nil {
		v.used = vs.clock
		return v
	}
	if len(vs.byKey) >= maxViews {
		var oldest string
		for k, v := range vs.byKey {
			if oldest == "" || v.used < vs.byKey[oldest].used {
				oldest = k
			}
		}
		delete(vs.byKey, oldest)
	}
	v := newView(pod, newTerms(pod, s.entry(pod).info))
	for _, n := range s.all {
		ni := n.(*framework.NodeInfo)
		v.nodeAdded(ni.Node())
		for _, pi := range ni.Pods {
			v.podAdded(ni.Node(), s.entry(pi.GetPod()))
		}
	}
	v.used = vs.clock
	vs.byKey[key] = v
	return v
}
