package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/component-base/configz"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/lifecycle"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestLifecyclePodDisruptionBudgetBlocksDrain is the PodDisruptionBudget acceptance item: a
// budget with maxUnavailable 0 keeps the node (cordoned) and its pod while it stands; once
// it is relaxed the pod is evicted and the node goes.
func TestLifecyclePodDisruptionBudgetBlocksDrain(t *testing.T) {
	env := newLifecycleEnv(t, emulator.Options{}, v1alpha1.ProvisionerSpec{})
	env.start("lifecycle", lifecycle.Options{})
	startPlainScheduler(env.ctx, t)
	created := env.claim("a", false, nil)
	nc := env.waitClaim(created.Name, "initialized", 60*time.Second, conditionTrue(v1alpha1.ConditionInitialized))
	// The budget needs a controller with a scale to count maxUnavailable against.
	labels := map[string]string{"app": "guarded"}
	env.createDeployment("guarded", 1, labels)
	pod := env.waitPodsRunningOn(labels, 1, nc.Status.NodeName)[0]
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded", Namespace: env.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	pdb, err := env.client.PolicyV1().PodDisruptionBudgets(env.ns).Create(env.ctx, pdb, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the budget: %v", err)
	}
	// The eviction API reads the budget's status: wait for the disruption controller to
	// have computed it, or the eviction would be refused for want of it rather than by it.
	framework.Eventually(env.ctx, t, 30*time.Second, "budget observed", func(ctx context.Context) (bool, error) {
		got, err := env.client.PolicyV1().PodDisruptionBudgets(env.ns).Get(ctx, pdb.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Status.ObservedGeneration >= got.Generation && got.Status.ExpectedPods == 1, nil
	})

	if err := framework.Dynamic(t).Resource(framework.NodeClaimGVR).Delete(env.ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting nodeclaim: %v", err)
	}
	// Two refusals: the drain retried and the budget still held.
	framework.Eventually(env.ctx, t, 30*time.Second, "eviction refused by the budget twice", func(ctx context.Context) (bool, error) {
		return countLines(env.logs(), "Eviction refused by a disruption budget", pod.Name) >= 2, nil
	})
	node, err := env.client.CoreV1().Nodes().Get(env.ctx, nc.Status.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the node of a blocked drain: %v", err)
	}
	if !node.Spec.Unschedulable {
		t.Errorf("node %s being drained is not cordoned", node.Name)
	}
	got, err := env.client.CoreV1().Pods(env.ns).Get(env.ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pod the budget protects: %v", err)
	}
	if got.DeletionTimestamp != nil {
		t.Errorf("pod %s deleted although its budget allows no disruption", pod.Name)
	}
	if states := env.instanceStates(nc.Name); states != "1 running" {
		t.Errorf("instance of a blocked drain: %s, want 1 running", states)
	}

	pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	framework.Eventually(env.ctx, t, 10*time.Second, "budget relaxed", func(ctx context.Context) (bool, error) {
		current, err := env.client.PolicyV1().PodDisruptionBudgets(env.ns).Get(ctx, pdb.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		current.Spec.MaxUnavailable = pdb.Spec.MaxUnavailable
		_, err = env.client.PolicyV1().PodDisruptionBudgets(env.ns).Update(ctx, current, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	env.waitTerminated(nc, 45*time.Second)
	if _, err := env.client.CoreV1().Pods(env.ns).Get(env.ctx, pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod %s after the drain: %v, want it gone", pod.Name, err)
	}
	env.assertLogged("Cordoned node", "Eviction refused by a disruption budget", "Evicted pod", "Deleted node")
}

// TestLifecycleRestarts is the restart acceptance item: the lifecycle is killed while it
// launches (the cloud call in flight) and again between launch and registration; each time a
// new one takes over, and in the end each NodeClaim has exactly one instance and the
// emulator holds no other.
func TestLifecycleRestarts(t *testing.T) {
	// The join delay leaves time to kill the lifecycle between launch and registration.
	const joinDelay = 4 * time.Second
	env := newLifecycleEnv(t, emulator.Options{JoinDelay: joinDelay}, v1alpha1.ProvisionerSpec{})
	env.emulator.SetLatency("CreateFleet", 10*time.Second)
	stop := env.start("first", lifecycle.Options{})
	a, b := env.claim("a", false, nil), env.claim("b", false, nil)

	framework.Eventually(env.ctx, t, 30*time.Second, "both launches calling CreateFleet", func(context.Context) (bool, error) {
		return len(env.emulator.CallsOf("CreateFleet")) >= 2, nil
	})
	stop()
	for _, name := range []string{a.Name, b.Name} {
		nc, err := framework.GetNodeClaim(env.ctx, t, name)
		if err != nil {
			t.Fatal(err)
		}
		if meta.IsStatusConditionTrue(nc.Status.Conditions, v1alpha1.ConditionLaunched) {
			t.Fatalf("nodeclaim %s launched although CreateFleet was still delayed", name)
		}
		if !slices.Contains(nc.Finalizers, v1alpha1.TerminationFinalizer) {
			t.Errorf("nodeclaim %s has no termination finalizer during its launch", name)
		}
	}
	env.emulator.SetLatency("CreateFleet", 0)

	stop = env.start("second", lifecycle.Options{})
	for _, name := range []string{a.Name, b.Name} {
		env.waitClaim(name, "launched", 30*time.Second, conditionTrue(v1alpha1.ConditionLaunched))
	}
	stop()
	for _, inst := range env.emulator.Instances() {
		if inst.NodeName != "" {
			t.Fatalf("instance %s joined within %s of launch; the test needs a longer join delay", inst.ID, time.Since(inst.LaunchTime))
		}
	}

	env.start("third", lifecycle.Options{})
	var joined []*v1alpha1.NodeClaim
	for _, name := range []string{a.Name, b.Name} {
		joined = append(joined, env.waitClaim(name, "initialized", 30*time.Second, conditionTrue(v1alpha1.ConditionInitialized)))
	}
	env.assertOneInstancePerClaim(a.Name, b.Name)

	// Termination works after the restarts too.
	for _, nc := range joined {
		if err := framework.Dynamic(t).Resource(framework.NodeClaimGVR).Delete(env.ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting nodeclaim: %v", err)
		}
	}
	for _, nc := range joined {
		env.waitTerminated(nc, 30*time.Second)
	}
	env.assertOneInstancePerClaim(a.Name, b.Name)
}

// TestLifecycleRegistrationTimeout is the registration timeout acceptance item: an instance
// whose Node never joins is terminated once the registration timeout has passed since its
// launch, and its NodeClaim removed.
func TestLifecycleRegistrationTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	env := newLifecycleEnv(t, emulator.Options{}, v1alpha1.ProvisionerSpec{})
	env.emulator.NeverJoinNext(1)
	env.start("lifecycle", lifecycle.Options{RegistrationTimeout: timeout})
	created := env.claim("a", false, nil)
	nc := env.waitClaim(created.Name, "launched", 30*time.Second, conditionTrue(v1alpha1.ConditionLaunched))
	if insts := framework.InstancesOf(env.emulator, nc.Name); len(insts) != 1 || !insts[0].NeverJoin {
		t.Fatalf("want one instance that never joins, got %+v", insts)
	}
	env.waitTerminated(nc, 30*time.Second)
	if elapsed := time.Since(nc.Status.LaunchTime.Time); elapsed < timeout {
		t.Errorf("instance terminated %s after launch, before the %s registration timeout", elapsed, timeout)
	}
	env.assertLogged("Node did not join in time, terminating its instance")
	env.assertOneInstancePerClaim(nc.Name)
}

// lifecycleTestScheduler is the profile of the scheduler the interruption test runs: the
// default plugins only, so that its pods move to the remaining node without nodewright.
const lifecycleTestScheduler = "lifecycle-test-scheduler"

// schedulerConfigz is the name kube-scheduler registers its configuration under in configz.
const schedulerConfigz = "componentconfig"

// startPlainScheduler runs kube-scheduler's default profile as lifecycleTestScheduler in the
// test's process until the test ends.
func startPlainScheduler(ctx context.Context, t *testing.T) {
	t.Helper()
	config := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: %s
`, lifecycleTestScheduler)
	path := filepath.Join(t.TempDir(), "scheduler-config.yaml")
	if err := scheduler.WriteConfig([]byte(config), path, framework.ControlPlane.Kubeconfig(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	// kube-scheduler registers its configuration for /configz in a process-wide registry and
	// never removes it, so a second scheduler in the process fails to run unless the first
	// one's entry is removed; this test's scheduler removes its own when it stops.
	configz.Delete(schedulerConfigz)
	s, err := scheduler.Start(ctx, scheduler.Options{ConfigFile: path, Registry: []app.Option{}})
	if err != nil {
		t.Fatalf("starting the scheduler: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("the scheduler stopped by itself: %v", err)
		}
		configz.Delete(schedulerConfigz)
	})
}

// TestLifecycleSpotInterruption is the interruption acceptance item: a spot interruption
// warning for a node's instance drains and removes the node before the instance is taken,
// and the pods of a Deployment on it run on another node afterwards.
func TestLifecycleSpotInterruption(t *testing.T) {
	// EC2 gives two minutes; the test needs only the drain to finish before the instance goes.
	env := newLifecycleEnv(t, emulator.Options{SpotInterruptionNotice: 20 * time.Second}, v1alpha1.ProvisionerSpec{})
	env.start("lifecycle", lifecycle.Options{Queue: env.queue})
	startPlainScheduler(env.ctx, t)
	created := env.claim("a", true, nil)
	nc := env.waitClaim(created.Name, "initialized", 60*time.Second, conditionTrue(v1alpha1.ConditionInitialized))
	if nc.Status.CapacityType != v1alpha1.CapacityTypeSpot {
		t.Fatalf("nodeclaim capacity type %q, want spot", nc.Status.CapacityType)
	}

	labels := map[string]string{"app": "interrupted"}
	env.createDeployment("interrupted", 2, labels)
	env.waitPodsRunningOn(labels, 2, nc.Status.NodeName)

	// The node the pods can move to, created only now so that they first ran on the
	// interrupted one.
	spare := framework.Node(env.ctx, t, env.client, st.MakeNode().Name("spare-"+env.ns).
		Label(corev1.LabelHostname, "spare-"+env.ns).Label("test-namespace", env.ns).
		Capacity(map[corev1.ResourceName]string{corev1.ResourceCPU: "4", corev1.ResourceMemory: "16Gi", corev1.ResourcePods: "110"}).Obj())

	if err := env.emulator.InterruptSpot(nc.Status.InstanceID); err != nil {
		t.Fatalf("interrupting %s: %v", nc.Status.InstanceID, err)
	}
	interrupted := time.Now()
	env.waitTerminated(nc, 20*time.Second)
	env.waitPodsRunningOn(labels, 2, spare.Name)
	if elapsed := time.Since(interrupted); elapsed >= 20*time.Second {
		t.Errorf("node drained %s after the warning, not before the instance was taken", elapsed)
	}
	env.assertLogged("Deleting interrupted node", "Cordoned node", "Evicted pod", "Deleted node")
	if got := countLines(env.logs(), "Evicted pod"); got != 2 {
		t.Errorf("%d pods evicted, want the Deployment's 2", got)
	}
}

// createDeployment creates a Deployment of replicas pause pods for lifecycleTestScheduler,
// restricted to the test's nodes (labelled test-namespace=<namespace>).
func (env *lifecycleEnv) createDeployment(name string, replicas int32, labels map[string]string) {
	env.t.Helper()
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SchedulerName: lifecycleTestScheduler,
					NodeSelector:  map[string]string{"test-namespace": env.ns},
					Containers: []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}},
				},
			},
		},
	}
	if _, err := env.client.AppsV1().Deployments(env.ns).Create(env.ctx, deployment, metav1.CreateOptions{}); err != nil {
		env.t.Fatalf("creating deployment %s: %v", name, err)
	}
}

// waitPodsRunningOn waits until exactly n pods with labels exist in the namespace, all
// running on node, and returns them.
func (env *lifecycleEnv) waitPodsRunningOn(labels map[string]string, n int, node string) []corev1.Pod {
	env.t.Helper()
	var running []corev1.Pod
	selector := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels})
	framework.Eventually(env.ctx, env.t, 45*time.Second, fmt.Sprintf("%d pods running on %s", n, node), func(ctx context.Context) (bool, error) {
		pods, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		if len(pods.Items) != n {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName != node || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				return false, nil
			}
		}
		running = pods.Items
		return true, nil
	})
	return running
}

// TestLifecycleTwoReplicas is the leader election acceptance item: with two lifecycle
// Managers on the same Lease, one acts and each NodeClaim is launched once; when the leader
// stops, the other takes over, launches what is new and nothing twice.
func TestLifecycleTwoReplicas(t *testing.T) {
	env := newLifecycleEnv(t, emulator.Options{}, v1alpha1.ProvisionerSpec{})
	replicas := map[string]func(){}
	for _, name := range []string{"replica-1", "replica-2"} {
		replicas[name] = env.start(name, lifecycle.Options{})
	}
	a, b := env.claim("a", false, nil), env.claim("b", false, nil)
	for _, name := range []string{a.Name, b.Name} {
		env.waitClaim(name, "initialized", 60*time.Second, conditionTrue(v1alpha1.ConditionInitialized))
	}
	env.assertOneInstancePerClaim(a.Name, b.Name)
	logs := env.logs()
	var leaders []string
	for name := range replicas {
		if strings.Contains(logs, name+"/lifecycle: Acquired lifecycle lease") {
			leaders = append(leaders, name)
		}
	}
	if len(leaders) != 1 {
		t.Fatalf("replicas that acquired the lease: %v, want one", leaders)
	}
	for _, name := range []string{a.Name, b.Name} {
		if got := countLines(logs, "Launched instance: ", name); got != 1 {
			t.Errorf("%d \"Launched instance\" lines for %s, want 1", got, name)
		}
	}

	// The leader goes away: the other replica takes over.
	replicas[leaders[0]]()
	c := env.claim("c", false, nil)
	env.waitClaim(c.Name, "initialized", 60*time.Second, conditionTrue(v1alpha1.ConditionInitialized))
	env.assertOneInstancePerClaim(a.Name, b.Name, c.Name)
	logs = env.logs()
	if got := strings.Count(logs, "Acquired lifecycle lease"); got != 2 {
		t.Errorf("the lease was acquired %d times, want twice: once by each replica", got)
	}
	for _, name := range []string{a.Name, b.Name, c.Name} {
		if got := countLines(logs, "Launched instance: ", name); got != 1 {
			t.Errorf("%d \"Launched instance\" lines for %s, want 1", got, name)
		}
	}
}

// countLines counts the lines of logs that contain every one of parts.
func countLines(logs string, parts ...string) int {
	n := 0
	for line := range strings.Lines(logs) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}
