package plan

import (
	"regexp"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// DefaultArchitecture is the architecture of the nodes planned for a pod that selects none,
// unless its Provisioner's requirements name the architectures: images are built for amd64
// far more often than for arm64, and an amd64-only image crashes on an arm64 node, which no
// Filter plugin can see.
const DefaultArchitecture = "amd64"

// defaultsReject returns why t is not a node nodewright plans for pod by its defaults, which
// go beyond what the scheduler's filters decide, or "" if it is:
//   - a pod that selects no kubernetes.io/arch gets DefaultArchitecture nodes, unless t's
//     Provisioner names architectures in its requirements;
//   - a pod that requests no GPU or accelerator gets no node that has one (a GPU instance
//     costs far more per CPU than its price per offering suggests to the other pods).
func defaultsReject(t *Template, pod *v1.Pod, req v1.ResourceList) string {
	if arch := t.labelValue(v1.LabelArchStable); arch != DefaultArchitecture && !selectsLabel(pod, v1.LabelArchStable) &&
		!requiresLabel(t.Provisioner, v1.LabelArchStable) {
		return "pods that select no " + v1.LabelArchStable + " are planned onto " + DefaultArchitecture + " nodes"
	}
	if hasAccelerator(t) && !requestsAccelerator(req) {
		return "pods that request no GPU are not planned onto GPU nodes"
	}
	return ""
}

// NotForPlainPods returns why nodewright does not buy it by default for a pod that selects no
// architecture, requests no GPU or accelerator and names no instance type, under a
// Provisioner that names no architecture (see defaultsReject and excludedByDefault), or "":
// the offerings a bound on the fleet of such pods may count.
func NotForPlainPods(it *cloud.InstanceType) string {
	switch {
	case it.Labels[v1.LabelArchStable] != DefaultArchitecture:
		return "architecture " + it.Labels[v1.LabelArchStable]
	case acceleratorIn(it.Labels, it.Capacity):
		return "GPU or accelerator"
	}
	return excludedType(it.Labels)
}

// hasAccelerator reports whether t's instance type has a GPU or accelerator, counted or
// fractional (its GPU name label says so when the count is 0).
func hasAccelerator(t *Template) bool { return acceleratorIn(t.InstanceType.Labels, t.capacity) }

// acceleratorIn reports whether a node of labels and capacity has a GPU or accelerator: a GPU
// name label, or a count of one of cloud.AcceleratorResources.
func acceleratorIn(labels map[string]string, capacity v1.ResourceList) bool {
	return labels[v1alpha1.LabelInstanceGPUName] != "" || requestsAccelerator(capacity)
}

func requestsAccelerator(req v1.ResourceList) bool {
	for _, name := range cloud.AcceleratorResources {
		if q, ok := req[name]; ok && !q.IsZero() {
			return true
		}
	}
	return false
}

// selectsLabel reports whether pod's nodeSelector or required node affinity names key.
func selectsLabel(pod *v1.Pod, key string) bool {
	if _, ok := pod.Spec.NodeSelector[key]; ok {
		return true
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == key {
				return true
			}
		}
	}
	return false
}

// requiresLabel reports whether p's requirements name key.
func requiresLabel(p *v1alpha1.Provisioner, key string) bool {
	for _, r := range p.Spec.Requirements {
		if r.Key == key {
			return true
		}
	}
	return false
}

// Instance types nodewright does not buy for a pod unless asked, as careful operators leave
// them out of their Karpenter NodePools: they cost far more than their size suggests for
// ordinary pods, or serve a purpose of their own. A type is asked for when the Provisioner's
// requirements or the pod's node selection name it (an In on its instance type, family or
// size), and used anyway when nothing else would serve the pod (see packer.place). GPU and
// accelerator types follow defaultsReject's rule instead: they serve the pods that request
// their devices.
//
//	bare metal       sizes metal, metal-24xl, ...: a whole host, and minutes to boot
//	high memory      u-*, u7i-*, u7in-*, ... (SAP HANA machines, 3 to 32 TiB)
//	HPC              hpc*: sold for tightly coupled HPC jobs, on-demand only
//	Mac              mac*: dedicated hosts only
//	FPGA             f1, f2
//	accelerator      inf1, inf2 (Inferentia), trn1, trn2 (Trainium), dl1, dl2q, vt1: machine
//	                 learning and video accelerators, which the catalog gives no device
//	                 count for
//
// excludedByDefault returns which of these t is, or "".
func excludedByDefault(t *Template) string {
	return excludedType(t.InstanceType.Labels)
}

// excludedType returns which of the types excluded by default a type of labels is, or "".
func excludedType(labels map[string]string) string {
	family, size := labels[v1alpha1.LabelInstanceFamily], labels[v1alpha1.LabelInstanceSize]
	switch {
	case strings.HasPrefix(size, "metal"):
		return "bare metal"
	case strings.HasPrefix(family, "u-") || highMemory.MatchString(family):
		return "high memory"
	case strings.HasPrefix(family, "hpc"):
		return "HPC"
	case strings.HasPrefix(family, "mac"):
		return "Mac"
	case fpga.MatchString(family):
		return "FPGA"
	case accelerator.MatchString(family):
		return "accelerator"
	}
	return ""
}

var (
	// highMemory matches the families of EC2's High Memory instances after u-*: u7i-12tb,
	// u7in-16tb, u7inh-32tb...
	highMemory = regexp.MustCompile(`^u\d+[a-z]*-\d+tb$`)
	// fpga matches the FPGA families: f1, f2.
	fpga = regexp.MustCompile(`^f\d+$`)
	// accelerator matches the families of AWS's and others' accelerators: inf1, inf2,
	// trn1, trn1n, trn2, dl1, dl2q, vt1.
	accelerator = regexp.MustCompile(`^(inf|trn|dl|vt)\d`)
)

// namesType reports whether reqs, a Provisioner's requirements or a term of a pod's node
// selection, ask for t by name: an In requirement on its instance type, family or size that
// lists its value.
func namesType(reqs []v1alpha1.NodeSelectorRequirement, t *Template) bool {
	for _, r := range reqs {
		switch r.Key {
		case v1.LabelInstanceTypeStable, v1alpha1.LabelInstanceFamily, v1alpha1.LabelInstanceSize:
			if r.Operator == v1.NodeSelectorOpIn && slices.Contains(r.Values, t.labelValue(r.Key)) {
				return true
			}
		}
	}
	return false
}

// excludedFor returns why the packer does not buy t for f's pod by default (see
// excludedByDefault), or "": t is not such a type, its Provisioner or the pod names it, or
// nothing else serves the pod (f.anyType).
func (p *packer) excludedFor(t *Template, f *podFacts) string {
	if t.excluded == "" || t.named || f.anyType {
		return ""
	}
	key := labelsKey{f.selID, t}
	named, ok := p.podNames[key]
	if !ok {
		named = slices.ContainsFunc(nodeSelectionTerms(f.pod), func(term []v1alpha1.NodeSelectorRequirement) bool { return namesType(term, t) })
		p.podNames[key] = named
	}
	if named {
		return ""
	}
	return t.excluded + " types are bought only when asked for, or when nothing else serves the pod"
}
