package plan

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// A Provisioner's nodes carry labels of the user's (v1alpha1.IsUserLabel) that their
// instance type does not decide. Some are fixed: the Provisioner's labels and its
// single-valued In requirements (ProvisionerSpec.NodeLabels), on every template. The others
// are open: a requirement such as `team In [a, b]`, `team Exists` or `team NotIn [c]` lets
// each node have its own value, or none. The plan chooses it when it opens a node, to satisfy
// the Provisioner and the pod the node is opened for (chosenLabels); the node's templates
// carry it (Template.Chosen), so that the pods planned next judge it as they will judge the
// node, and its NodeClaim carries it as a single-valued In requirement (NodeClaimFor), which
// the launch and the registration put on the Node.

// openKeys returns, by key, the Provisioner's requirements on keys of the user's whose label
// they leave open: those that neither its labels nor a single-valued In requirement fix. It
// returns nil when there are none, as for most Provisioners.
func openKeys(prov *v1alpha1.Provisioner) map[string][]v1alpha1.NodeSelectorRequirement {
	var open map[string][]v1alpha1.NodeSelectorRequirement
	fixed := prov.Spec.NodeLabels()
	for _, r := range prov.Spec.Requirements {
		if _, ok := fixed[r.Key]; ok || !v1alpha1.IsUserLabel(r.Key) {
			continue
		}
		if open == nil {
			open = map[string][]v1alpha1.NodeSelectorRequirement{}
		}
		open[r.Key] = append(open[r.Key], r)
	}
	return open
}

// chosenLabels returns the labels a node of a Provisioner whose open keys are open may get so
// that pod can go on it: for each term of the pod's node selection (nodeSelectionTerms), a
// value of each open key that satisfies the Provisioner's requirements and the term
// (chooseLabel); terms no value satisfies are left out, and so are duplicates. An empty map
// stands for a node without any of the labels.
func chosenLabels(open map[string][]v1alpha1.NodeSelectorRequirement, pod *v1.Pod) []map[string]string {
	keys := slices.Sorted(maps.Keys(open))
	var out []map[string]string
	seen := map[string]bool{}
	for _, term := range nodeSelectionTerms(pod) {
		chosen := map[string]string{}
		for _, key := range keys {
			value, has, ok := chooseLabel(key, open[key], term)
			if !ok {
				chosen = nil
				break
			}
			if has {
				chosen[key] = value
			}
		}
		if chosen == nil {
			continue
		}
		if s := labels.FormatLabels(chosen); !seen[s] {
			seen[s] = true
			out = append(out, chosen)
		}
	}
	return out
}

// chooseLabel returns the value of the node label key that satisfies reqs, the Provisioner's
// requirements on key, and the requirements of term, a pod's node selection term, on it: the
// first value an In requirement lists, the term's before the Provisioner's, that satisfies
// them all; else, when none lists values (Exists, Gt, Lt), the smallest integer that does,
// from 0 or above the Gt bound. has is false when none of them needs the label: the node goes
// without it. ok is false when no value satisfies them.
func chooseLabel(key string, reqs []v1alpha1.NodeSelectorRequirement, term []v1alpha1.NodeSelectorRequirement) (value string, has, ok bool) {
	var all []v1alpha1.NodeSelectorRequirement
	for _, r := range term {
		if r.Key == key {
			all = append(all, r)
		}
	}
	all = append(all, reqs...)
	satisfied := func(value string, has bool) bool {
		for _, r := range all {
			if !r.Matches(value, has) {
				return false
			}
		}
		return true
	}
	needed, listed := false, false
	lower, excluded := int64(0), 0
	for _, r := range all {
		switch r.Operator {
		case v1.NodeSelectorOpIn:
			needed, listed = true, true
			for _, v := range r.Values {
				if satisfied(v, true) {
					return v, true, true
				}
			}
		case v1.NodeSelectorOpExists, v1.NodeSelectorOpLt:
			needed = true
		case v1.NodeSelectorOpGt:
			needed = true
			if len(r.Values) != 1 {
				break
			}
			if bound, err := strconv.ParseInt(r.Values[0], 10, 64); err == nil && bound < math.MaxInt64 && bound+1 > lower {
				lower = bound + 1
			}
		case v1.NodeSelectorOpNotIn:
			excluded += len(r.Values)
		}
	}
	if !needed {
		return "", false, satisfied("", false)
	}
	if listed {
		return "", false, false
	}
	// Of any excluded+1 integers from lower, one at least is not excluded.
	for i := range int64(excluded) + 1 {
		if v := strconv.FormatInt(lower+i, 10); satisfied(v, true) {
			return v, true, true
		}
	}
	return "", false, false
}

