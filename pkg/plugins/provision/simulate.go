package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	clientsetfake "k8s.io/client-go/kubernetes/fake"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	fwk "k8s.io/kube-scheduler/framework"
	v1helper "k8s.io/kubernetes/pkg/apis/core/v1/helper"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
)

// FrameworkFactory builds the scheduler framework a round simulates with, reading the
// cluster from lister. Only its PreFilter and Filter plugins are used, and its PreScore and
// Score plugins for pods with preferences (see Simulator.Score).
type FrameworkFactory func(ctx context.Context, lister fwk.SharedLister) (framework.Framework, error)

// DefaultFrameworkFactory returns a factory of frameworks with the in-tree plugins and their
// default args: the PreFilter and Filter plugins of enabled when it is not nil (a running
// scheduler's profile, see framework.Framework.ListPlugins), else kube-scheduler's default
// profile. Only PreFilter and Filter ever run, and the Score plugins of preferences
// (preferencePlugins).
// informerFactory feeds the plugins that read the cluster (volumes, CSI nodes); nil means an
// empty cluster, as in tests.
func DefaultFrameworkFactory(enabled *config.Plugins, informerFactory informers.SharedInformerFactory) FrameworkFactory {
	return FrameworkFactoryWith(enabled, informerFactory, nil, nil)
}

// FrameworkFactoryWith is DefaultFrameworkFactory with the out-of-tree plugins of
// outOfTree too, so that a profile's own Filter plugins judge the templates as they will
// judge the nodes, and with the args of pluginConfig, the profile's, when it is not nil
// (see ProfilePluginConfig). Provision itself, and any enabled plugin neither registry has,
// is left out.
func FrameworkFactoryWith(enabled *config.Plugins, informerFactory informers.SharedInformerFactory, outOfTree frameworkruntime.Registry,
	pluginConfig []config.PluginConfig) FrameworkFactory {
	registry := plugins.NewInTreeRegistry()
	if err := registry.Merge(outOfTree); err != nil {
		return func(context.Context, fwk.SharedLister) (framework.Framework, error) {
			return nil, fmt.Errorf("merging the out-of-tree plugins: %w", err)
		}
	}
	delete(registry, Name)
	keep := func(set config.PluginSet) config.PluginSet {
		out := config.PluginSet{}
		for _, p := range set.Enabled {
			// Dynamic resource allocation needs the scheduler's DRA manager, which a
			// simulation does not have; pods with resource claims are not modelled.
			if _, ok := registry[p.Name]; ok && p.Name != names.DynamicResources {
				out.Enabled = append(out.Enabled, p)
			}
		}
		return out
	}
	return func(ctx context.Context, lister fwk.SharedLister) (framework.Framework, error) {
		// The framework records into the scheduler's metrics; registering is idempotent.
		schedulermetrics.Register()
		versioned := configv1.KubeSchedulerConfiguration{}
		scheme.Scheme.Default(&versioned)
		cfg := config.KubeSchedulerConfiguration{}
		if err := scheme.Scheme.Convert(&versioned, &cfg, nil); err != nil {
			return nil, fmt.Errorf("defaulting the scheduler configuration: %w", err)
		}
		profile := cfg.Profiles[0]
		// The framework's plugin metrics are labelled with it, apart from the real profile's.
		profile.SchedulerName = simulationProfileName
		if pluginConfig != nil {
			profile.PluginConfig = pluginConfig
		}
		if enabled != nil {
			// Only what deciding feasibility and scoring preferences need, plus the queue sort
			// and bind plugins the framework insists on (they never run here).
			profile.Plugins = &config.Plugins{PreFilter: keep(enabled.PreFilter), Filter: keep(enabled.Filter),
				PreScore: preferenceScoring(enabled.PreScore), Score: preferenceScoring(enabled.Score),
				QueueSort: enabled.QueueSort, Bind: enabled.Bind}
		} else {
			profile.Plugins.MultiPoint = keep(profile.Plugins.MultiPoint)
			profile.Plugins.PreFilter = keep(profile.Plugins.PreFilter)
			profile.Plugins.Filter = keep(profile.Plugins.Filter)
			profile.Plugins.PreScore = preferenceScoring(profile.Plugins.MultiPoint)
			profile.Plugins.Score = preferenceScoring(profile.Plugins.MultiPoint)
		}
		client := clientsetfake.NewClientset()
		if informerFactory == nil {
			informerFactory = informers.NewSharedInformerFactory(client, 0)
		}
		return frameworkruntime.NewFramework(ctx, registry, &profile,
			frameworkruntime.WithSnapshotSharedLister(lister),
			frameworkruntime.WithInformerFactory(informerFactory),
			frameworkruntime.WithClientSet(client),
			frameworkruntime.WithLogger(klog.FromContext(ctx)),
		)
	}
}

