package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	klogtesting "k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	nwaws "github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/pkg/plugins/provision"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// provisionEnv is a namespace, an emulator joined to the sandbox, an EC2NodeClass and a
// Provisioner named after the namespace, and nodewright-scheduler running in-process on
// them (with its lifecycle), logging into the test's log.
type provisionEnv struct {
	t        *testing.T
	ctx      context.Context
	logger   klog.Logger
	client   kubernetes.Interface
	ns       string
	emulator *emulator.Emulator
	class    *v1alpha1.EC2NodeClass
	// prov is the env's Provisioner, named after the namespace.
	prov *v1alpha1.Provisioner
	// config is the scheduler's configuration file, written with the Provision plugin's
	// args, and sched the scheduler running on it.
	config string
	args   map[string]any
	sched  *scheduler.Scheduler
	// registry is the scheduler's out-of-tree plugins; nil for cmd/scheduler's.
	registry []app.Option
}

// enableFilters enables filters in the profile of the env's configuration, after the
// default Filter plugins, and registers them with Provision, as cmd/scheduler registers it
// but with them as its OutOfTree, so that its plans judge with them too.
func (env *provisionEnv) enableFilters(filters map[string]frameworkruntime.PluginFactory) {
	env.t.Helper()
	data, err := os.ReadFile(env.config)
	if err != nil {
		env.t.Fatal(err)
	}
	var cfg map[string]any
	if err := sigsyaml.Unmarshal(data, &cfg); err != nil {
		env.t.Fatal(err)
	}
	profile := cfg["profiles"].([]any)[0].(map[string]any)
	filter := profile["plugins"].(map[string]any)["filter"].(map[string]any)
	outOfTree := frameworkruntime.Registry{}
	for _, name := range slices.Sorted(maps.Keys(filters)) {
		filter["enabled"] = append(filter["enabled"].([]any), map[string]any{"name": name})
		outOfTree[name] = filters[name]
		env.registry = append(env.registry, app.WithPlugin(name, filters[name]))
	}
	if data, err = sigsyaml.Marshal(cfg); err != nil {
		env.t.Fatal(err)
	}
	if err := os.WriteFile(env.config, data, 0o600); err != nil {
		env.t.Fatal(err)
	}
	env.registry = append(env.registry, app.WithPlugin(provision.Name, provision.NewWithOptions(provision.Options{
		NewCloud: nwaws.NewCloud, ConfigFile: env.config, OutOfTree: outOfTree})))
}

// envOption changes how newProvisionEnv starts the emulator or the scheduler.
type envOption func(*envOptions)

// envOptions are the emulator's options and Provision plugin args added to the env's.
type envOptions struct {
	emulator emulator.Options
	args     map[string]any
	// filters are Filter plugins of the test's own, enabled in the profile after the
	// default ones and registered as out-of-tree plugins, with Provision, as
	// cmd/scheduler registers it.
	filters map[string]frameworkruntime.PluginFactory
}

// withFilter adds a Filter plugin of the test's own to the profile.
func withFilter(name string, factory frameworkruntime.PluginFactory) envOption {
	return func(o *envOptions) {
		if o.filters == nil {
			o.filters = map[string]frameworkruntime.PluginFactory{}
		}
		o.filters[name] = factory
	}
}

// newProvisionEnv starts everything; spec's nodeClassRef is set to the test's node class.
// When the test ends, the Provisioner and the pods go first (so that no round plans again),
// then every NodeClaim of the Provisioner, whose Nodes the lifecycle drains and deletes.
func newProvisionEnv(t *testing.T, spec v1alpha1.ProvisionerSpec, opts ...envOption) *provisionEnv {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	// The in-process scheduler logs through the context's logger; buffered, to be read back.
	logger := klogtesting.NewLogger(t, klogtesting.NewConfig(klogtesting.BufferLogs(true)))
	ctx = klog.NewContext(ctx, logger)
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)
	var eopts envOptions
	for _, o := range opts {
		o(&eopts)
	}
	e, class, prov := emulatorProvisioner(ctx, t, ns, eopts.emulator, spec)

	path := filepath.Join(t.TempDir(), "scheduler-config.yaml")
	args := emulatorArgs(t, e)
	maps.Copy(args, eopts.args)
	if err := scheduler.WriteConfig(manifests.SchedulerConfig, path, framework.ControlPlane.Kubeconfig(), args); err != nil {
		t.Fatal(err)
	}
	env := &provisionEnv{t: t, ctx: ctx, logger: logger, client: client, ns: ns, emulator: e, class: class, prov: prov, config: path, args: args}
	if len(eopts.filters) > 0 {
		env.enableFilters(eopts.filters)
	}
	env.startScheduler()
	t.Cleanup(func() {
		if err := env.sched.Stop(); err != nil {
			t.Errorf("the scheduler stopped by itself: %v", err)
		}
	})
	// Registered after the scheduler, so it runs while the scheduler's lifecycle still does.
	t.Cleanup(func() { env.cleanup(prov.Name) })
	return env
}

