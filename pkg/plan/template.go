package plan

import (
	"maps"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/daemon"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// Template is a node nodewright could launch: one instance type in one offering (zone and
// capacity type) for one Provisioner. Its Node carries what the real node will carry when the
// kubelet registers it, so that the scheduler's Filter plugins judge the template as they
// will judge the node.
type Template struct {
	// Provisioner is the Provisioner the node would be launched for.
	Provisioner *v1alpha1.Provisioner
	// InstanceType is the instance type, Offering the zone and capacity type it is bought in.
	InstanceType *cloud.InstanceType
	Offering     cloud.Offering
	// DaemonPods are the pods the cluster's DaemonSets would run on the node, and
	// DaemonRequests the sum of their requests, and their number as pods.
	DaemonPods     []*v1.Pod
	DaemonRequests v1.ResourceList
	// Chosen are the labels of the user's the node has beyond its Provisioner's: the values
	// the plan chose for those its requirements leave open (see openKeys), or, for a
	// launched claim's node, every label the claim was planned with; nil if none. Node
	// carries them.
	Chosen map[string]string
	// Key identifies the template within a round: its Shape, and the chosen labels,
	// k=v,..., if any.
	Key string
	// Shape is the offering it buys for its Provisioner: provisioner/type/zone/capacityType
	// (see ShapeKey), what a stranded pod avoids (Input.Avoid).
	Shape string
	// group names the templates of its Provisioner with the same chosen labels: the
	// Provisioner's name, and the chosen labels if any (see packer.templates).
	group string
	// excluded is excludedByDefault(t); named is true when its Provisioner's requirements ask
	// for it by name (namesType), which lifts that.
	excluded string
	named    bool
	// NodeCost is what a node of the template costs beyond its instance, in USD per hour
	// (see Cost).
	NodeCost float64
	// daemonAffinity is true if a DaemonSet pod has inter-pod constraints (or volumes): then
	// whether a pod fits the empty template can depend on its labels.
	daemonAffinity bool
	// free is what the node's allocatable leaves beyond its DaemonSet pods' requests, in
	// millis, for the packer's prescreen (packer.passes).
	free millis
	// idx numbers the template among its plan's (templateParts), from 1; 0 for one built
	// alone (NewTemplate).
	idx int32
	// name and region are those of the node; provLabels are its Provisioner's labels
	// (ProvisionerSpec.NodeLabels) and taints its taints, shared by the Provisioner's
	// templates; capacity and allocatable are its instance type's, shared by its templates.
	// A plan has thousands of templates and asks for the Node of few (those it probes or
	// plans): the others are looked at by label (see label), their Nodes never built.
	name, region          string
	provLabels            map[string]string
	taints                []v1.Taint
	capacity, allocatable v1.ResourceList
	// node is the Node of a copy (renamed), built with it; nil for a template, whose Node
	// is built at each call.
	node *v1.Node
}

// Node returns the node as t's would register: its name, the labels of its instance type
// and offering, its Provisioner's, the chosen ones, its hostname, Provisioner and region,
// its taints, capacity and allocatable. Unless t is a planned node's copy, each call
// builds a new one: use label to read a label.
func (t *Template) Node() *v1.Node {
	if t.node != nil {
		return t.node
	}
	return t.buildNode()
}

// buildNode builds t's Node (see Node). Its labels are those label reads.
func (t *Template) buildNode() *v1.Node {
	labels := make(map[string]string, len(t.provLabels)+len(t.Chosen)+len(t.InstanceType.Labels)+7)
	// Lowest precedence first: each layer overrides those before it, as label reads them
	// in the reverse order.
	maps.Copy(labels, t.provLabels)
	maps.Copy(labels, t.Chosen)
	maps.Copy(labels, t.InstanceType.Labels)
	if _, ok := labels[v1.LabelOSStable]; !ok {
		labels[v1.LabelOSStable] = string(v1.Linux)
	}
	for _, k := range fixedLabels {
		if v, ok := t.fixedLabel(k); ok {
			labels[k] = v
		}
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: t.name, Labels: labels, UID: types.UID("template-" + t.name)},
		Spec:       v1.NodeSpec{Taints: t.taints},
		Status: v1.NodeStatus{
			Capacity:    t.capacity,
			Allocatable: t.allocatable,
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
}

// fixedLabels are the labels a template's node has whatever its instance type's and
// Provisioner's: set by its offering, its name, Provisioner and region (see fixedLabel).
var fixedLabels = []string{v1.LabelInstanceTypeStable, v1.LabelTopologyZone, v1alpha1.LabelCapacityType, v1.LabelHostname,
	v1alpha1.LabelProvisionerName, v1.LabelTopologyRegion}

// fixedLabel returns the value of key if it is one of fixedLabels t's node has.
func (t *Template) fixedLabel(key string) (string, bool) {
	switch key {
	case v1.LabelInstanceTypeStable:
		return t.InstanceType.Name, true
	case v1.LabelTopologyZone:
		return t.Offering.Zone, true
	case v1alpha1.LabelCapacityType:
		return t.Offering.CapacityType, true
	case v1.LabelHostname:
		return t.name, true
	case v1alpha1.LabelProvisionerName:
		return t.Provisioner.Name, true
	case v1.LabelTopologyRegion:
		return t.region, t.region != ""
	}
	return "", false
}

// label returns the value of label key of t's node, and whether it has it, without building
// the node: what Node's labels say.
func (t *Template) label(key string) (string, bool) {
	if v, ok := t.fixedLabel(key); ok {
		return v, true
	}
	if v, ok := t.InstanceType.Labels[key]; ok {
		return v, true
	}
	if v, ok := t.Chosen[key]; ok {
		return v, true
	}
	if v, ok := t.provLabels[key]; ok {
		return v, true
	}
	if key == v1.LabelOSStable {
		return string(v1.Linux), true
	}
	return "", false
}

// labelValue is label's value, "" if t's node has no such label.
func (t *Template) labelValue(key string) string {
	v, _ := t.label(key)
	return v
}

// nodeWith returns a node of t's name and taints with only those of its labels keys names:
// the node to ask whether a node selection that reads these keys only (nodeSelectionKeys)
// matches t's node, without building it.
func (t *Template) nodeWith(keys []string) *v1.Node {
	labels := make(map[string]string, len(keys))
	for _, k := range keys {
		if v, ok := t.label(k); ok {
			labels[k] = v
		}
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: t.name, Labels: labels}, Spec: v1.NodeSpec{Taints: t.taints}}
}

// matches reports whether t's node satisfies pod's nodeSelector and required node affinity
// (matchesNodeSelection), which read only the labels they name and the node's name.
func (t *Template) matches(pod *v1.Pod) bool {
	return matchesNodeSelection(pod, t.nodeWith(nodeSelectionKeys(&pod.Spec)))
}

// NewTemplate builds the template of instance type it in offering o for provisioner p, in
// region, named nodeName, with the chosen labels (may be nil, see Template.Chosen), and the
// pods of those of daemonSets that would run on it. Startup taints are left off: pods need
// not tolerate them (see ProvisionerSpec).
func NewTemplate(logger klog.Logger, p *v1alpha1.Provisioner, it *cloud.InstanceType, o cloud.Offering, region, nodeName string,
	chosen map[string]string, daemonSets []*appsv1.DaemonSet) *Template {
	return newTemplate(logger, p, it, o, region, nodeName, chosen, daemonSets, nil)
}

// templateParts are what the templates of one plan share rather than each build its own:
// the capacity and allocatable of each instance type, the DaemonSet pods of each node name,
// whether a DaemonSet runs on a node (by what the DaemonSet controller reads of the node),
// and each set of DaemonSet pods' sum of requests. A round builds thousands of templates
// (types times offerings), and their copies were most of a plan's memory and a sixth of its
// time. What is shared is never changed: a planned node is a copy (Template.renamed).
type templateParts struct {
	resources  map[*cloud.InstanceType][2]v1.ResourceList
	daemonPods map[string]*v1.Pod
	// runs caches daemon.NodeShouldRunDaemonPod by runKey; reads holds, by DaemonSet, the
	// node label keys its pods' node selection names.
	runs  map[string]bool
	reads map[*appsv1.DaemonSet][]string
	// daemons are the DaemonSet pods of a template with their sums, by their keys joined.
	daemons map[string]*daemonSet
	// provs are each Provisioner's labels and taints (Template.provLabels, taints).
	provs map[*v1alpha1.Provisioner]provisionerParts
	// templates counts the templates built (Template.idx).
	templates int32
}

// provisionerParts are a Provisioner's labels (ProvisionerSpec.NodeLabels) and its taints as
// a node carries them.
type provisionerParts struct {
	labels map[string]string
	taints []v1.Taint
}

// daemonSet is what a template keeps of its DaemonSet pods: the pods, their requests summed
// (and their number as pods), and whether one has inter-pod constraints or volumes (see
// Template.daemonAffinity).
type daemonSet struct {
	pods     []*v1.Pod
	requests v1.ResourceList
	affinity bool
}

func newTemplateParts() *templateParts {
	return &templateParts{resources: map[*cloud.InstanceType][2]v1.ResourceList{}, daemonPods: map[string]*v1.Pod{},
		runs: map[string]bool{}, reads: map[*appsv1.DaemonSet][]string{}, daemons: map[string]*daemonSet{},
		provs: map[*v1alpha1.Provisioner]provisionerParts{}}
}

// provisioner returns p's labels and taints, shared when parts is not nil.
func (parts *templateParts) provisioner(p *v1alpha1.Provisioner) provisionerParts {
	if parts != nil {
		if pp, ok := parts.provs[p]; ok {
			return pp
		}
	}
	pp := provisionerParts{labels: p.Spec.NodeLabels()}
	for _, t := range p.Spec.Taints {
		pp.taints = append(pp.taints, t.Core())
	}
	if parts != nil {
		parts.provs[p] = pp
	}
	return pp
}

// capacity returns it's capacity and allocatable, shared when parts is not nil.
func (parts *templateParts) capacity(it *cloud.InstanceType) (v1.ResourceList, v1.ResourceList) {
	if parts == nil {
		return it.Capacity.DeepCopy(), it.Allocatable()
	}
	r, ok := parts.resources[it]
	if !ok {
		r = [2]v1.ResourceList{it.Capacity.DeepCopy(), it.Allocatable()}
		parts.resources[it] = r
	}
	return r[0], r[1]
}

// shouldRun is daemon.NodeShouldRunDaemonPod on t's node, cached in parts (when not nil) by
// all it reads of the node: its name, taints and the values of the labels ds's node
// selection names (nodeSelector and required node affinity; its matchFields read the name),
// and asked of a node of these alone (Template.nodeWith).
func (parts *templateParts) shouldRun(logger klog.Logger, t *Template, ds *appsv1.DaemonSet) bool {
	if parts == nil {
		run, _ := daemon.NodeShouldRunDaemonPod(logger, t.nodeWith(nodeSelectionKeys(&ds.Spec.Template.Spec)), ds)
		return run
	}
	keys, ok := parts.reads[ds]
	if !ok {
		keys = nodeSelectionKeys(&ds.Spec.Template.Spec)
		parts.reads[ds] = keys
	}
	var b strings.Builder
	b.WriteString(string(ds.UID))
	b.WriteByte(0)
	b.WriteString(ds.Namespace + "/" + ds.Name)
	b.WriteByte(0)
	b.WriteString(t.name)
	for _, taint := range t.taints {
		b.WriteByte(0)
		b.WriteString(taint.Key + "=" + taint.Value + ":" + string(taint.Effect))
	}
	b.WriteByte(1)
	for _, k := range keys {
		b.WriteByte(0)
		if v, ok := t.label(k); ok {
			b.WriteString("=" + v)
		}
	}
	key := b.String()
	run, ok := parts.runs[key]
	if !ok {
		run, _ = daemon.NodeShouldRunDaemonPod(logger, t.nodeWith(keys), ds)
		parts.runs[key] = run
	}
	return run
}

// nodeSelectionKeys returns the node label keys spec's nodeSelector and required node
// affinity name, sorted.
func nodeSelectionKeys(spec *v1.PodSpec) []string {
	keys := slices.Collect(maps.Keys(spec.NodeSelector))
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, r := range term.MatchExpressions {
				keys = append(keys, r.Key)
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// daemonSet returns the daemonSet of pods, shared in parts (when not nil) by the pods' UIDs
// (a DaemonSet's UID and the node's name, see daemonPods).
func (parts *templateParts) daemonSet(pods []*v1.Pod) *daemonSet {
	var key string
	if parts != nil {
		var b strings.Builder
		for _, p := range pods {
			b.WriteString(string(p.UID))
			b.WriteByte(0)
		}
		key = b.String()
		if d, ok := parts.daemons[key]; ok {
			return d
		}
	}
	d := &daemonSet{pods: slices.Clip(pods),
		requests: v1.ResourceList{v1.ResourcePods: *resource.NewQuantity(int64(len(pods)), resource.DecimalSI)}}
	for _, dp := range pods {
		addTo(d.requests, podRequests(dp))
		// Its host ports are the same for every pod of a signature, which names its ports.
		d.affinity = d.affinity || selectsPods(dp) || len(dp.Spec.ResourceClaims) > 0 || slices.ContainsFunc(dp.Spec.Volumes, nodeVolume)
	}
	if parts != nil {
		parts.daemons[key] = d
	}
	return d
}

// newTemplate is NewTemplate with parts shared with the plan's other templates (nil: none).
func newTemplate(logger klog.Logger, p *v1alpha1.Provisioner, it *cloud.InstanceType, o cloud.Offering, region, nodeName string,
	chosen map[string]string, daemonSets []*appsv1.DaemonSet, parts *templateParts) *Template {
	t := &Template{
		Provisioner:  p,
		InstanceType: it,
		Offering:     o,
		Shape:        ShapeKey(p.Name, it.Name, o.Zone, o.CapacityType),
		group:        p.Name,
		name:         nodeName,
		region:       region,
	}
	t.Key = t.Shape
	if len(chosen) > 0 {
		t.Chosen = chosen
		t.Key += "/" + labels.FormatLabels(chosen)
		t.group += "/" + labels.FormatLabels(chosen)
	}
	t.capacity, t.allocatable = parts.capacity(it)
	pp := parts.provisioner(p)
	t.provLabels, t.taints = pp.labels, pp.taints
	d := parts.daemonSet(daemonPods(logger, t, daemonSets, parts))
	t.DaemonPods, t.DaemonRequests, t.daemonAffinity = d.pods, d.requests, d.affinity
	if parts != nil {
		parts.templates++
		t.idx = parts.templates
	}
	t.NodeCost = it.NodeCost + p.Spec.NodeCostUSDPerHour()
	t.excluded = excludedByDefault(t)
	t.named = t.excluded != "" && namesType(p.Spec.Requirements, t)
	alloc, daemons := millisOf(t.allocatable), millisOf(t.DaemonRequests)
	t.free = millis{cpu: alloc.cpu - daemons.cpu, memory: alloc.memory - daemons.memory, ephemeral: alloc.ephemeral - daemons.ephemeral,
		pods: alloc.pods - daemons.pods}
	return t
}

// ShapeKey names the offering a node is bought in for a Provisioner:
// provisioner/instanceType/zone/capacityType.
func ShapeKey(provisioner, instanceType, zone, capacityType string) string {
	return provisioner + "/" + instanceType + "/" + zone + "/" + capacityType
}

// Cost is what a node of t costs per hour: its offering's price and its NodeCost.
func (t *Template) Cost() float64 { return t.Offering.Price + t.NodeCost }

// CostWith is what a node of t costs per hour with pods requesting podCPU cores besides its
// DaemonSet pods: Cost, and for a burstable type the cores requested above its baseline at
// their surplus price (cloud.InstanceType.SurplusCost).
func (t *Template) CostWith(podCPU float64) float64 {
	return t.Cost() + t.InstanceType.SurplusCost(podCPU+cores(t.DaemonRequests))
}

// UserLabels returns the labels of t's node that are the user's (v1alpha1.IsUserLabel): its
// Provisioner's (ProvisionerSpec.NodeLabels) and the Chosen ones.
func (t *Template) UserLabels() map[string]string {
	labels := map[string]string{}
	for _, layer := range []map[string]string{t.provLabels, t.Chosen} {
		for k := range layer {
			if v1alpha1.IsUserLabel(k) {
				labels[k] = t.labelValue(k)
			}
		}
	}
	return labels
}

// daemonPods returns, sorted by name, a pod for every DaemonSet the DaemonSet controller
// would run on t's node, as the controller creates it: pinned to the node. A pod depends on
// its DaemonSet and the node's name only: parts, if not nil, shares it between templates.
func daemonPods(logger klog.Logger, t *Template, daemonSets []*appsv1.DaemonSet, parts *templateParts) []*v1.Pod {
	var pods []*v1.Pod
	for _, ds := range daemonSets {
		if !parts.shouldRun(logger, t, ds) {
			continue
		}
		key := string(ds.UID) + "/" + ds.Namespace + "/" + ds.Name + "/" + t.name
		if parts != nil {
			if pod, ok := parts.daemonPods[key]; ok {
				pods = append(pods, pod)
				continue
			}
		}
		spec := ds.Spec.Template.Spec.DeepCopy()
		spec.NodeName = t.name
		pods = append(pods, &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ds.Namespace,
				Name:      ds.Name + "-" + t.name,
				UID:       types.UID(string(ds.UID) + "-" + t.name),
				Labels:    ds.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID,
				}},
			},
			Spec: *spec,
		})
		if parts != nil {
			parts.daemonPods[key] = pods[len(pods)-1]
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

// renamed returns a copy of t whose node and DaemonSet pods are named name, for a planned node.
func (t *Template) renamed(name string) *Template { return t.renamedWith(name, renamedDaemonPod) }

// renamedWith is renamed with the DaemonSet pods named by rename(pod, name).
func (t *Template) renamedWith(name string, rename func(*v1.Pod, string) *v1.Pod) *Template {
	c := *t
	c.name = name
	c.node = c.buildNode()
	// The copy's node is its own: what its template shares with others stays unchanged.
	c.node.Spec.Taints = slices.Clone(c.node.Spec.Taints)
	c.node.Status.Capacity, c.node.Status.Allocatable = t.capacity.DeepCopy(), t.allocatable.DeepCopy()
	c.DaemonPods = make([]*v1.Pod, len(t.DaemonPods))
	for i, p := range t.DaemonPods {
		c.DaemonPods[i] = rename(p, name)
	}
	return &c
}

// renamedDaemonPod returns a copy of the DaemonSet pod p for the node named name.
func renamedDaemonPod(p *v1.Pod, name string) *v1.Pod {
	dp := p.DeepCopy()
	ds := p.OwnerReferences[0]
	dp.Name, dp.UID = ds.Name+"-"+name, types.UID(string(ds.UID)+"-"+name)
	dp.Spec.NodeName = name
	return dp
}

// StandIn is the stand-in of nc's node in a plan, named name: the labels of its requirements
// (zone, capacity type and those of the user's, see NodeClaimFor), its hostname and region,
// its taints, and no allocatable, so that nothing is planned onto it.
func StandIn(nc *v1alpha1.NodeClaim, name, region string) *v1.Node {
	labels := v1alpha1.RequirementLabels(nc.Spec.Requirements, nil)
	return readyNode(name, "nodeclaim-"+nc.Name, labels, nc.Spec.Provisioner, region, nc.Spec.Taints, nil, v1.ResourceList{})
}

// readyNode returns a Ready node named name with uid, labels, its hostname, Provisioner and
// region labels, taints, capacity and allocatable: a node of a plan, as it will register.
func readyNode(name, uid string, labels map[string]string, provisioner, region string, taints []v1alpha1.Taint,
	capacity, allocatable v1.ResourceList) *v1.Node {
	labels[v1.LabelHostname] = name
	labels[v1alpha1.LabelProvisionerName] = provisioner
	if region != "" {
		labels[v1.LabelTopologyRegion] = region
	}
	var coreTaints []v1.Taint
	for _, t := range taints {
		coreTaints = append(coreTaints, t.Core())
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, UID: types.UID(uid)},
		Spec:       v1.NodeSpec{Taints: coreTaints},
		Status: v1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable,
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
}