// ProfilePluginConfig returns the pluginConfig of the profile named profileName in the
// KubeSchedulerConfiguration file, defaulted as kube-scheduler defaults it: the args the
// profile's plugins run with. The simulation's plugins then filter as the scheduler's do:
// NodeAffinity's addedAffinity, PodTopologySpread's default constraints, NodeResourcesFit's
// ignored resources and the args of out-of-tree plugins all count.
func ProfilePluginConfig(file, profileName string) ([]config.PluginConfig, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the scheduler configuration: %w", err)
	}
	obj, _, err := scheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding the scheduler configuration %s: %w", file, err)
	}
	cfg, ok := obj.(*config.KubeSchedulerConfiguration)
	if !ok {
		return nil, fmt.Errorf("decoding the scheduler configuration %s: got %T, want a KubeSchedulerConfiguration", file, obj)
	}
	for _, p := range cfg.Profiles {
		if p.SchedulerName == profileName {
			return p.PluginConfig, nil
		}
	}
	return nil, fmt.Errorf("the scheduler configuration %s has no profile %q", file, profileName)
}

// HardDefaultSpread reports whether the PodTopologySpread args of pluginConfig give pods
// without constraints of their own default constraints that filter (whenUnsatisfiable
// DoNotSchedule): then any pod's fit may depend on other pods.
func HardDefaultSpread(pluginConfig []config.PluginConfig) bool {
	for _, pc := range pluginConfig {
		args, ok := pc.Args.(*config.PodTopologySpreadArgs)
		if pc.Name != names.PodTopologySpread || !ok || args.DefaultingType != config.ListDefaulting {
			continue
		}
		for _, c := range args.DefaultConstraints {
			if c.WhenUnsatisfiable == v1.DoNotSchedule {
				return true
			}
		}
	}
	return false
}

// IgnoredResources returns whether the NodeResourcesFit args of pluginConfig leave an
// extended resource out of its fit (ignoredResources, ignoredResourceGroups), as the
// plugin decides it; nil if they leave out none.
func IgnoredResources(pluginConfig []config.PluginConfig) func(v1.ResourceName) bool {
	for _, pc := range pluginConfig {
		args, ok := pc.Args.(*config.NodeResourcesFitArgs)
		if pc.Name != names.NodeResourcesFit || !ok || len(args.IgnoredResources)+len(args.IgnoredResourceGroups) == 0 {
			continue
		}
		resources, groups := sets.New(args.IgnoredResources...), sets.New(args.IgnoredResourceGroups...)
		return func(name v1.ResourceName) bool {
			group, _, _ := strings.Cut(string(name), "/")
			return v1helper.IsExtendedResourceName(name) && (resources.Has(string(name)) || groups.Has(group))
		}
	}
	return nil
}

// simulationProfileName is the profile name of simulation frameworks.
const simulationProfileName = "nodewright-simulation"

