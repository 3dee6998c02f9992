package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	schedutil "k8s.io/kubernetes/pkg/scheduler/util"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// The facts of a pod the planner reads from its spec alone: its signature, its requests, what
// makes its fit depend on other pods (constrained, invariantOnly) and the pods its
// constraints select (Terms). See doc.go for how they combine with the cluster's pods.

// podFacts are the facts of a pod being placed, computed once per pod by packer.facts.
type podFacts struct {
	pod *v1.Pod
	// sig is PodSignature(pod), sigID the number the packer gave it, selID the number of its
	// node selection (packer.selID); req its requests and one pod (see packer.requests).
	sig   string
	sigID int32
	selID int32
	req   v1.ResourceList
	// independent is Simulator.independent(pod) when the pod is placed; invariant is
	// invariantOnly(pod), domainOnly domainOnly(pod).
	independent, invariant, domainOnly bool
	// apart is apartKey(pod).
	apart string
	// anyType is true when no type but those excluded by default serves the pod: they are
	// bought for it then (see excludedFor).
	anyType bool
	// milliCPU and memory are the cpu (millicores) and memory (bytes) of req, for roomFor;
	// millis are millisOf(req), for passes.
	milliCPU, memory int64
	millis           millis
}

// filterVolumes returns the pod's volumes that a Filter plugin can look at: all but the
// kinds every node serves alike. Pods of one Deployment differ in the name of the service
// account token volume the apiserver adds to each; leaving such volumes out keeps the pods
// alike for the caches (PodSignature, snapshot.class).
func filterVolumes(pod *v1.Pod) []v1.Volume {
	var out []v1.Volume
	for _, v := range pod.Spec.Volumes {
		if v.Projected != nil || v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.EmptyDir != nil {
			continue
		}
		out = append(out, v)
	}
	return out
}

// PodSignature identifies pods that the Filter plugins cannot tell apart on an empty
// template: same requests, ports, node selection, tolerations and volumes (filterVolumes).
func PodSignature(pod *v1.Pod) string {
	type container struct {
		Resources v1.ResourceRequirements
		Ports     []v1.ContainerPort
		Restart   *v1.ContainerRestartPolicy
	}
	sig := struct {
		NodeSelector map[string]string
		Affinity     *v1.Affinity
		Tolerations  []v1.Toleration
		Containers   []container
		Init         []container
		Overhead     v1.ResourceList
		Volumes      []v1.Volume
		Resources    *v1.ResourceRequirements
		NodeName     string
		OS           *v1.PodOS
	}{pod.Spec.NodeSelector, pod.Spec.Affinity, pod.Spec.Tolerations, nil, nil, pod.Spec.Overhead,
		filterVolumes(pod), pod.Spec.Resources, pod.Spec.NodeName, pod.Spec.OS}
	for _, c := range pod.Spec.Containers {
		sig.Containers = append(sig.Containers, container{c.Resources, c.Ports, c.RestartPolicy})
	}
	for _, c := range pod.Spec.InitContainers {
		sig.Init = append(sig.Init, container{c.Resources, c.Ports, c.RestartPolicy})
	}
	b, _ := json.Marshal(sig)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// podRequests returns the pod's effective requests, with overhead, as the scheduler counts
// them.
func podRequests(pod *v1.Pod) v1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
}

// onePod is the pod count of one pod.
var onePod = v1.ResourceList{v1.ResourcePods: resource.MustParse("1")}

// constrained reports whether pod's fit can depend on other pods by its own spec, under one
// of the podToPod plugins of filterInteractions: inter-pod (anti-)affinity or topology spread
// (selectsPods), host ports, volumes that conflict or count per node, or resource claims
// (sharesNode).
func constrained(pod *v1.Pod) bool {
	return selectsPods(pod) || sharesNode(pod)
}

// selectsPods reports whether pod has inter-pod (anti-)affinity or topology spread
// constraints: whether it fits depends on the labels of the pods around it.
func selectsPods(pod *v1.Pod) bool {
	if a := pod.Spec.Affinity; a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil) {
		return true
	}
	return len(pod.Spec.TopologySpreadConstraints) > 0
}

