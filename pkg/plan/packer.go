package plan

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// openNode is a node being packed. Its candidates all share one Provisioner, zone and
// capacity type; candidates[0] is the representative that stands for the node in the
// snapshot and has been checked with the Filter plugins against every pod on it.
type openNode struct {
	name       string
	candidates []*Template
	pods       []*v1.Pod
	podReqs    v1.ResourceList
	// used is millisOf(podReqs), kept by request.
	used millis
	// independent is true while every pod on the node is independent (see
	// Simulator.independent), so that prescreening its candidates is exact.
	independent bool
	// invariant is true while every pod on the node is invariantOnly.
	invariant bool
	// stale is true when the snapshot holds the node as another candidate than
	// candidates[0] (see packer.flushNode).
	stale bool
	// maxPrice is the typeCost of the largest candidate the node may grow to (see
	// packer.maxPrice); candidates holds none more than MaxOptionCostFactor times dearer. 0
	// for a node that does not grow.
	maxPrice float64
	// room caches what the node has left (see roomFor).
	room nodeRoom
	// askedFor, askedAt and rejected remember rejectedAsItStands's last answer: for which pod,
	// at which generation of the snapshot.
	askedFor *v1.Pod
	askedAt  uint64
	rejected bool
	// apart holds the apartKey of its pods that have one.
	apart sets.Set[string]
	// claim is, for a launched node (see Input.Launched), its NodeClaim: its one
	// candidate is its instance type, and pods holds only the pods planned there now.
	claim string
}

// packer is the state of one Plan call.
type packer struct {
	in     Input
	logger klog.Logger
	sim    *Simulator
	provs  []*v1alpha1.Provisioner
	// templates are, cheapest first, by Provisioner name, each Provisioner's templates, and
	// by group (see groupOf) those with labels chosen for the keys it leaves open.
	templates map[string][]*Template
	// parts are what the templates share (newTemplateParts), set by buildTemplates.
	parts *templateParts
	// openLabels are the open keys of each Provisioner that has some (see openKeys), and
	// forPod the result of templatesFor by Provisioner and pod signature.
	openLabels map[string]map[string][]v1alpha1.NodeSelectorRequirement
	forPod     map[string][]*Template
	used       map[string]v1.ResourceList
	nodes      []*openNode
	launched   []*openNode
	existing   []*openNode
	unplanned  []*Unplanned
	phantoms   []string
	// sigs, reqs and invariants cache PodSignature, podRequests and invariantOnly by pod;
	// sigIDs number the signatures, selIDs the node selections (selectionKey), selOf is the
	// selection of each signature.
	sigs       map[*v1.Pod]string
	sigIDs     map[string]int32
	selIDs     map[string]int32
	selOf      []int32
	reqs       map[*v1.Pod]v1.ResourceList
	invariants map[*v1.Pod]bool
	// labelVerdicts are selectionVerdict's verdicts by node selection and Template.idx.
	labelVerdicts [][]labelVerdict
	// hasExcluded is true when a template is of a type excluded by default; anyTypes are the
	// pods nothing else serves (see excludedFor).
	hasExcluded bool
	anyTypes    map[*v1.Pod]bool
	// podNames caches whether a pod's node selection names a template (see excludedFor), by node
	// selection and template.
	podNames map[labelsKey]bool
	// ignored are the resources the profile's NodeResourcesFit ignores (nil: none).
	ignored func(v1.ResourceName) bool
	// prefs caches prefers by pod.
	prefs map[*v1.Pod]bool
	// queue is the pods still to be placed; prices the shadow prices of each Provisioner
	// that has them (see shadowPrices); fillInfos caches fillInfo.
	queue     *queue
	prices    map[string][3]float64
	fillInfos map[*Template]*fillInfo
	scratch   objectiveScratch
	// growing is false while place tries the planned nodes as they stand, true while it
	// tries them grown to larger candidates.
	growing bool
	// uncapped is true while nodes may grow past their maxPrice (see tryAddUncapped).
	uncapped bool
	// typeCosts caches typeCost by group and instance type.
	typeCosts map[string]map[string]float64
	// inOffering caches sameOffering by group, zone and capacity type.
	inOffering map[offeringOf][]*Template
	// domainOnlys caches domainOnly by pod; domainVerdicts holds rejectedAsItStands's answers
	// by domain.
	domainOnlys    map[*v1.Pod]bool
	domainVerdicts domainVerdicts
	// aparts caches apartKey by pod.
	aparts map[*v1.Pod]string
}

// request adds req, what a pod placed on n requests, to what n's pods request.
func (n *openNode) request(req v1.ResourceList) {
	addTo(n.podReqs, req)
	n.used = millisOf(n.podReqs)
}

// addApart notes the apartKey of f's pod, placed on n.
func (n *openNode) addApart(f *podFacts) {
	if f.apart == "" {
		return
	}
	if n.apart == nil {
		n.apart = sets.New[string]()
	}
	n.apart.Insert(f.apart)
}
