package plan

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// fitsResources returns "" if requests fit in allocatable minus used, else the first
// resource that does not, as `cpu request 200 > allocatable 191.4`.
func fitsResources(requests, used, allocatable v1.ResourceList) string {
	for _, name := range sortedNames(requests) {
		req := requests[name]
		if req.IsZero() {
			continue
		}
		free := allocatable[name].DeepCopy()
		if u, ok := used[name]; ok {
			free.Sub(u)
		}
		if req.Cmp(free) > 0 {
			return fmt.Sprintf("%s request %s > allocatable %s", name, quantityString(name, req), quantityString(name, free))
		}
	}
	return ""
}

// matchesNodeSelection reports whether node satisfies pod's nodeSelector and required node
// affinity.
func matchesNodeSelection(pod *v1.Pod, node *v1.Node) bool {
	ok, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)
	return err == nil && ok
}

// prescreen returns "" if t can hold pod next to podReqs, by arithmetic and labels: what
// must hold before the Filter plugins are worth running.
func prescreen(t *Template, pod *v1.Pod, req, podReqs v1.ResourceList) string {
	if reason := labelsReject(t, pod, req); reason != "" {
		return reason
	}
	return fitsResources(req, sum(podReqs, t.DaemonRequests), t.allocatable)
}

// labelsReject is the part of prescreen that depends on pod's spec and t alone.
func labelsReject(t *Template, pod *v1.Pod, req v1.ResourceList) string {
	if !t.matches(pod) {
		return "node selector or affinity not matched"
	}
	return defaultsReject(t, pod, req)
}

// passes reports whether f's pod passes prescreen on t next to the pods of n (nil: none),
// with labelsReject
// cached by pod signature and template, and the shapes the pod must avoid (Input.Avoid)
// left out. It is the packer's hot path: it says no reason and allocates nothing.
func (p *packer) passes(t *Template, f *podFacts, n *openNode) bool {
	if p.in.Avoid[f.pod.UID].Has(t.Shape) {
		return false
	}
	if !p.labelsPass(t, f) {
		return false
	}
	var podReqs v1.ResourceList
	var used millis
	if n != nil {
		podReqs, used = n.podReqs, n.used
	}
	if f.millis.other {
		return hasRoom(f.req, podReqs, t.DaemonRequests, t.allocatable)
	}
	return f.millis.fitsIn(t.free, used)
}

// hasRoom reports whether allocatable holds requests next to used and daemons, as
// fitsResources does, in millis of each resource.
func hasRoom(requests, used, daemons, allocatable v1.ResourceList) bool {
	for name, req := range requests {
		if req.IsZero() {
			continue
		}
		have, u, d := allocatable[name], used[name], daemons[name]
		if req.MilliValue() > have.MilliValue()-u.MilliValue()-d.MilliValue() {
			return false
		}
	}
	return true
}

// labelVerdict is what labelsReject says of a node selection on a template: whether it
// was asked (labelChecked), and whether the template's node matches the selection
// (labelMatches) and passes labelsReject (labelPasses).
type labelVerdict uint8

const (
	labelChecked labelVerdict = 1 << iota
	labelMatches
	labelPasses
)

// labelsPass reports whether labelsReject(t, f's pod) is "" (see selectionVerdict).
func (p *packer) labelsPass(t *Template, f *podFacts) bool {
	return p.selectionVerdict(t, f)&labelPasses != 0
}

// selects reports whether t's node matches f's pod's node selection (see selectionVerdict).
func (p *packer) selects(t *Template, f *podFacts) bool {
	return p.selectionVerdict(t, f)&labelMatches != 0
}

// selectionVerdict returns the labelVerdict of f's pod on t, cached by f's node selection
// (podFacts.selID) and Template.idx. A plan's templates all have one (templateParts); one
// built alone is checked every time.
func (p *packer) selectionVerdict(t *Template, f *podFacts) labelVerdict {
	if t.idx == 0 {
		return checkLabels(t, f)
	}
	for int(f.selID) >= len(p.labelVerdicts) {
		p.labelVerdicts = append(p.labelVerdicts, nil)
	}
	row := p.labelVerdicts[f.selID]
	if int(t.idx) >= len(row) {
		row = append(row, make([]labelVerdict, int(p.parts.templates)+1-len(row))...)
		p.labelVerdicts[f.selID] = row
	}
	if row[t.idx] == 0 {
		row[t.idx] = checkLabels(t, f)
	}
	return row[t.idx]
}

// checkLabels returns the labelVerdict of f's pod on t, as labelsReject decides.
func checkLabels(t *Template, f *podFacts) labelVerdict {
	v := labelChecked
	if t.matches(f.pod) {
		v |= labelMatches
		if defaultsReject(t, f.pod, f.req) == "" {
			v |= labelPasses
		}
	}
	return v
}

// labelsKey keys the cache of excludedFor's podNames: a node selection and a template.
type labelsKey struct {
	sel int32 // podFacts.selID
	t   *Template
}

// withinLimits reports whether a node of t fits the Provisioner's limits, with release (the
// capacity of what t would replace) given back.
func (p *packer) withinLimits(t *Template, release v1.ResourceList) bool {
	if len(t.Provisioner.Spec.Limits) == 0 {
		return true
	}
	used := sum(p.used[t.Provisioner.Name])
	for name, q := range release {
		u := used[name]
		u.Sub(q)
		used[name] = u
	}
	return exceeds(t.Provisioner.Spec.Limits, used, t.InstanceType.Capacity) == ""
}
