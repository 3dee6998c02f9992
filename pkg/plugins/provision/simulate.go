package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	clientsetfake "k8s.io/client-go/kubernetes/fake"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
)

// FrameworkFactory builds the scheduler framework a round simulates with, reading the
// cluster from lister. Only its PreFilter and Filter plugins are used.
type FrameworkFactory func(ctx context.Context, lister fwk.SharedLister) (framework.Framework, error)

// DefaultFrameworkFactory returns a factory of frameworks with the in-tree plugins and their
// default args: the PreFilter and Filter plugins of enabled when it is not nil (a running
// scheduler's profile, see framework.Framework.ListPlugins), else kube-scheduler's default
// profile. Only PreFilter and Filter ever run.
// informerFactory feeds the plugins that read the cluster (volumes, CSI nodes); nil means an
// empty cluster, as in tests.
func DefaultFrameworkFactory(enabled *config.Plugins, informerFactory informers.SharedInformerFactory) FrameworkFactory {
	return FrameworkFactoryWith(enabled, informerFactory, nil)
}

// FrameworkFactoryWith is DefaultFrameworkFactory with the out-of-tree plugins of
// outOfTree too, so that a profile's own Filter plugins judge the templates as they will
// judge the nodes. Provision itself, and any enabled plugin neither registry has, is left out.
func FrameworkFactoryWith(enabled *config.Plugins, informerFactory informers.SharedInformerFactory, outOfTree frameworkruntime.Registry) FrameworkFactory {
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
		if enabled != nil {
			// Only what deciding feasibility needs, plus the queue sort and bind plugins the
			// framework insists on (they never run here).
			profile.Plugins = &config.Plugins{PreFilter: keep(enabled.PreFilter), Filter: keep(enabled.Filter),
				QueueSort: enabled.QueueSort, Bind: enabled.Bind}
		} else {
			profile.Plugins.MultiPoint = keep(profile.Plugins.MultiPoint)
			profile.Plugins.PreFilter = keep(profile.Plugins.PreFilter)
			profile.Plugins.Filter = keep(profile.Plugins.Filter)
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
	// Checks counts PreFilter+Filter runs, CacheHits the verdicts reused.
	Checks, CacheHits int
}

// NewSimulator returns a simulator over the cluster's nodes and pods.
func NewSimulator(ctx context.Context, newFramework FrameworkFactory, nodes []*v1.Node, pods []*v1.Pod) (*Simulator, error) {
	snap := newSnapshot(nodes, pods)
	fw, err := newFramework(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("building the scheduler framework: %w", err)
	}
	return &Simulator{fw: fw, snap: snap, verdicts: map[string]*fwk.Status{}}, nil
}

// Check runs the PreFilter plugins for pod over the snapshot and then the Filter plugins
// on the node named nodeName: the scheduling cycle the scheduler would run if that node were
// the only candidate. pod must not be in the snapshot.
func (s *Simulator) Check(ctx context.Context, pod *v1.Pod, nodeName string) *fwk.Status {
	s.Checks++
	ni, ok := s.snap.nodes[nodeName]
	if !ok {
		return fwk.NewStatus(fwk.Error, fmt.Sprintf("node %s is not in the snapshot", nodeName))
	}
	state := framework.NewCycleState()
	result, status, _ := s.fw.RunPreFilterPlugins(ctx, state, pod)
	if !status.IsSuccess() {
		return status
	}
	if !result.AllNodes() && !result.NodeNames.Has(nodeName) {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "node is not among the nodes PreFilter selected")
	}
	return s.fw.RunFilterPlugins(ctx, state, pod, ni)
}

// CheckEmpty is Check on template t with nothing but its DaemonSet pods. The verdict is
// cached for pods that do not depend on other pods (see independent).
func (s *Simulator) CheckEmpty(ctx context.Context, pod *v1.Pod, sig string, t *Template) *fwk.Status {
	cacheable := s.independent(pod)
	key := sig + "|" + t.Key
	if cacheable {
		if st, ok := s.verdicts[key]; ok {
			s.CacheHits++
			return st
		}
	}
	probe := t.renamed(probeNodeName)
	s.snap.addNode(probe.Node, probe.DaemonPods...)
	st := s.Check(ctx, pod, probeNodeName)
	s.snap.removeNode(probeNodeName)
	if cacheable {
		s.verdicts[key] = st
	}
	return st
}

// probeNodeName names the template being probed in the snapshot.
const probeNodeName = "nodewright-probe"

// independent reports whether whether pod fits a node can depend on pods other than the
// DaemonSet pods of a template: inter-pod (anti-)affinity, topology spread, volumes and
// resource claims, or an existing pod's required anti-affinity. Only independent pods'
// verdicts are cached.
func (s *Simulator) independent(pod *v1.Pod) bool {
	if a := pod.Spec.Affinity; a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil) {
		return false
	}
	if len(pod.Spec.TopologySpreadConstraints) > 0 || len(pod.Spec.ResourceClaims) > 0 {
		return false
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			return false
		}
	}
	anti, _ := s.snap.HavePodsWithRequiredAntiAffinityList()
	return len(anti) == 0
}

// podSignature identifies pods that the Filter plugins cannot tell apart on an empty
// template: same requests, ports, node selection, tolerations and volumes.
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
		pod.Spec.Volumes, pod.Spec.Resources, pod.Spec.NodeName, pod.Spec.OS}
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
