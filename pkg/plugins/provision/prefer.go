package provision

import (
	"context"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
)

// PreferenceTolerance is how much dearer than the template price alone would choose, as a
// fraction of its price, a new node may be for meeting more of its pod's preferences: 10%.
// Spot prices of one instance type differ between zones by far more than that, on-demand
// prices not at all: a preferred zone is honoured when it is about as cheap as the cheapest,
// never at any price. The rule is nodewright's, the same for every Provisioner, and
// documented in docs/concepts.md.
const PreferenceTolerance = 0.10

// preferencePlugins are the in-tree Score plugins that score what a pod prefers of a node
// rather than how full the node is. Only they score templates: on an empty template,
// NodeResourcesFit and NodeResourcesBalancedAllocation would score the instance type's size,
// which its price already weighs, and ImageLocality knows no image of a node that does not
// exist yet. What out-of-tree Score plugins measure is not known, so they do not score either.
var preferencePlugins = sets.New(names.NodeAffinity, names.TaintToleration, names.InterPodAffinity, names.PodTopologySpread)

// preferenceScoring returns the plugins of set that are preferencePlugins, with their
// weights, as the plugin set of a PreScore or Score extension point on which every other
// plugin, multi-point ones included, is disabled.
func preferenceScoring(set config.PluginSet) config.PluginSet {
	out := config.PluginSet{Disabled: []config.Plugin{{Name: "*"}}}
	for _, p := range set.Enabled {
		if preferencePlugins.Has(p.Name) {
			out.Enabled = append(out.Enabled, p)
		}
	}
	return out
}

// Score runs the framework's PreScore and Score plugins (preferencePlugins, see
// FrameworkFactoryWith) for pod over templates, each as a new node with only its DaemonSet
// pods, as the scheduler scores the nodes that passed its filters: PreScore reads the
// snapshot, Score and NormalizeScore the templates, and the plugins' scores are weighted as
// the profile weighs them. It returns each template's total score.
func (s *Simulator) Score(ctx context.Context, pod *v1.Pod, templates []*Template) ([]int64, *fwk.Status) {
	nodes := make([]fwk.NodeInfo, len(templates))
	for i, t := range templates {
		nodes[i] = s.scoredNode(t)
	}
	state := framework.NewCycleState()
	if st := s.fw.RunPreScorePlugins(ctx, state, pod, nodes); !st.IsSuccess() {
		return nil, st
	}
	scores, st := s.fw.RunScorePlugins(ctx, state, pod, nodes)
	if !st.IsSuccess() {
		return nil, st
	}
	out := make([]int64, len(scores))
	for i, sc := range scores {
		out[i] = sc.TotalScore
	}
	return out, nil
}

// scoredNode returns the NodeInfo of t empty but for its DaemonSet pods, outside the
// snapshot, named after t's key: PodTopologySpread tells the scored nodes apart by name.
func (s *Simulator) scoredNode(t *Template) *framework.NodeInfo {
	if s.scored == nil {
		s.scored = map[string]*framework.NodeInfo{}
	}
	ni, ok := s.scored[t.Key]
	if !ok {
		ni = s.emptyNode(t, "nodewright-scored/"+t.Key)
		s.scored[t.Key] = ni
	}
	return ni
}

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

// preferred returns the template a new node n for pod, which prefers, opens as, given t,
// the template price alone chooses (the cheapest that accepts pod, of the heaviest
// Provisioner that has one): of the templates that accept pod, of the Provisioners of t's
// weight and priced at most PreferenceTolerance above t, the one choose picks. A Provisioner's
// weight outranks a pod's preferences, as it outranks price. n ends up installed as the
// template returned.
func (p *packer) preferred(ctx context.Context, n *openNode, t *Template, pod *v1.Pod, sig string, req v1.ResourceList, independent bool) *Template {
	limit := t.Offering.Price * (1 + PreferenceTolerance)
	fits := []*Template{t}
	for _, prov := range p.provs {
		if weight(prov) != weight(t.Provisioner) {
			continue
		}
		for _, o := range p.templatesFor(prov, pod, sig) {
			if o.Offering.Price > limit {
				break
			}
			if o != t && p.accepts(ctx, n, o, pod, sig, req, independent) {
				fits = append(fits, o)
			}
		}
	}
	// The scheduler scores nodes for a pod with the pod nowhere; n holds none of its pods yet.
	p.sim.snap.removeNode(n.name)
	chosen := p.choose(ctx, []*v1.Pod{pod}, fits)
	p.install(ctx, n, chosen)
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
	p.sim.snap.removeNode(n.name)
	chosen := p.choose(ctx, n.pods, fits)
	p.install(ctx, n, current)
	return chosen
}

// choose returns the template of fits that pods' preferences choose, fits[0] being the one
// price alone chooses and the others priced at most PreferenceTolerance above it: the one
// with the highest total of the pods' scores (see Simulator.Score), the cheapest of those,
// fits[0] whenever it has that score. A preference no template meets scores the same on
// every template and so changes nothing: it relaxes itself. Pods alike (podSignature) are
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
