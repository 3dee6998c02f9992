package plan

import (
	"context"
	"slices"

	v1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
)

// PreferenceTolerance is how much dearer than the template price alone would choose, as a
// fraction of its price, a new node may be for meeting more of its pod's preferences: 10%.
// Spot prices of one instance type differ between zones by far more than that, on-demand
// prices not at all: a preferred zone is honoured when it is about as cheap as the cheapest,
// never at any price. The rule is nodewright's, the same for every Provisioner, and
// documented in docs/concepts.md.
const PreferenceTolerance = 0.10

// prefers reports, once per pod, whether pod has preferences the templates can meet or not:
// preferred node affinity (its own, or the profile's addedAffinity), preferred inter-pod
// (anti-)affinity, topology spread constraints that only score (ScheduleAnyway), or a
// PreferNoSchedule taint of a Provisioner that it does not tolerate. The profile's default
// spread constraints do not count: every pod of a Deployment would have them, and nodewright
// does not spread a Deployment's new nodes over zones by preference; it packs them by price.
// Only for such pods are templates scored (see Simulator.Score); every other pod is planned
// by price alone.
func (p *packer) prefers(pod *v1.Pod) bool {
	if p.prefs == nil {
		p.prefs = map[*v1.Pod]bool{}
	}
	return perPod(p.prefs, pod, p.hasPreferences)
}

func (p *packer) hasPreferences(pod *v1.Pod) bool {
	if a := pod.Spec.Affinity; a != nil {
		if a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 ||
			a.PodAffinity != nil && len(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 ||
			a.PodAntiAffinity != nil && len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			return true
		}
	}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == v1.ScheduleAnyway {
			return true
		}
	}
	for _, prov := range p.provs {
		for _, t := range prov.Spec.Taints {
			taint := t.Core()
			if taint.Effect == v1.TaintEffectPreferNoSchedule && !corev1helpers.TolerationsTolerateTaint(p.logger, pod.Spec.Tolerations, &taint, false) {
				return true
			}
		}
	}
	for _, pc := range p.in.PluginConfig {
		if args, ok := pc.Args.(*config.NodeAffinityArgs); ok && pc.Name == names.NodeAffinity && args.AddedAffinity != nil &&
			len(args.AddedAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			return true
		}
	}
	return false
}

// preferred returns the template a new node n for f's pod, which prefers, opens as, given t,
// the template price alone chooses (the cheapest that accepts the pod, of the heaviest
// Provisioner that has one): of the templates that accept pod, of the Provisioners of t's
// weight and priced at most PreferenceTolerance above t, the one choose picks. A Provisioner's
// weight outranks a pod's preferences, as it outranks price. n ends up installed as the
// template returned.
func (p *packer) preferred(ctx context.Context, n *openNode, t *Template, f *podFacts) *Template {
	limit := t.Offering.Price * (1 + PreferenceTolerance)
	fits := []*Template{t}
	for _, prov := range p.provs {
		if weight(prov) != weight(t.Provisioner) {
			continue
		}
		for _, o := range p.templatesFor(prov, f.pod, f.sig) {
			if o.Offering.Price > limit {
				break
			}
			if o != t && p.accepts(ctx, n, o, f) {
				fits = append(fits, o)
			}
		}
	}
	// The scheduler scores nodes for a pod with the pod nowhere; n holds none of its pods yet.
	p.sim.RemoveNode(n.name)
	chosen := p.choose(ctx, []*v1.Pod{f.pod}, fits)
	p.install(n, chosen)
	return chosen
}

// preferredHome returns the template rehome moves n to, given t, the cheapest template of
// its Provisioner that holds n's pods: t, unless a pod of n prefers; then, of the templates
// of the Provisioner that hold n's pods within limits, priced at most PreferenceTolerance
// above t, the one choose picks for n's pods. It can be n's own template.
func (p *packer) preferredHome(ctx context.Context, n *openNode, t *Template) *Template {
	if !slices.ContainsFunc(n.pods, p.prefers) {
		return t
	}
	current := n.candidates[0]
	limit := t.Offering.Price * (1 + PreferenceTolerance)
	fits := []*Template{t}
	templates := p.templates[t.group]
	for _, o := range templates[slices.Index(templates, t)+1:] {
		if o.Offering.Price > limit {
			break
		}
		if p.holdsAll(ctx, o, n.pods, n.podReqs) && p.withinLimits(o, current.InstanceType.Capacity) {
			fits = append(fits, o)
		}
	}
	// The pods are scored as pods to place: with them and their node out of the snapshot.
	p.sim.RemoveNode(n.name)
	chosen := p.choose(ctx, n.pods, fits)
	p.install(n, current)
	return chosen
}

// choose returns the template of fits that pods' preferences choose, fits[0] being the one
// price alone chooses and the others priced at most PreferenceTolerance above it: the one
// with the highest total of the pods' scores (see Simulator.Score), the cheapest of those,
// fits[0] whenever it has that score. A preference no template meets scores the same on
// every template and so changes nothing: it relaxes itself. Pods alike (PodSignature) are
// scored once, as many times as there are of them.
func (p *packer) choose(ctx context.Context, pods []*v1.Pod, fits []*Template) *Template {
	if len(fits) < 2 {
		return fits[0]
	}
	alike := map[string]int64{}
	var scored []*v1.Pod
	for _, pod := range pods {
		if !p.prefers(pod) {
			continue
		}
		sig := p.signature(pod)
		if alike[sig] == 0 {
			scored = append(scored, pod)
		}
		alike[sig]++
	}
	total := make([]int64, len(fits))
	for _, pod := range scored {
		scores, st := p.sim.Score(ctx, pod, fits)
		if !st.IsSuccess() {
			p.logger.V(2).Info("Scoring new nodes failed; choosing by price", "pod", klog.KObj(pod), "err", st.AsError())
			return fits[0]
		}
		for i, s := range scores {
			total[i] += s * alike[p.signature(pod)]
		}
	}
	best := 0
	for i := 1; i < len(fits); i++ {
		if total[i] > total[best] || best != 0 && total[i] == total[best] && fits[i].Offering.Price < fits[best].Offering.Price {
			best = i
		}
	}
	if best == 0 {
		p.logger.V(4).Info("Preferences leave the cheapest offering", "pod", klog.KObj(pods[0]), "offering", fits[0].Key, "alternatives", len(fits)-1)
		return fits[0]
	}
	p.logger.V(2).Info("Chose an offering by the pods' preferences", "pod", klog.KObj(pods[0]), "pods", len(pods),
		"offering", fits[best].Key, "price", fits[best].Offering.Price, "score", total[best],
		"cheapest", fits[0].Key, "cheapestPrice", fits[0].Offering.Price, "cheapestScore", total[0])
	return fits[best]
}
