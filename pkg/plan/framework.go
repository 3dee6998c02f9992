package plan

import (
	"context"
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	clientsetfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	fwk "k8s.io/kube-scheduler/framework"
	v1helper "k8s.io/kubernetes/pkg/apis/core/v1/helper"
	"k8s.io/kubernetes/pkg/features"
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
// (see ProfilePluginConfig). An enabled plugin neither registry has (the caller's own, such
// as Provision) is left out.
func FrameworkFactoryWith(enabled *config.Plugins, informerFactory informers.SharedInformerFactory, outOfTree frameworkruntime.Registry,
	pluginConfig []config.PluginConfig) FrameworkFactory {
	registry := plugins.NewInTreeRegistry()
	if err := registry.Merge(outOfTree); err != nil {
		return func(context.Context, fwk.SharedLister) (framework.Framework, error) {
			return nil, fmt.Errorf("merging the out-of-tree plugins: %w", err)
		}
	}
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
			if utilfeature.DefaultFeatureGate.Enabled(features.GenericWorkload) {
				// With the gate on, a framework without GangScheduling logs an error each time
				// it is built; a simulation never runs Permit, where it sits here.
				profile.Plugins.Permit = config.PluginSet{Enabled: []config.Plugin{{Name: names.GangScheduling}}}
			}
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