// emulatorProvisioner starts an EC2 emulator joined to the test cluster (its nodes deleted
// when the test ends) and creates an EC2NodeClass and a Provisioner of spec on it, both named
// ns.
func emulatorProvisioner(ctx context.Context, t *testing.T, ns string, opts emulator.Options, spec v1alpha1.ProvisionerSpec) (
	*emulator.Emulator, *v1alpha1.EC2NodeClass, *v1alpha1.Provisioner) {
	t.Helper()
	e := framework.Emulator(t, opts)
	framework.ForceDeleteNodesOf(t, e)
	class := framework.EC2NodeClass(ctx, t, ns)
	spec.NodeClassRef = v1alpha1.NodeClassReference{Name: class.Name}
	prov := framework.Provisioner(ctx, t, &v1alpha1.Provisioner{ObjectMeta: metav1.ObjectMeta{Name: ns}, Spec: spec})
	return e, class, prov
}

// emulatorArgs are the Provision plugin's args that point it at the emulator e and the test
// control plane, for the shipped configuration (scheduler.WriteConfig).
func emulatorArgs(t *testing.T, e *emulator.Emulator) map[string]any {
	t.Helper()
	cfg := framework.RESTConfig(t)
	return map[string]any{
		"clusterName": emulator.DefaultClusterName, "region": emulator.Region, "endpoint": e.URL(),
		"clusterEndpoint": cfg.Host, "clusterCA": base64.StdEncoding.EncodeToString(cfg.CAData),
		"clusterCIDR": framework.ControlPlane.ServiceCIDR(),
	}
}

// startScheduler starts nodewright-scheduler in-process on the env's configuration.
func (env *provisionEnv) startScheduler() {
	env.t.Helper()
	s, err := scheduler.Start(env.ctx, scheduler.Options{ConfigFile: env.config, Registry: env.registry})
	if err != nil {
		env.t.Fatalf("starting the scheduler: %v", err)
	}
	env.sched = s
}

// restartScheduler stops the scheduler, as a crash or a rollout would, and starts another.
func (env *provisionEnv) restartScheduler() {
	env.t.Helper()
	if err := env.sched.Stop(); err != nil {
		env.t.Fatalf("the scheduler stopped by itself: %v", err)
	}
	env.startScheduler()
}

// setArg sets the Provision plugin's arg key to value and restarts the scheduler with it.
func (env *provisionEnv) setArg(key string, value any) {
	env.t.Helper()
	env.args[key] = value
	if err := scheduler.WriteConfig(manifests.SchedulerConfig, env.config, framework.ControlPlane.Kubeconfig(), env.args); err != nil {
		env.t.Fatal(err)
	}
	env.restartScheduler()
}

// provisioner creates another Provisioner of spec on the env's node class, named
// <namespace>-<suffix>, cleaned up like the env's own.
func (env *provisionEnv) provisioner(suffix string, spec v1alpha1.ProvisionerSpec) string {
	env.t.Helper()
	spec.NodeClassRef = v1alpha1.NodeClassReference{Name: env.class.Name}
	prov := framework.Provisioner(env.ctx, env.t, &v1alpha1.Provisioner{ObjectMeta: metav1.ObjectMeta{Name: env.ns + "-" + suffix}, Spec: spec})
	env.t.Cleanup(func() { env.cleanup(prov.Name) })
	return prov.Name
}

// cleanup removes what the test made the scheduler create, and fails the test if a
// NodeClaim or Node of the Provisioner is left behind.
func (env *provisionEnv) cleanup(provisioner string) {
	t, ctx := env.t, context.Background()
	dyn := framework.Dynamic(t)
	if t.Failed() {
		env.dump(ctx)
	}
	if err := dyn.Resource(framework.ProvisionerGVR).Delete(ctx, provisioner, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting provisioner %s: %v", provisioner, err)
	}
	if err := env.client.AppsV1().Deployments(env.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting deployments: %v", err)
	}
	// Their ReplicaSets too, at once: left to the garbage collector, they recreate the pods
	// deleted below, for the next test's scheduler to provision.
	if err := env.client.AppsV1().ReplicaSets(env.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting replicasets: %v", err)
	}
	if err := env.client.CoreV1().Pods(env.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting pods: %v", err)
	}
	framework.DeleteClaimsOf(ctx, t, env.client, provisioner)
}