// Simulator decides whether pods fit nodes, existing or planned, by running the framework's
// PreFilter and Filter plugins over its snapshot, as the scheduler will once the planned
// nodes exist. It is not safe for concurrent use.
type Simulator struct {
	fw   framework.Framework
	snap *snapshot
	// verdicts caches, by pod signature and template key, whether a pod that does not depend
	// on other pods fits an empty template (one with only its DaemonSet pods).
	verdicts map[string]*fwk.Status
	// pre is the last PreFilter run: a pod checked on node after node with the snapshot
	// unchanged has its PreFilter state computed once, as in the scheduler's cycle.
	pre preFilterRun
	// knownPreFilters is true when every PreFilter plugin of the profile is one whose
	// outcome for an independent pod does not depend on the other pods and nodes (see
	// stateFreePreFilters). Then such a pod's PreFilter state is kept for the round
	// (independentPre), and its fit on an empty template is decided without adding the
	// template to the snapshot.
	knownPreFilters bool
	independentPre  map[string]*preFilterRun // by snapshot.class
	// placedPre are PreFilter runs over the snapshot for pods already in it, by class (see
	// snapshot.class), for CheckPlaced.
	placedPre map[string]*preFilterRun
	// probes are the NodeInfos of empty templates, by template key.
	probes map[string]*framework.NodeInfo
	// copies caches Template.renamed by name and template key: the snapshot derives what
	// it needs from a pod once per pod object.
	copies map[string]*Template
	// scored are the NodeInfos of empty templates that Score scores, by template key.
	scored map[string]*framework.NodeInfo
	// Checks counts Filter runs, PreFilters the PreFilter runs, CacheHits the verdicts reused.
	Checks, PreFilters, CacheHits int
	// allConstrained is true when every pod may depend on others: under a hard default
	// spread (HardDefaultSpread), or a Filter plugin whose interactions are not audited (see
	// filterInteractions).
	allConstrained bool
}

// preFilterRun is the outcome of the PreFilter plugins for pod on the snapshot at gen.
type preFilterRun struct {
	pod    *v1.Pod
	gen    uint64
	state  fwk.CycleState
	result *fwk.PreFilterResult
	status *fwk.Status
}

// stateFreePreFilters are the in-tree PreFilter plugins whose outcome for an independent pod
// (see Simulator.independent) depends on the pod alone: they read no other pod or node for
// a pod with no inter-pod constraint, volume claim or resource claim, that no other pod's
// required anti-affinity selects.
// (The framework lists every plugin enabled at PreFilter, whether it has a PreFilter or not.)
var stateFreePreFilters = sets.New(names.NodeName, names.NodeUnschedulable, names.TaintToleration,
	names.NodeAffinity, names.NodePorts, names.NodeResourcesFit, names.VolumeRestrictions,
	names.NodeVolumeLimits, names.VolumeBinding, names.VolumeZone, names.PodTopologySpread,
	names.InterPodAffinity, names.NodeDeclaredFeatures)

// NewSimulator returns a simulator over the cluster's nodes and pods. allConstrained says
// that every pod may depend on the others whatever its spec (see HardDefaultSpread); it is
// so as well when the framework has a Filter plugin filterInteractions does not list.
func NewSimulator(ctx context.Context, newFramework FrameworkFactory, nodes []*v1.Node, pods []*v1.Pod, allConstrained bool) (*Simulator, error) {
	snap := newSnapshot(nodes, pods)
	fw, err := newFramework(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("building the scheduler framework: %w", err)
	}
	known := true
	if pl := fw.ListPlugins(); pl != nil {
		for _, p := range pl.PreFilter.Enabled {
			known = known && stateFreePreFilters.Has(p.Name)
		}
		var filters []string
		for _, p := range pl.Filter.Enabled {
			filters = append(filters, p.Name)
		}
		if !auditedFilters(filters) {
			allConstrained = true
		}
	}
	return &Simulator{fw: fw, snap: snap, verdicts: map[string]*fwk.Status{}, knownPreFilters: known, allConstrained: allConstrained,
		independentPre: map[string]*preFilterRun{}, placedPre: map[string]*preFilterRun{}, probes: map[string]*framework.NodeInfo{},
		copies: map[string]*Template{}}, nil
}

// Check runs the PreFilter plugins for pod over the snapshot and then the Filter plugins
// on the node named nodeName: the scheduling cycle the scheduler would run if that node were
// the only candidate. pod must not be in the snapshot. The PreFilter outcome is reused while
// the snapshot does not change, so checking one pod on many nodes costs one PreFilter run,
// like one scheduling cycle over many nodes.
func (s *Simulator) Check(ctx context.Context, pod *v1.Pod, nodeName string) *fwk.Status {
	ni, ok := s.snap.nodes[nodeName]
	if !ok {
		return fwk.NewStatus(fwk.Error, fmt.Sprintf("node %s is not in the snapshot", nodeName))
	}
	return s.CheckOn(ctx, pod, ni)
}