// sharesNode reports whether pod uses something of a node that other pods may use too and
// that a Filter plugin checks: a host port (NodePorts), a volume that conflicts, is counted
// or bound per node (VolumeRestrictions, NodeVolumeLimits, VolumeBinding, VolumeZone), or a
// resource claim (DynamicResources).
func sharesNode(pod *v1.Pod) bool {
	if len(pod.Spec.ResourceClaims) > 0 || len(schedutil.GetHostPorts(pod)) > 0 {
		return true
	}
	return slices.ContainsFunc(pod.Spec.Volumes, nodeVolume)
}

// nodeVolume reports whether v is a volume a Filter plugin weighs against the node's other
// pods: claims and generic ephemeral volumes (bound, counted, ReadWriteOncePod), the inline
// disks VolumeRestrictions compares, and inline volumes that NodeVolumeLimits counts once
// migrated to CSI.
func nodeVolume(v v1.Volume) bool {
	s := v.VolumeSource
	return s.PersistentVolumeClaim != nil || s.Ephemeral != nil ||
		s.GCEPersistentDisk != nil || s.AWSElasticBlockStore != nil || s.ISCSI != nil || s.RBD != nil ||
		s.AzureDisk != nil || s.AzureFile != nil || s.Cinder != nil || s.VsphereVolume != nil ||
		s.PortworxVolume != nil
}

// invariantKeys are the node labels every candidate of an open node shares: they share a
// Provisioner, a zone and a capacity type, and the node its hostname.
var invariantKeys = map[string]bool{
	v1.LabelHostname: true, v1.LabelTopologyZone: true, v1.LabelTopologyRegion: true,
	v1alpha1.LabelCapacityType: true, v1alpha1.LabelProvisionerName: true,
}

// domainKeys are the invariantKeys that many nodes share: those of a Provisioner, zone and
// capacity type (see nodeDomain).
var domainKeys = map[string]bool{
	v1.LabelTopologyZone: true, v1.LabelTopologyRegion: true, v1alpha1.LabelCapacityType: true, v1alpha1.LabelProvisionerName: true,
}

// domainOnly reports whether every topology pod's inter-pod constraints name, soft ones too,
// is one of domainKeys.
func domainOnly(pod *v1.Pod) bool {
	for _, t := range TermsOf(pod) {
		if !domainKeys[t.TopologyKey] {
			return false
		}
	}
	return true
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

// perPod returns f(pod), computed once per pod and kept in cache.
func perPod[V any](cache map[*v1.Pod]V, pod *v1.Pod, f func(*v1.Pod) V) V {
	v, ok := cache[pod]
	if !ok {
		v = f(pod)
		cache[pod] = v
	}
	return v
}

// Term is a term of a pod's required inter-pod (anti-)affinity or topology spread
// constraints, as a selector of other pods; anti marks the required anti-affinity terms,
// spread the hard topology spread constraints (whenUnsatisfiable DoNotSchedule).
type Term struct {
	fwk.AffinityTerm
	anti, spread bool
}

// Terms are the terms of one pod.
type Terms []Term

// TermsOf returns the terms of pod's required inter-pod (anti-)affinity and topology spread
// constraints. Like NodeInfo.AddPod, it ignores terms the apiserver let through unparsed.
func TermsOf(pod *v1.Pod) Terms {
	info, _ := framework.NewPodInfo(pod)
	return newTerms(pod, info)
}

// newTerms returns the terms of pod, whose required (anti-)affinity terms info holds parsed
// (nil: none). A spread constraint's matchLabelKeys only narrows its selector: leaving them
// out selects more pods, which errs on the safe side.
func newTerms(pod *v1.Pod, info *framework.PodInfo) Terms {
	var out Terms
	if info != nil {
		for _, t := range info.RequiredAffinityTerms {
			out = append(out, Term{AffinityTerm: t})
		}
		for _, t := range info.RequiredAntiAffinityTerms {
			out = append(out, Term{AffinityTerm: t, anti: true})
		}
	}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		out = append(out, spreadTerm(pod, c))
	}
	return out
}