// dump logs the namespace's pods and events and the Provisioner's NodeClaims, to tell why.
func (env *provisionEnv) dump(ctx context.Context) {
	if pods, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			env.t.Logf("pod %s: node %q phase %s nominated %q conditions %v", p.Name, p.Spec.NodeName, p.Status.Phase,
				p.Status.NominatedNodeName, p.Status.Conditions)
		}
	}
	if events, err := env.client.EventsV1().Events(env.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range events.Items {
			env.t.Logf("event %s %s %s: %s", e.Regarding.Name, e.Type, e.Reason, e.Note)
		}
	}
	for _, nc := range env.claims() {
		env.t.Logf("nodeclaim %s: status %+v", nc.Name, nc.Status)
	}
}

// inflate creates the seed's `inflate` Deployment (pause, 1 CPU per pod) with 0 replicas,
// after edit (may be nil), then scales it to replicas.
func (env *provisionEnv) inflate(replicas int32, edit func(*corev1.PodSpec)) {
	env.t.Helper()
	env.deployment("inflate", replicas, edit)
}

// deployment creates a Deployment like inflate's, named and labelled app=name.
func (env *provisionEnv) deployment(name string, replicas int32, edit func(*corev1.PodSpec)) {
	env.t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SchedulerName:                 schedulerName,
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name: name, Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
					}},
				},
			},
		},
	}
	if edit != nil {
		edit(&d.Spec.Template.Spec)
	}
	if _, err := env.client.AppsV1().Deployments(env.ns).Create(env.ctx, d, metav1.CreateOptions{}); err != nil {
		env.t.Fatal(err)
	}
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.ns}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	if _, err := env.client.AppsV1().Deployments(env.ns).UpdateScale(env.ctx, name, scale, metav1.UpdateOptions{}); err != nil {
		env.t.Fatal(err)
	}
}

// runningPods waits until want pods of the namespace are Running and bound, and returns them.
func (env *provisionEnv) runningPods(want int) []corev1.Pod {
	env.t.Helper()
	var pods []corev1.Pod
	framework.Eventually(env.ctx, env.t, 90*time.Second, fmt.Sprintf("%d pods running", want), func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
				pods = append(pods, p)
			}
		}
		return len(pods) == want, nil
	})
	return pods
}

// claims returns the NodeClaims of the test's Provisioner.
func (env *provisionEnv) claims() []v1alpha1.NodeClaim {
	env.t.Helper()
	all, err := framework.ListNodeClaims(env.ctx, env.t)
	if err != nil {
		env.t.Fatal(err)
	}
	var out []v1alpha1.NodeClaim
	for _, nc := range all {
		if nc.Spec.Provisioner == env.ns {
			out = append(out, nc)
		}
	}
	return out
}