// nodeSelectionTerms returns the pod's required node selection as terms, any of which a node
// must satisfy: each term of its required node affinity with its nodeSelector as In
// requirements, or the nodeSelector alone. Match fields are left out: they select nodes by
// name, not by label. A required node affinity without terms selects no node, and gives none.
func nodeSelectionTerms(pod *v1.Pod) [][]v1alpha1.NodeSelectorRequirement {
	var selector []v1alpha1.NodeSelectorRequirement
	for _, key := range slices.Sorted(maps.Keys(pod.Spec.NodeSelector)) {
		selector = append(selector, v1alpha1.NodeSelectorRequirement{Key: key, Operator: v1.NodeSelectorOpIn, Values: []string{pod.Spec.NodeSelector[key]}})
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return [][]v1alpha1.NodeSelectorRequirement{selector}
	}
	var terms [][]v1alpha1.NodeSelectorRequirement
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		term := slices.Clone(selector)
		for _, e := range t.MatchExpressions {
			term = append(term, v1alpha1.NodeSelectorRequirement{Key: e.Key, Operator: e.Operator, Values: e.Values})
		}
		terms = append(terms, term)
	}
	return terms
}

// groupOf names the templates of the Provisioner named prov with the chosen labels: the
// Provisioner's name, then the labels if any.
func groupOf(prov string, chosen map[string]string) string {
	if len(chosen) == 0 {
		return prov
	}
	return prov + "/" + labels.FormatLabels(chosen)
}

// templatesFor returns the templates of prov that a node opened for pod may be, cheapest
// first: prov's templates, with the labels chosen for pod (chosenLabels) when prov leaves
// some open. There are none when pod's node selection excludes every value prov allows one
// of them.
func (p *packer) templatesFor(prov *v1alpha1.Provisioner, pod *v1.Pod, sig string) []*Template {
	open := p.openLabels[prov.Name]
	if open == nil {
		return p.templates[prov.Name]
	}
	// The signature covers the pod's node selection.
	key := prov.Name + "|" + sig
	if ts, ok := p.forPod[key]; ok {
		return ts
	}
	var ts []*Template
	choices := chosenLabels(open, pod)
	for _, chosen := range choices {
		ts = append(ts, p.variant(prov, chosen)...)
	}
	if len(choices) > 1 {
		sortCheapestFirst(ts)
	}
	p.forPod[key] = ts
	return ts
}

// variant returns prov's templates with the chosen labels, built on first use, in the order
// of prov's templates.
func (p *packer) variant(prov *v1alpha1.Provisioner, chosen map[string]string) []*Template {
	group := groupOf(prov.Name, chosen)
	if ts, ok := p.templates[group]; ok {
		return ts
	}
	var ts []*Template
	for _, t := range p.templates[prov.Name] {
		ts = append(ts, newTemplate(p.logger, prov, t.InstanceType, t.Offering, p.in.Region, templateNodeName, chosen, p.in.DaemonSets, p.parts))
	}
	p.templates[group] = ts
	return ts
}

// templateGroups returns prov's templates by the labels chosen for them: its templates alone
// if it leaves no label open, else those with the labels chosen for the pending pods.
func (p *packer) templateGroups(prov *v1alpha1.Provisioner) [][]*Template {
	open := p.openLabels[prov.Name]
	if open == nil {
		return [][]*Template{p.templates[prov.Name]}
	}
	var groups [][]*Template
	seen := map[string]bool{}
	for _, pod := range p.in.Pods {
		for _, chosen := range chosenLabels(open, pod) {
			if group := groupOf(prov.Name, chosen); !seen[group] {
				seen[group] = true
				groups = append(groups, p.variant(prov, chosen))
			}
		}
	}
	return groups
}

// labelConflict returns which of prov's labels, fixed or open, pod's node selection excludes,
// as "label k=v" or "requirement k In [a b]", or "" if none does in every term of it.
func labelConflict(prov *v1alpha1.Provisioner, pod *v1.Pod) string {
	fixed, open := prov.Spec.NodeLabels(), openKeys(prov)
	terms := nodeSelectionTerms(pod)
	var first string
	for i, term := range terms {
		conflict := ""
		for _, r := range term {
			if value, ok := fixed[r.Key]; ok && !r.Matches(value, true) {
				conflict = fmt.Sprintf("label %s=%s", r.Key, value)
				break
			}
			if reqs, ok := open[r.Key]; ok {
				if _, _, ok := chooseLabel(r.Key, reqs, term); !ok {
					conflict = "requirement " + joinRequirements(reqs)
					break
				}
			}
		}
		if conflict == "" {
			return ""
		}
		if i == 0 {
			first = conflict
		}
	}
	return first
}

// joinRequirements returns reqs as "k In [a b], k NotIn [c]".
func joinRequirements(reqs []v1alpha1.NodeSelectorRequirement) string {
	s := make([]string, len(reqs))
	for i, r := range reqs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}