// spreadTerm returns c, a topology spread constraint of pod, as the term of the pods its
// label selector selects.
func spreadTerm(pod *v1.Pod, c v1.TopologySpreadConstraint) Term {
	sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
	if err != nil {
		sel = labels.Everything()
	}
	return Term{AffinityTerm: fwk.AffinityTerm{Namespaces: sets.New(pod.Namespace), Selector: sel,
		TopologyKey: c.TopologyKey, NamespaceSelector: labels.Nothing()}, spread: c.WhenUnsatisfiable == v1.DoNotSchedule}
}

// anyNamespace reports whether t selects namespaces by label, or all of them: with no
// namespaces at hand, that counts as any namespace.
func (t Term) anyNamespace() bool {
	if t.NamespaceSelector == nil {
		return false
	}
	_, selectable := t.NamespaceSelector.Requirements()
	return selectable
}

// perNode reports whether t is a required anti-affinity term that keeps the pods it selects
// off nodes one by one, not off a domain many nodes share (domainKeys).
func (t Term) perNode() bool { return t.anti && !domainKeys[t.TopologyKey] }

// Selects reports whether t selects other, by namespace and labels.
func (t Term) Selects(other *v1.Pod) bool {
	return (t.anyNamespace() || t.Namespaces.Has(other.Namespace)) && t.Selector != nil && t.Selector.Matches(labels.Set(other.Labels))
}

// key identifies what t selects, and whether it is an anti-affinity term or a hard spread
// constraint.
func (t Term) key() string {
	ns := "*"
	if !t.anyNamespace() {
		ns = strings.Join(sets.List(t.Namespaces), ",")
	}
	kind := "with"
	switch {
	case t.anti:
		kind = "anti"
	case t.spread:
		kind = "spread"
	}
	if t.perNode() {
		kind += "|node"
	}
	return kind + "|" + ns + "|" + t.Selector.String()
}

// Selects reports whether one of the terms selects other.
func (ts Terms) Selects(other *v1.Pod) bool {
	return slices.ContainsFunc(ts, func(t Term) bool { return t.Selects(other) })
}

// sumRequests returns the sum of the requests of pods.
func sumRequests(pods []*v1.Pod) v1.ResourceList {
	out := v1.ResourceList{}
	for _, pod := range pods {
		addTo(out, podRequests(pod))
	}
	return out
}

// invariant returns invariantOnly(pod), computed once per pod.
func (p *packer) invariant(pod *v1.Pod) bool { return perPod(p.invariants, pod, invariantOnly) }

// sigID returns the number of signature sig, the same for every pod of it within a plan.
func (p *packer) sigID(sig string) int32 {
	id, ok := p.sigIDs[sig]
	if !ok {
		id = int32(len(p.sigIDs))
		p.sigIDs[sig] = id
	}
	return id
}

// selID returns the number of the node selection of the pods of signature sigID, pod's
// (selectionKey): the same for all pods whose labelsReject and excludedFor agree on every
// template, as they read no more of a pod. Pods of many signatures (their requests, labels
// and inter-pod terms apart) share one, and with it those checks' cache.
func (p *packer) selID(sigID int32, pod *v1.Pod, req v1.ResourceList) int32 {
	for int(sigID) >= len(p.selOf) {
		p.selOf = append(p.selOf, -1)
	}
	if id := p.selOf[sigID]; id >= 0 {
		return id
	}
	key := selectionKey(pod, req)
	id, ok := p.selIDs[key]
	if !ok {
		id = int32(len(p.selIDs))
		p.selIDs[key] = id
	}
	p.selOf[sigID] = id
	return id
}

// selectionKey is what labelsReject and excludedFor read of a pod: its node selector and
// required node affinity (matchesNodeSelection, selectsLabel, nodeSelectionTerms), and
// whether it requests an accelerator (defaultsReject).
func selectionKey(pod *v1.Pod, req v1.ResourceList) string {
	var required *v1.NodeSelector
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		required = a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	b, _ := json.Marshal(struct {
		NodeSelector map[string]string
		Required     *v1.NodeSelector
		Accelerator  bool
	}{pod.Spec.NodeSelector, required, requestsAccelerator(req)})
	return string(b)
}

// signature returns PodSignature(pod), computed once per pod.
func (p *packer) signature(pod *v1.Pod) string { return perPod(p.sigs, pod, PodSignature) }

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