// nodesOf returns the distinct Nodes pods run on.
func (env *provisionEnv) nodesOf(pods []corev1.Pod) []*corev1.Node {
	env.t.Helper()
	seen := map[string]bool{}
	var out []*corev1.Node
	for _, p := range pods {
		if seen[p.Spec.NodeName] {
			continue
		}
		seen[p.Spec.NodeName] = true
		n, err := env.client.CoreV1().Nodes().Get(env.ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			env.t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// log returns what the test's logger (which the in-process scheduler logs through) recorded.
func (env *provisionEnv) log() string {
	u, ok := env.logger.GetSink().(klogtesting.Underlier)
	if !ok {
		env.t.Fatal("the test logger keeps no log buffer")
	}
	return u.GetBuffer().String()
}

// cheapest returns the least cost, as nodewright counts it for pods requesting cpu (the
// offering's price, the node's volumes, and for a burstable type the cpu above its baseline:
// docs/concepts.md, "The objective"), of an available offering with capacityType of a type
// nodewright buys for plain pods whose allocatable holds cpu, and that cost of instanceType
// in zone with capacityType.
func (env *provisionEnv) cheapest(capacityType string, cpu resource.Quantity, instanceType, zone string) (lowest, got float64) {
	env.t.Helper()
	provider, _ := framework.AWSProvider(env.t, env.emulator)
	its, err := provider.InstanceTypes(env.ctx, env.class, nil)
	if err != nil {
		env.t.Fatal(err)
	}
	lowest, got = math.Inf(1), math.NaN()
	for _, it := range its {
		// The pods select no architecture, request no GPU and name no type: nodewright's
		// defaults leave the rest out.
		if plan.NotForPlainPods(it) != "" {
			continue
		}
		alloc := it.Allocatable()
		fits := alloc.Cpu().Cmp(cpu) >= 0
		// What nodewright weighs besides the price: the node's volumes and, for a burstable
		// type, the cpu above its baseline (the Provisioner's nodeCost is the same for all).
		extra := it.NodeCost + it.SurplusCPUPrice*max(0, float64(cpu.MilliValue())/1000-it.BaselineCPU)
		for _, o := range it.Offerings {
			if o.CapacityType != capacityType {
				continue
			}
			if it.Name == instanceType && o.Zone == zone {
				got = o.Price + extra
			}
			if fits && o.Available && o.Price+extra < lowest {
				lowest = o.Price + extra
			}
		}
	}
	return lowest, got
}

// TestProvisionSeedScenario is the seed: a Provisioner allowing spot, `inflate` scaled from 0
// to 5 -> exactly one NodeClaim and one Node, of the cheapest spot offering that holds the 5
// pods, right-sized (at most 8 vCPUs), all Running on it, and the operator-facing packing line
// logged.
func TestProvisionSeedScenario(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{
		Requirements: []v1alpha1.NodeSelectorRequirement{{Key: v1alpha1.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{v1alpha1.CapacityTypeSpot}}},
	})
	env.inflate(5, nil)
	pods := env.runningPods(5)
	nodes := env.nodesOf(pods)
	if len(nodes) != 1 {
		t.Fatalf("pods run on %d nodes, want 1", len(nodes))
	}
	node := nodes[0]
	if claims := env.claims(); len(claims) != 1 {
		t.Errorf("%d nodeclaims, want 1", len(claims))
	} else if node.Labels[v1alpha1.LabelNodeClaim] != claims[0].Name {
		t.Errorf("node %s is of nodeclaim %q, want %q", node.Name, node.Labels[v1alpha1.LabelNodeClaim], claims[0].Name)
	}
	if got := node.Labels[v1alpha1.LabelCapacityType]; got != v1alpha1.CapacityTypeSpot {
		t.Errorf("node capacity type %q, want spot", got)
	}
	// 5 pods x 1 CPU; the namespace has no DaemonSet and the sandbox runs none.
	lowest, got := env.cheapest(v1alpha1.CapacityTypeSpot, resource.MustParse("5"),
		node.Labels[corev1.LabelInstanceTypeStable], node.Labels[corev1.LabelTopologyZone])
	if got != lowest {
		t.Errorf("node is %s in %s at $%v/h, want the cheapest spot offering holding 5 CPUs ($%v/h)",
			node.Labels[corev1.LabelInstanceTypeStable], node.Labels[corev1.LabelTopologyZone], got, lowest)
	}
	if vcpu := node.Status.Capacity.Cpu().Value(); vcpu > 8 {
		t.Errorf("node %s has %d vCPUs, want at most 8 for 5 x 1 CPU", node.Labels[corev1.LabelInstanceTypeStable], vcpu)
	}
	if want := "Computed packing of 1 node(s) for 5 pod(s) with instance type option(s) ["; !strings.Contains(env.log(), want) {
		t.Errorf("the log has no %q line", want)
	}
}

// waitForEvent waits for an event of the namespace with reason whose note contains substr.
func (env *provisionEnv) waitForEvent(reason, substr string) {
	env.t.Helper()
	framework.Eventually(env.ctx, env.t, 60*time.Second, fmt.Sprintf("a %s event saying %q", reason, substr), func(ctx context.Context) (bool, error) {
		events, err := env.client.EventsV1().Events(env.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Reason == reason && strings.Contains(e.Note, substr) {
				return true, nil
			}
		}
		return false, nil
	})
}

func requirement(key string, values ...string) v1alpha1.NodeSelectorRequirement {
	return v1alpha1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}
}

// TestProvisionConstraints is issue 6's one test per constraint: each plans nodes that the
// real scheduler then binds the pods to, and the nodes carry what the constraint asked for.
func TestProvisionConstraints(t *testing.T) {
	spot := requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)
	tests := []struct {
		name     string
		spec     v1alpha1.ProvisionerSpec
		replicas int32
		edit     func(*corev1.PodSpec)
		// wantLabels must be on every node the pods run on.
		wantLabels map[string]string
		// wantTaint, when set, must be on every node the pods run on.
		wantTaint *corev1.Taint
		// cheapest, when set, is the capacity type of which the node must be the cheapest
		// offering that holds the pods' CPU.
		cheapest string
	}{
		{
			name: "nodeSelector on zone", spec: v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{spot}},
			replicas: 2,
			edit: func(s *corev1.PodSpec) {
				s.NodeSelector = map[string]string{corev1.LabelTopologyZone: "us-east-1c"}
			},
			wantLabels: map[string]string{corev1.LabelTopologyZone: "us-east-1c"},
		},
		{
			name: "arm64 only", spec: v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{spot}},
			replicas: 2,
			edit: func(s *corev1.PodSpec) {
				s.NodeSelector = map[string]string{corev1.LabelArchStable: "arm64"}
			},
			wantLabels: map[string]string{corev1.LabelArchStable: "arm64"},
		},
		{
			name: "amd64 only", spec: v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{spot}},
			replicas: 2,
			edit: func(s *corev1.PodSpec) {
				s.NodeSelector = map[string]string{corev1.LabelArchStable: "amd64"}
			},
			wantLabels: map[string]string{corev1.LabelArchStable: "amd64"},
		},
		{
			name: "provisioner taint tolerated",
			spec: v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{spot},
				Taints: []v1alpha1.Taint{{Key: "nodewright.dev/team", Value: "ml", Effect: corev1.TaintEffectNoSchedule}}},
			replicas: 2,
			edit: func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "nodewright.dev/team", Operator: corev1.TolerationOpEqual, Value: "ml", Effect: corev1.TaintEffectNoSchedule}}
			},
			wantTaint: &corev1.Taint{Key: "nodewright.dev/team", Value: "ml", Effect: corev1.TaintEffectNoSchedule},
		},
		{
			name: "on-demand only",
			spec: v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{
				requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeOnDemand)}},
			replicas:   3,
			wantLabels: map[string]string{v1alpha1.LabelCapacityType: v1alpha1.CapacityTypeOnDemand},
			cheapest:   v1alpha1.CapacityTypeOnDemand,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newProvisionEnv(t, tt.spec)
			env.inflate(tt.replicas, tt.edit)
			pods := env.runningPods(int(tt.replicas))
			nodes := env.nodesOf(pods)
			if claims := env.claims(); len(claims) != len(nodes) {
				t.Errorf("%d nodeclaims for %d nodes", len(claims), len(nodes))
			}
			for _, n := range nodes {
				for k, want := range tt.wantLabels {
					if got := n.Labels[k]; got != want {
						t.Errorf("node %s: label %s = %q, want %q", n.Name, k, got, want)
					}
				}
				if tt.wantTaint != nil && !slices.ContainsFunc(n.Spec.Taints, func(x corev1.Taint) bool { return tt.wantTaint.MatchTaint(&x) && x.Value == tt.wantTaint.Value }) {
					t.Errorf("node %s has taints %v, want %v among them", n.Name, n.Spec.Taints, tt.wantTaint.ToString())
				}
				if n.Labels[v1alpha1.LabelProvisionerName] != env.ns {
					t.Errorf("node %s is not of the test's provisioner: labels %v", n.Name, n.Labels)
				}
			}
			if tt.cheapest != "" && len(nodes) == 1 {
				n := nodes[0]
				cpu := resource.MustParse(fmt.Sprint(tt.replicas))
				lowest, got := env.cheapest(tt.cheapest, cpu, n.Labels[corev1.LabelInstanceTypeStable], n.Labels[corev1.LabelTopologyZone])
				if got != lowest {
					t.Errorf("node is %s in %s at $%v/h, want the cheapest %s offering holding %s CPUs ($%v/h)",
						n.Labels[corev1.LabelInstanceTypeStable], n.Labels[corev1.LabelTopologyZone], got, tt.cheapest, cpu.String(), lowest)
				}
			}
		})
	}
}