// CheckOn is Check on ni, which need not be in the snapshot: the PreFilter plugins run over
// the snapshot, the Filter plugins on ni.
func (s *Simulator) CheckOn(ctx context.Context, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	if s.pre.pod != pod || s.pre.gen != s.snap.gen {
		s.pre = s.preFilter(ctx, pod)
	}
	return s.filter(ctx, &s.pre, pod, ni)
}

func (s *Simulator) preFilter(ctx context.Context, pod *v1.Pod) preFilterRun {
	s.PreFilters++
	state := framework.NewCycleState()
	result, status, _ := s.fw.RunPreFilterPlugins(ctx, state, pod)
	return preFilterRun{pod: pod, gen: s.snap.gen, state: state, result: result, status: status}
}

func (s *Simulator) filter(ctx context.Context, pre *preFilterRun, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s.Checks++
	if !pre.status.IsSuccess() {
		return pre.status
	}
	if !pre.result.AllNodes() && !pre.result.NodeNames.Has(ni.Node().Name) {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "node is not among the nodes PreFilter selected")
	}
	return s.fw.RunFilterPlugins(ctx, pre.state, pod, ni)
}

// CheckIgnoringResources is Check with the node's allocatable left aside: whether anything
// but room turns pod away from the node named nodeName.
func (s *Simulator) CheckIgnoringResources(ctx context.Context, pod *v1.Pod, nodeName string) *fwk.Status {
	ni, ok := s.snap.nodes[nodeName]
	if !ok {
		return fwk.NewStatus(fwk.Error, fmt.Sprintf("node %s is not in the snapshot", nodeName))
	}
	return s.CheckOn(ctx, pod, roomless{ni})
}

// roomless is a node with no limit on room: its allocatable is as large as it gets, so the
// NodeResourcesFit plugin takes any pod (but for extended resources it does not have).
type roomless struct{ *framework.NodeInfo }

func (roomless) GetAllocatable() fwk.Resource { return unlimitedRoom }

var unlimitedRoom = &framework.Resource{MilliCPU: math.MaxInt64 / 4, Memory: math.MaxInt64 / 4,
	EphemeralStorage: math.MaxInt64 / 4, AllowedPodNumber: math.MaxInt32}

// CheckPlaced is Check for pod, which is on the node named nodeName in the snapshot, with
// the snapshot as if it were not: whether the scheduler would place pod there with every
// other pod of the snapshot in place. Pods alike (see snapshot.class) share one PreFilter run
// over the snapshot with them all in it; each then takes itself out of a copy of the state
// with the plugins' RemovePod extensions, as preemption takes out victims.
func (s *Simulator) CheckPlaced(ctx context.Context, logger klog.Logger, pod *v1.Pod, nodeName string) *fwk.Status {
	ni, ok := s.snap.nodes[nodeName]
	if !ok {
		return fwk.NewStatus(fwk.Error, fmt.Sprintf("node %s is not in the snapshot", nodeName))
	}
	class := s.snap.class(pod)
	run := s.placedPre[class]
	if s.knownPreFilters && (run == nil || run.gen != s.snap.gen) {
		r := s.preFilter(ctx, pod)
		run = &r
		s.placedPre[class] = run
	}
	if !s.knownPreFilters || !run.status.IsSuccess() {
		// Out-of-tree PreFilter plugins may have no RemovePod extension, and a failed
		// PreFilter says nothing about the pod out of the snapshot: check it out of it.
		if err := s.snap.removePod(logger, pod, nodeName); err != nil {
			return fwk.AsStatus(err)
		}
		st := s.Check(ctx, pod, nodeName)
		_ = s.snap.addPod(pod, nodeName)
		return st
	}
	state := run.state.Clone()
	info := s.snap.entry(pod).info
	if st := s.fw.RunPreFilterExtensionRemovePod(ctx, state, pod, info, ni); !st.IsSuccess() {
		return st
	}
	// The node without the pod, for the Filter plugins only: it is put back as it was, so
	// the snapshot's generation stands.
	if err := ni.RemovePod(logger, pod); err != nil {
		return fwk.AsStatus(err)
	}
	restorePorts(ni, pod)
	st := s.filter(ctx, &preFilterRun{pod: pod, state: state, result: run.result, status: run.status}, pod, ni)
	ni.AddPodInfo(info)
	return st
}

