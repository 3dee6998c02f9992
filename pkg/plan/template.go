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
	// Node is the node as it would register, named by a placeholder hostname.
	Node *v1.Node
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
	// templates counts the templates built (Template.idx).
	templates int32
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
		runs: map[string]bool{}, reads: map[*appsv1.DaemonSet][]string{}, daemons: map[string]*daemonSet{}}
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

// shouldRun is daemon.NodeShouldRunDaemonPod(node, ds), cached in parts (when not nil) by
// all it reads of the node: its name, taints and the values of the labels ds's node
// selection names (nodeSelector and required node affinity; its matchFields read the name).
func (parts *templateParts) shouldRun(logger klog.Logger, node *v1.Node, ds *appsv1.DaemonSet) bool {
	if parts == nil {
		run, _ := daemon.NodeShouldRunDaemonPod(logger, node, ds)
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
	b.WriteString(node.Name)
	for _, t := range node.Spec.Taints {
		b.WriteByte(0)
		b.WriteString(t.Key + "=" + t.Value + ":" + string(t.Effect))
	}
	b.WriteByte(1)
	for _, k := range keys {
		b.WriteByte(0)
		if v, ok := node.Labels[k]; ok {
			b.WriteString("=" + v)
		}
	}
	key := b.String()
	run, ok := parts.runs[key]
	if !ok {
		run, _ = daemon.NodeShouldRunDaemonPod(logger, node, ds)
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
	}
	t.Key = t.Shape
	if len(chosen) > 0 {
		t.Chosen = chosen
		t.Key += "/" + labels.FormatLabels(chosen)
		t.group += "/" + labels.FormatLabels(chosen)
	}
	capacity, allocatable := parts.capacity(it)
	t.Node = templateNode(p, it, o, region, nodeName, chosen, capacity, allocatable)
	d := parts.daemonSet(daemonPods(logger, t.Node, daemonSets, parts))
	t.DaemonPods, t.DaemonRequests, t.daemonAffinity = d.pods, d.requests, d.affinity
	if parts != nil {
		parts.templates++
		t.idx = parts.templates
	}
	t.NodeCost = it.NodeCost + p.Spec.NodeCostUSDPerHour()
	t.excluded = excludedByDefault(t)
	t.named = t.excluded != "" && namesType(p.Spec.Requirements, t)
	alloc, daemons := millisOf(allocatable), millisOf(t.DaemonRequests)
	t.free = millis{cpu: alloc.cpu - daemons.cpu, memory: alloc.memory - daemons.memory, ephemeral: alloc.ephemeral - daemons.ephemeral,
		pods: alloc.pods - daemons.pods}
	return t
}

// ShapeKey names the offering a node is bought in for a Provisioner:
// provisioner/instanceType/zone/capacityType.
func ShapeKey(provisioner, instanceType, zone, capacityType string) string {
	return provisioner + "/" + instanceType + "/" + zone + "/" + capacityType
}

// templateNode returns the Node a node of it in o for p, with the chosen labels, would
// register as: the labels of its instance type and offering, and those of the user's, p's and
// the chosen ones (its NodeClaim carries them, see NodeClaimFor), which are never
// well-known ones.
func templateNode(p *v1alpha1.Provisioner, it *cloud.InstanceType, o cloud.Offering, region, name string, chosen map[string]string,
	capacity, allocatable v1.ResourceList) *v1.Node {
	labels := p.Spec.NodeLabels()
	maps.Copy(labels, chosen)
	maps.Copy(labels, it.Labels)
	labels[v1.LabelInstanceTypeStable] = it.Name
	labels[v1.LabelTopologyZone] = o.Zone
	labels[v1alpha1.LabelCapacityType] = o.CapacityType
	if _, ok := labels[v1.LabelOSStable]; !ok {
		labels[v1.LabelOSStable] = string(v1.Linux)
	}
	return readyNode(name, "template-"+name, labels, p.Name, region, p.Spec.Taints, capacity, allocatable)
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
	labels := maps.Clone(t.Node.Labels)
	maps.DeleteFunc(labels, func(key, _ string) bool { return !v1alpha1.IsUserLabel(key) })
	return labels
}

// daemonPods returns, sorted by name, a pod for every DaemonSet the DaemonSet controller
// would run on node, as the controller creates it: pinned to the node. A pod depends on its
// DaemonSet and the node's name only: parts, if not nil, shares it between templates.
func daemonPods(logger klog.Logger, node *v1.Node, daemonSets []*appsv1.DaemonSet, parts *templateParts) []*v1.Pod {
	var pods []*v1.Pod
	for _, ds := range daemonSets {
		if !parts.shouldRun(logger, node, ds) {
			continue
		}
		key := string(ds.UID) + "/" + ds.Namespace + "/" + ds.Name + "/" + node.Name
		if parts != nil {
			if pod, ok := parts.daemonPods[key]; ok {
				pods = append(pods, pod)
				continue
			}
		}
		spec := ds.Spec.Template.Spec.DeepCopy()
		spec.NodeName = node.Name
		pods = append(pods, &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ds.Namespace,
				Name:      ds.Name + "-" + node.Name,
				UID:       types.UID(string(ds.UID) + "-" + node.Name),
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
	c.Node = t.Node.DeepCopy()
	c.Node.Name = name
	c.Node.UID = types.UID("template-" + name)
	c.Node.Labels[v1.LabelHostname] = name
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