// TestProvisionPodLargerThanEveryType: a pod requesting more CPU than any instance type has
// gets no NodeClaim, and an event saying why.
func TestProvisionPodLargerThanEveryType(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{})
	env.inflate(1, func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("1000")
	})
	env.waitForEvent("FailedProvisioning", fmt.Sprintf("no instance type in provisioner %q satisfies: cpu request 1000 > largest allocatable", env.ns))
	if claims := env.claims(); len(claims) != 0 {
		t.Errorf("%d nodeclaims, want none", len(claims))
	}
}

// TestProvisionTaintNotTolerated: a pod that does not tolerate the Provisioner's taint gets
// no NodeClaim, and an event naming the taint.
func TestProvisionTaintNotTolerated(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{
		Taints: []v1alpha1.Taint{{Key: "nodewright.dev/team", Value: "ml", Effect: corev1.TaintEffectNoSchedule}},
	})
	env.inflate(1, nil)
	env.waitForEvent("FailedProvisioning", fmt.Sprintf("provisioner %q: taint nodewright.dev/team=ml:NoSchedule not tolerated", env.ns))
	if claims := env.claims(); len(claims) != 0 {
		t.Errorf("%d nodeclaims, want none", len(claims))
	}
}

// TestProvisionCPULimit: with a cpu limit of 8, launches stop at the limit: the nodes'
// CPUs add up to at most 8, some pods run and the others wait with an event naming the limit.
func TestProvisionCPULimit(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{
		Requirements: []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)},
		Limits:       corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")},
	})
	// 4 pods x 3 CPU = 12 CPU requested: more than 8 CPUs of nodes can hold.
	env.inflate(4, func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("3")
	})
	env.waitForEvent("FailedProvisioning", fmt.Sprintf("provisioner %q: limit cpu 8 reached", env.ns))
	framework.Eventually(env.ctx, t, 60*time.Second, "a pod running", func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
		return err == nil && len(list.Items) > 0, err
	})
	claims := env.claims()
	if len(claims) == 0 {
		t.Fatal("no nodeclaim")
	}
	total := resource.Quantity{}
	for _, nc := range claims {
		framework.Eventually(env.ctx, t, 30*time.Second, "nodeclaim "+nc.Name+" launched", func(ctx context.Context) (bool, error) {
			got, err := framework.GetNodeClaim(ctx, t, nc.Name)
			if err != nil {
				return false, err
			}
			nc = *got
			return nc.Status.InstanceType != "", nil
		})
		nodes, err := env.client.CoreV1().Nodes().List(env.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelNodeClaim + "=" + nc.Name})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes.Items {
			total.Add(*n.Status.Capacity.Cpu())
		}
	}
	if total.Cmp(resource.MustParse("8")) > 0 {
		t.Errorf("nodes have %s CPUs in all, over the limit of 8", total.String())
	}
	list, err := env.client.CoreV1().Pods(env.ns).List(env.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, p := range list.Items {
		if p.Spec.NodeName == "" {
			pending++
		}
	}
	if pending == 0 {
		t.Errorf("every pod was placed, want some left waiting at the limit")
	}
}

