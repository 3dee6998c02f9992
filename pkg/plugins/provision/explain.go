package provision

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// Unplanned is a pod no new node was planned for, and why.
type Unplanned struct {
	Pod *v1.Pod
	// Reasons say, one per Provisioner, why none of its nodes can host the pod, e.g.
	// `no instance type in provisioner "default" satisfies: cpu request 200 > largest allocatable 191.4`.
	Reasons []string
	// Resolvable is false when waiting cannot help: every reason is in the pod's or the
	// Provisioners' specs, not in the cluster's state.
	Resolvable bool
}

// Message joins the reasons for an event or a status.
func (u *Unplanned) Message() string {
	if len(u.Reasons) == 0 {
		return "no provisioner"
	}
	return strings.Join(u.Reasons, "; ")
}

// explain finds, per Provisioner, the first reason its nodes cannot host pod: an untolerated
// taint, a label of its nodes the pod's node selection excludes, no instance type matching
// it, no instance type large enough, the limits, or the Filter plugins.
func (p *packer) explain(ctx context.Context, pod *v1.Pod, sig string, req v1.ResourceList) *Unplanned {
	u := &Unplanned{Pod: pod}
	if len(p.provs) == 0 {
		u.Reasons = []string{"no provisioner"}
		u.Resolvable = true
		return u
	}
	for _, prov := range p.provs {
		reason, static := p.explainProvisioner(ctx, pod, sig, req, prov.Name)
		u.Reasons = append(u.Reasons, reason)
		u.Resolvable = u.Resolvable || !static
	}
	return u
}

// explainProvisioner returns why pod cannot go on a new node of the Provisioner named name,
// and whether that reason is static (no change of the cluster's state can lift it).
func (p *packer) explainProvisioner(ctx context.Context, pod *v1.Pod, sig string, req v1.ResourceList, name string) (string, bool) {
	var prov = p.provisioner(name)
	for _, t := range prov.Spec.Taints {
		taint := t.Core()
		if taint.Effect == v1.TaintEffectPreferNoSchedule {
			continue
		}
		if !corev1helpers.TolerationsTolerateTaint(p.logger, pod.Spec.Tolerations, &taint, false) {
			return fmt.Sprintf("provisioner %q: taint %s not tolerated", name, taint.ToString()), true
		}
	}
	if len(p.templates[name]) == 0 {
		return fmt.Sprintf("provisioner %q: no instance type offering is available", name), false
	}
	var matching []*Template
	for _, t := range p.templatesFor(prov, pod, sig) {
		if matchesNodeSelection(pod, t.Node) {
			matching = append(matching, t)
		}
	}
	if len(matching) == 0 {
		if conflict := labelConflict(prov, pod); conflict != "" {
			return fmt.Sprintf("provisioner %q: %s conflicts with the pod's node selector or affinity", name, conflict), true
		}
		return fmt.Sprintf("no instance type in provisioner %q matches the pod's node selector and affinity", name), true
	}
	var allowed []*Template
	for _, t := range matching {
		if defaultsReject(t, pod, req) == "" {
			allowed = append(allowed, t)
		}
	}
	if len(allowed) == 0 {
		return fmt.Sprintf("no instance type in provisioner %q matches the pod's node selection: %s", name, defaultsReject(matching[0], pod, req)), true
	}
	matching = allowed
	var fitting []*Template
	for _, t := range matching {
		if prescreen(t, pod, req, nil) == "" {
			fitting = append(fitting, t)
		}
	}
	if len(fitting) == 0 {
		return fmt.Sprintf("no instance type in provisioner %q satisfies: %s", name, tooLarge(req, matching)), true
	}
	var inLimits []*Template
	for _, t := range fitting {
		if p.withinLimits(t, nil) {
			inLimits = append(inLimits, t)
		}
	}
	if len(inLimits) == 0 {
		for _, res := range sortedNames(prov.Spec.Limits) {
			if exceeds(v1.ResourceList{res: prov.Spec.Limits[res]}, p.used[name], fitting[0].InstanceType.Capacity) != "" {
				limit := prov.Spec.Limits[res]
				return fmt.Sprintf("provisioner %q: limit %s %s reached", name, res, quantityString(res, limit)), false
			}
		}
	}
	if len(inLimits) == 0 {
		return fmt.Sprintf("provisioner %q: limits reached", name), false
	}
	st := p.sim.CheckEmpty(ctx, pod, sig, inLimits[0])
	return fmt.Sprintf("no instance type in provisioner %q passes the scheduler's filters: %s", name, st.Message()), false
}

func (p *packer) provisioner(name string) *v1alpha1.Provisioner {
	for _, prov := range p.provs {
		if prov.Name == name {
			return prov
		}
	}
	return nil
}

// tooLarge names the first resource the pod requests more of than the largest template
// offers after its DaemonSet pods, as `cpu request 200 > largest allocatable 191.4`.
func tooLarge(req v1.ResourceList, templates []*Template) string {
	for _, name := range sortedNames(req) {
		want := req[name]
		if want.IsZero() {
			continue
		}
		var largest resource.Quantity
		for _, t := range templates {
			free := t.Node.Status.Allocatable[name].DeepCopy()
			for _, dp := range t.DaemonPods {
				r := podRequests(dp)
				free.Sub(r[name])
			}
			if free.Cmp(largest) > 0 {
				largest = free
			}
		}
		if want.Cmp(largest) > 0 {
			return fmt.Sprintf("%s request %s > largest allocatable %s", name, quantityString(name, want), quantityString(name, largest))
		}
	}
	return "the requests do not fit together on any instance type"
}