// CheckEmpty is Check on template t with nothing but its DaemonSet pods. The verdict is
// cached for pods that do not depend on other pods (see independent).
func (s *Simulator) CheckEmpty(ctx context.Context, pod *v1.Pod, sig string, t *Template) *fwk.Status {
	// A DaemonSet pod with inter-pod constraints can tell pods of one signature apart by
	// their labels.
	cacheable := s.independent(pod) && !t.daemonAffinity
	key := sig + "|" + t.Key
	if cacheable {
		if st, ok := s.verdicts[key]; ok {
			s.CacheHits++
			return st
		}
	}
	var st *fwk.Status
	if cacheable && s.knownPreFilters {
		// Nothing the PreFilter plugins compute for the pod depends on the snapshot, and
		// nothing the Filter plugins read for it beyond the node: no need to add t to it.
		class := s.snap.class(pod)
		pre, ok := s.independentPre[class]
		if !ok {
			run := s.preFilter(ctx, pod)
			pre = &run
			s.independentPre[class] = pre
		}
		st = s.filter(ctx, pre, pod, s.probe(t))
	} else {
		probe := s.renamed(t, probeNodeName)
		s.snap.addNode(probe.Node, probe.DaemonPods...)
		st = s.Check(ctx, pod, probeNodeName)
		s.snap.removeNode(probeNodeName)
	}
	if cacheable {
		s.verdicts[key] = st
	}
	return st
}

// probe returns the NodeInfo of t empty but for its DaemonSet pods, outside the snapshot.
func (s *Simulator) probe(t *Template) *framework.NodeInfo {
	ni, ok := s.probes[t.Key]
	if !ok {
		ni = s.emptyNode(t, probeNodeName)
		s.probes[t.Key] = ni
	}
	return ni
}

// emptyNode returns a NodeInfo of t named name, with its DaemonSet pods only.
func (s *Simulator) emptyNode(t *Template, name string) *framework.NodeInfo {
	c := s.renamed(t, name)
	ni := framework.NewNodeInfo()
	ni.SetNode(c.Node)
	for _, dp := range c.DaemonPods {
		ni.AddPodInfo(s.snap.entry(dp).info)
	}
	return ni
}

// renamed returns t.renamed(name), made once per name and template.
func (s *Simulator) renamed(t *Template, name string) *Template {
	key := name + "|" + t.Key
	c, ok := s.copies[key]
	if !ok {
		c = t.renamed(name)
		s.copies[key] = c
	}
	return c
}

// probeNodeName names the template being probed in the snapshot.
const probeNodeName = "nodewright-probe"

// independent reports whether whether pod fits a node cannot depend on pods other than the
// DaemonSet pods of a template: it is not constrained (inter-pod constraints, host ports,
// volumes or resource claims of its own: see constrained and filterInteractions) and no
// required anti-affinity term of a pod in the snapshot selects it. Only independent pods'
// verdicts are cached, and only they are packed by arithmetic alone.
func (s *Simulator) independent(pod *v1.Pod) bool {
	return !s.allConstrained && !s.snap.entry(pod).constrained && !s.snap.matchedBy(pod).anti
}

// movable reports whether pod, which is independent, can move to another zone without
// changing another pod's fit: no inter-pod constraint of a pod in the snapshot selects it.
func (s *Simulator) movable(pod *v1.Pod) bool {
	return !s.allConstrained && !s.snap.entry(pod).constrained && !s.snap.matchedBy(pod).any
}

// filterVolumes returns the pod's volumes that a Filter plugin can look at: all but the
// kinds every node serves alike. Pods of one Deployment differ in the name of the service
// account token volume the apiserver adds to each; leaving such volumes out keeps the pods
// alike for the caches (podSignature, snapshot.class).
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

// podSignature identifies pods that the Filter plugins cannot tell apart on an empty
// template: same requests, ports, node selection, tolerations and volumes (filterVolumes).
func podSignature(pod *v1.Pod) string {
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