// TestProvisionUsesProfilePluginArgs: the simulation's plugins run with the args the
// profile gives the scheduler's. The profile adds a required affinity to on-demand nodes to
// every pod (NodeAffinity's addedAffinity): the Provisioner allows spot and on-demand, and
// spot is cheaper, but only an on-demand node is one the scheduler will bind the pod to.
func TestProvisionUsesProfilePluginArgs(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{
		requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand)}})
	data, err := os.ReadFile(env.config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := sigsyaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	profile := cfg["profiles"].([]any)[0].(map[string]any)
	profile["pluginConfig"] = append(profile["pluginConfig"].([]any), map[string]any{
		"name": "NodeAffinity",
		"args": map[string]any{"addedAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
			"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{
				"key": v1alpha1.LabelCapacityType, "operator": "In", "values": []any{v1alpha1.CapacityTypeOnDemand}}}}},
		}}},
	})
	if data, err = sigsyaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.config, data, 0o600); err != nil {
		t.Fatal(err)
	}
	env.restartScheduler()
	env.inflate(1, nil)
	nodes := env.nodesOf(env.runningPods(1))
	if got := nodes[0].Labels[v1alpha1.LabelCapacityType]; got != v1alpha1.CapacityTypeOnDemand {
		t.Errorf("the pod runs on a %s node, want on-demand", got)
	}
}

// withArgs adds args to the Provision plugin's.
func withArgs(args map[string]any) envOption {
	return func(o *envOptions) {
		if o.args == nil {
			o.args = map[string]any{}
		}
		maps.Copy(o.args, args)
	}
}
