package plan

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

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

// explain finds, per Provisioner, the first reason its nodes cannot host f's pod: an
// untolerated taint, a label of its nodes the pod's node selection excludes, no instance type
// matching it, no instance type large enough, the limits, or the Filter plugins.
func (p *packer) explain(ctx context.Context, f *podFacts) *Unplanned {
	u := &Unplanned{Pod: f.pod}
	if len(p.provs) == 0 {
		u.Reasons = []string{"no provisioner"}
		u.Resolvable = true
		return u
	}
	for _, prov := range p.provs {
		reason, static := p.explainProvisioner(ctx, f, prov)
		u.Reasons = append(u.Reasons, reason)
		u.Resolvable = u.Resolvable || !static
	}
	return u
}

// explainProvisioner returns why f's pod cannot go on a new node of prov, and whether that
// reason is static (no change of the cluster's state can lift it). Each step narrows the
// templates to those past it, and the first step that leaves none is the reason.
func (p *packer) explainProvisioner(ctx context.Context, f *podFacts, prov *v1alpha1.Provisioner) (string, bool) {
	pod, name := f.pod, prov.Name
	if taint := untolerated(p.logger, prov, pod); taint != "" {
		return fmt.Sprintf("provisioner %q: taint %s not tolerated", name, taint), true
	}
	if len(p.templates[name]) == 0 {
		return fmt.Sprintf("provisioner %q: no instance type offering is available", name), false
	}
	matching := filter(p.templatesFor(prov, pod, f.sig), func(t *Template) bool { return t.matches(pod) })
	if len(matching) == 0 {
		if conflict := labelConflict(prov, pod); conflict != "" {
			return fmt.Sprintf("provisioner %q: %s conflicts with the pod's node selector or affinity", name, conflict), true
		}
		return fmt.Sprintf("no instance type in provisioner %q matches the pod's node selector and affinity", name), true
	}
	allowed := filter(matching, func(t *Template) bool { return defaultsReject(t, pod, f.req) == "" })
	if len(allowed) == 0 {
		return fmt.Sprintf("no instance type in provisioner %q matches the pod's node selection: %s", name, defaultsReject(matching[0], pod, f.req)), true
	}
	fitting := filter(allowed, func(t *Template) bool { return prescreen(t, pod, f.req, nil) == "" })
	if len(fitting) == 0 {
		return fmt.Sprintf("no instance type in provisioner %q satisfies: %s", name, tooLarge(f.req, allowed)), true
	}
	inLimits := filter(fitting, func(t *Template) bool { return p.withinLimits(t, nil) })
	if len(inLimits) == 0 {
		return p.limitReached(prov, fitting[0]), false
	}
	st := p.sim.CheckEmpty(ctx, pod, f.sig, inLimits[0])
	return fmt.Sprintf("no instance type in provisioner %q passes the scheduler's filters: %s", name, st.Message()), false
}

// untolerated returns the first taint of prov's nodes that pod does not tolerate, as text,
// or "". PreferNoSchedule taints do not count: they only score.
func untolerated(logger klog.Logger, prov *v1alpha1.Provisioner, pod *v1.Pod) string {
	for _, t := range prov.Spec.Taints {
		taint := t.Core()
		if taint.Effect != v1.TaintEffectPreferNoSchedule && !corev1helpers.TolerationsTolerateTaint(logger, pod.Spec.Tolerations, &taint, false) {
			return taint.ToString()
		}
	}
	return ""
}

// limitReached says which of prov's limits a node of t, the smallest that fits, would
// exceed.
func (p *packer) limitReached(prov *v1alpha1.Provisioner, t *Template) string {
	for _, res := range sortedNames(prov.Spec.Limits) {
		if exceeds(v1.ResourceList{res: prov.Spec.Limits[res]}, p.used[prov.Name], t.InstanceType.Capacity) != "" {
			limit := prov.Spec.Limits[res]
			return fmt.Sprintf("provisioner %q: limit %s %s reached", prov.Name, res, quantityString(res, limit))
		}
	}
	return fmt.Sprintf("provisioner %q: limits reached", prov.Name)
}

// filter returns the templates of ts for which keep holds, in order.
func filter(ts []*Template, keep func(*Template) bool) []*Template {
	var out []*Template
	for _, t := range ts {
		if keep(t) {
			out = append(out, t)
		}
	}
	return out
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
			free := t.allocatable[name].DeepCopy()
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
