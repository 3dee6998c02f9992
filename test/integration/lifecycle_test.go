package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	klogtesting "k8s.io/klog/v2/ktesting"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	nwaws "github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/lifecycle"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// lifecycleEnv is what every lifecycle test sets up: a namespace, an emulator joined to the
// sandbox, pkg/aws's provider on it, an EC2NodeClass and a Provisioner named after the
// namespace, and the test's log, which the lifecycle's operator-facing lines are read from.
type lifecycleEnv struct {
	t        *testing.T
	ctx      context.Context
	logger   klog.Logger
	client   kubernetes.Interface
	ns       string
	emulator *emulator.Emulator
	provider *nwaws.Provider
	queue    *nwaws.InterruptionQueue
}

func newLifecycleEnv(t *testing.T, emuOpts emulator.Options, provisioner v1alpha1.ProvisionerSpec) *lifecycleEnv {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	// The test's log, also kept in memory to check the lifecycle's operator-facing lines.
	logger := klogtesting.NewLogger(t, klogtesting.NewConfig(klogtesting.BufferLogs(true)))
	ctx = klog.NewContext(ctx, logger)
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)
	e := framework.Emulator(t, emuOpts)
	framework.ForceDeleteNodesOf(t, e)
	provider, queue := framework.AWSProvider(t, e)
	framework.EC2NodeClass(ctx, t, ns)
	provisioner.NodeClassRef = v1alpha1.NodeClassReference{Name: ns}
	framework.Provisioner(ctx, t, &v1alpha1.Provisioner{ObjectMeta: metav1.ObjectMeta{Name: ns}, Spec: provisioner})
	return &lifecycleEnv{t: t, ctx: ctx, logger: logger, client: client, ns: ns, emulator: e, provider: provider, queue: queue}
}

// start runs a lifecycle Manager on the env's provider, logging to the test's log under
// name, until the returned stop or the end of the test.
func (env *lifecycleEnv) start(name string, opts lifecycle.Options) (stop func()) {
	env.t.Helper()
	opts.Cloud = env.provider
	ctx := klog.NewContext(env.ctx, env.logger.WithName(name))
	return framework.Lifecycle(ctx, env.t, opts)
}

// logs returns what was logged so far in the test.
func (env *lifecycleEnv) logs() string {
	return env.logger.GetSink().(klogtesting.Underlier).GetBuffer().String()
}

// claim creates a NodeClaim of the env's Provisioner for a small on-demand m5 instance (spot
// if spot is set), whose Node carries the label test-namespace=<namespace>.
func (env *lifecycleEnv) claim(name string, spot bool, edit func(*v1alpha1.NodeClaim)) *v1alpha1.NodeClaim {
	env.t.Helper()
	capacityType := v1alpha1.CapacityTypeOnDemand
	if spot {
		capacityType = v1alpha1.CapacityTypeSpot
	}
	nc := &v1alpha1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: env.ns + "-" + name},
		Spec: v1alpha1.NodeClaimSpec{
			Provisioner:  env.ns,
			NodeClassRef: v1alpha1.NodeClassReference{Name: env.ns},
			Requirements: []v1alpha1.NodeSelectorRequirement{
				{Key: "test-namespace", Operator: corev1.NodeSelectorOpIn, Values: []string{env.ns}},
				{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"m5.large", "m5.xlarge"}},
				{Key: v1alpha1.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{capacityType}},
			},
		},
	}
	if edit != nil {
		edit(nc)
	}
	return framework.NodeClaim(env.ctx, env.t, nc)
}

// waitClaim waits until the NodeClaim named name satisfies done, and returns it.
func (env *lifecycleEnv) waitClaim(name, what string, timeout time.Duration, done func(*v1alpha1.NodeClaim) bool) *v1alpha1.NodeClaim {
	env.t.Helper()
	var nc *v1alpha1.NodeClaim
	framework.Eventually(env.ctx, env.t, timeout, "nodeclaim "+name+" "+what, func(ctx context.Context) (bool, error) {
		got, err := framework.GetNodeClaim(ctx, env.t, name)
		if err != nil {
			return false, err
		}
		nc = got
		if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionLaunched); c != nil && c.Status == metav1.ConditionFalse {
			env.t.Logf("nodeclaim %s: launch failed: %s", name, c.Message)
		}
		return done(got), nil
	})
	return nc
}

func conditionTrue(condType string) func(*v1alpha1.NodeClaim) bool {
	return func(nc *v1alpha1.NodeClaim) bool { return meta.IsStatusConditionTrue(nc.Status.Conditions, condType) }
}

// waitTerminated waits until the NodeClaim and its Node are gone and its instance is
// shutting down or terminated in the emulator.
func (env *lifecycleEnv) waitTerminated(nc *v1alpha1.NodeClaim, timeout time.Duration) {
	env.t.Helper()
	framework.Eventually(env.ctx, env.t, timeout, "nodeclaim "+nc.Name+", its node and instance gone", func(ctx context.Context) (bool, error) {
		if _, err := framework.GetNodeClaim(ctx, env.t, nc.Name); !apierrors.IsNotFound(err) {
			return false, err
		}
		if nc.Status.NodeName != "" {
			if _, err := env.client.CoreV1().Nodes().Get(ctx, nc.Status.NodeName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return env.instanceStates(nc.Name) == "1 stopped", nil
	})
}

// instanceStates summarises the emulator's instances for a NodeClaim: "<n> running",
// "<n> stopped" (shutting down or terminated) or a mix, e.g. "1 running, 1 stopped".
func (env *lifecycleEnv) instanceStates(claim string) string {
	running, stopped := 0, 0
	for _, inst := range framework.InstancesOf(env.emulator, claim) {
		switch inst.State {
		case emulator.StateShuttingDown, emulator.StateTerminated:
			stopped++
		default:
			running++
		}
	}
	var parts []string
	if running > 0 {
		parts = append(parts, fmt.Sprintf("%d running", running))
	}
	if stopped > 0 {
		parts = append(parts, fmt.Sprintf("%d stopped", stopped))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// assertOneInstancePerClaim checks that the emulator ever launched exactly one instance for
// each of the claims, and none for anything else: no duplicate, no orphan.
func (env *lifecycleEnv) assertOneInstancePerClaim(claims ...string) {
	env.t.Helper()
	got := map[string]int{}
	for _, inst := range env.emulator.Instances() {
		got[inst.Tags[v1alpha1.TagNodeClaim]]++
	}
	want := map[string]int{}
	for _, c := range claims {
		want[c] = 1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		env.t.Errorf("instances launched per nodeclaim (-want, +got):\n%s", diff)
	}
}

// pausePod is a pod of the namespace that requests a little CPU.
func pausePod(ns, name string) *corev1.Pod {
	return st.MakePod().Namespace(ns).Name(name).Container("registry.k8s.io/pause:3.10").
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "100m"}).Obj()
}

// runPodOn creates pod, binds it to node as a scheduler would, and waits until it runs.
func (env *lifecycleEnv) runPodOn(pod *corev1.Pod, node string) {
	env.t.Helper()
	if _, err := env.client.CoreV1().Pods(env.ns).Create(env.ctx, pod, metav1.CreateOptions{}); err != nil {
		env.t.Fatalf("creating pod %s: %v", pod.Name, err)
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
	if err := env.client.CoreV1().Pods(env.ns).Bind(env.ctx, binding, metav1.CreateOptions{}); err != nil {
		env.t.Fatalf("binding pod %s to %s: %v", pod.Name, node, err)
	}
	framework.Eventually(env.ctx, env.t, 30*time.Second, "pod "+pod.Name+" running on "+node, func(ctx context.Context) (bool, error) {
		p, err := env.client.CoreV1().Pods(env.ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodRunning, nil
	})
}

// assertLogged checks that each line was logged, in that order.
func (env *lifecycleEnv) assertLogged(lines ...string) {
	env.t.Helper()
	logs := env.logs()
	at := 0
	for _, line := range lines {
		i := strings.Index(logs[at:], line)
		if i < 0 {
			env.t.Errorf("%q was not logged (after the previous line)", line)
			continue
		}
		at += i + len(line)
	}
}

// TestLifecycleLaunchesAndInitializes is the first acceptance item of issue 5: a NodeClaim
// created by hand is launched on the emulator with the cluster's tags, its Node joins and
// carries the labels of its instance type and offering and of the claim's requirements, and
// the claim turns Initialized once its startup taint is gone.
func TestLifecycleLaunchesAndInitializes(t *testing.T) {
	env := newLifecycleEnv(t, emulator.Options{}, v1alpha1.ProvisionerSpec{})
	env.start("lifecycle", lifecycle.Options{})
	startup := v1alpha1.Taint{Key: "nodewright.dev/test-startup", Effect: corev1.TaintEffectNoSchedule}
	created := env.claim("a", false, func(nc *v1alpha1.NodeClaim) {
		nc.Spec.StartupTaints = []v1alpha1.Taint{startup}
	})

	nc := env.waitClaim(created.Name, "registered", 60*time.Second, conditionTrue(v1alpha1.ConditionRegistered))
	if meta.IsStatusConditionTrue(nc.Status.Conditions, v1alpha1.ConditionInitialized) {
		t.Errorf("nodeclaim initialized while its node still has the startup taint %s", startup.Key)
	}
	instances := framework.InstancesOf(env.emulator, nc.Name)
	if len(instances) != 1 {
		t.Fatalf("want one instance for nodeclaim %s, got %+v", nc.Name, instances)
	}
	inst := instances[0]
	wantTags := map[string]string{
		v1alpha1.TagCluster:         emulator.DefaultClusterName,
		v1alpha1.TagProvisionerName: env.ns,
		v1alpha1.TagNodeClaim:       nc.Name,
		"Name":                      nc.Name,
	}
	gotTags := map[string]string{}
	for k := range wantTags {
		if v, ok := inst.Tags[k]; ok {
			gotTags[k] = v
		}
	}
	if diff := cmp.Diff(wantTags, gotTags); diff != "" {
		t.Errorf("instance %s tags (-want, +got):\n%s", inst.ID, diff)
	}
	wantStatus := v1alpha1.NodeClaimStatus{
		ProviderID: emulator.ProviderID(inst.Zone, inst.ID), InstanceID: inst.ID, NodeName: inst.PrivateDNSName,
		InstanceType: inst.InstanceType, Zone: inst.Zone, CapacityType: v1alpha1.CapacityTypeOnDemand, ImageID: inst.ImageID,
	}
	gotStatus := v1alpha1.NodeClaimStatus{
		ProviderID: nc.Status.ProviderID, InstanceID: nc.Status.InstanceID, NodeName: nc.Status.NodeName,
		InstanceType: nc.Status.InstanceType, Zone: nc.Status.Zone, CapacityType: nc.Status.CapacityType, ImageID: nc.Status.ImageID,
	}
	if diff := cmp.Diff(wantStatus, gotStatus); diff != "" {
		t.Errorf("nodeclaim status (-want, +got):\n%s", diff)
	}

	node, err := env.client.CoreV1().Nodes().Get(env.ctx, nc.Status.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node: %v", err)
	}
	if !slices.Contains(node.Finalizers, v1alpha1.TerminationFinalizer) {
		t.Errorf("node %s finalizers %v lack %s", node.Name, node.Finalizers, v1alpha1.TerminationFinalizer)
	}
	// The Provision plugin planned the pods onto a node with these labels: the Node must
	// carry them, whether or not the kubelet's user data set them.
	wantLabels := map[string]string{
		"test-namespace":               env.ns,
		v1alpha1.LabelNodeClaim:        nc.Name,
		v1alpha1.LabelProvisionerName:  env.ns,
		v1alpha1.LabelCapacityType:     v1alpha1.CapacityTypeOnDemand,
		corev1.LabelInstanceTypeStable: inst.InstanceType,
		corev1.LabelTopologyZone:       inst.Zone,
		corev1.LabelTopologyRegion:     emulator.Region,
		corev1.LabelArchStable:         "amd64",
		corev1.LabelOSStable:           "linux",
		corev1.LabelHostname:           node.Name,
		v1alpha1.LabelInstanceFamily:   "m5",
		v1alpha1.LabelInstanceSize:     strings.TrimPrefix(inst.InstanceType, "m5."),
		// m5.large: 2 vCPUs and 8 GiB; m5.xlarge: 4 and 16 GiB.
		v1alpha1.LabelInstanceCPU:      map[string]string{"m5.large": "2", "m5.xlarge": "4"}[inst.InstanceType],
		v1alpha1.LabelInstanceMemory:   map[string]string{"m5.large": "8192", "m5.xlarge": "16384"}[inst.InstanceType],
		v1alpha1.LabelInstanceGPUCount: "0",
	}
	gotLabels := map[string]string{}
	for k := range wantLabels {
		if v, ok := node.Labels[k]; ok {
			gotLabels[k] = v
		}
	}
	if diff := cmp.Diff(wantLabels, gotLabels); diff != "" {
		t.Errorf("node %s labels (-want, +got):\n%s", node.Name, diff)
	}

	// The agent that owns the startup taint lifts it once the node is set up.
	removeTaint(env.ctx, t, env.client, node.Name, startup.Key)
	env.waitClaim(nc.Name, "initialized", 30*time.Second, conditionTrue(v1alpha1.ConditionInitialized))
	env.assertOneInstancePerClaim(nc.Name)
	env.assertLogged(fmt.Sprintf("Launched instance: %s, hostname: %s, type: %s, zone: %s, capacityType: on-demand",
		inst.ID, inst.PrivateDNSName, inst.InstanceType, inst.Zone))
}

// removeTaint removes the taint with key from the node, as the agent owning it would.
func removeTaint(ctx context.Context, t *testing.T, client kubernetes.Interface, nodeName, key string) {
	t.Helper()
	framework.Eventually(ctx, t, 10*time.Second, "taint "+key+" removed from "+nodeName, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node.Spec.Taints = slices.DeleteFunc(node.Spec.Taints, func(taint corev1.Taint) bool { return taint.Key == key })
		_, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// TestLifecycleScaleToZero is the scale-to-zero acceptance item: once the last pod of a
// node is deleted, the node is deleted after its Provisioner's ttlSecondsAfterEmpty, its
// instance terminated and its NodeClaim removed, with the seed's log lines.
func TestLifecycleScaleToZero(t *testing.T) {
	env := newLifecycleEnv(t, emulator.Options{}, v1alpha1.ProvisionerSpec{TTLSecondsAfterEmpty: ptr.To[int64](2)})
	env.start("lifecycle", lifecycle.Options{})
	// The startup taint keeps the node from counting as empty before it has its pod.
	startup := v1alpha1.Taint{Key: "nodewright.dev/test-startup", Effect: corev1.TaintEffectNoSchedule}
	created := env.claim("a", false, func(nc *v1alpha1.NodeClaim) {
		nc.Spec.StartupTaints = []v1alpha1.Taint{startup}
	})
	nc := env.waitClaim(created.Name, "registered", 60*time.Second, conditionTrue(v1alpha1.ConditionRegistered))
	pod := pausePod(env.ns, "only-pod")
	env.runPodOn(pod, nc.Status.NodeName)
	removeTaint(env.ctx, t, env.client, nc.Status.NodeName, startup.Key)
	nc = env.waitClaim(nc.Name, "initialized", 30*time.Second, conditionTrue(v1alpha1.ConditionInitialized))
	if meta.FindStatusCondition(nc.Status.Conditions, v1alpha1.ConditionEmpty) != nil {
		t.Fatalf("node %s with a running pod has an Empty condition", nc.Status.NodeName)
	}

	if err := env.client.CoreV1().Pods(env.ns).Delete(env.ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatalf("deleting pod: %v", err)
	}
	deleted := time.Now()
	env.waitTerminated(nc, 30*time.Second)
	if elapsed := time.Since(deleted); elapsed < 2*time.Second {
		t.Errorf("node deleted %s after its last pod, before its 2s TTL", elapsed)
	}
	env.assertLogged("Added TTL to empty node", "Triggering termination after 2s for empty node", "Cordoned node", "Deleted node")
}
