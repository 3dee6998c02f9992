package gang

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/sandbox"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
	"github.com/nodewright/nodewright/test/integration/framework"
)

const gpu = corev1.ResourceName("nvidia.com/gpu")

// gangEnv is a namespace, an EC2 emulator, a Provisioner named after the namespace and
// nodewright-scheduler with the shipped configuration and the Workload gates on.
type gangEnv struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	ns     string
	e      *emulator.Emulator
}

// newGangEnv starts a gang test's environment: a Provisioner of spec (its node class set)
// and the scheduler with args over the emulator's. opts change them.
func newGangEnv(t *testing.T, limits corev1.ResourceList, opts ...func(spec *v1alpha1.ProvisionerSpec, args map[string]any)) *gangEnv {
	t.Helper()
	// Not t.Context(): it ends before the cleanups, which need the scheduler's lifecycle to
	// delete the claims. This one ends after them (ktesting cancels it in a cleanup registered
	// first). The in-process scheduler logs through it, into the test's log.
	_, ctx := ktesting.NewTestContext(t)
	client := framework.Client(t)
	env := &gangEnv{t: t, ctx: ctx, client: client, ns: framework.Namespace(ctx, t, client)}
	env.e = framework.Emulator(t, emulator.Options{})
	framework.ForceDeleteNodesOf(t, env.e)
	// A node without GPUs, as the one the scheduler itself runs on: a cluster has nodes. (With
	// none, Kubernetes 1.37 ends a PodGroup's cycle in an error before any PodGroupPostFilter,
	// and only PreEnqueue's hold brings its pods to a round.)
	name := "system-" + env.ns
	framework.Node(ctx, t, client, st.MakeNode().Name(name).Label(corev1.LabelHostname, name).
		Capacity(map[corev1.ResourceName]string{corev1.ResourceCPU: "2", corev1.ResourceMemory: "8Gi", corev1.ResourcePods: "110"}).Obj())
	class := framework.EC2NodeClass(ctx, t, env.ns)
	spec := v1alpha1.ProvisionerSpec{NodeClassRef: v1alpha1.NodeClassReference{Name: class.Name}, Limits: limits}
	cfg := framework.RESTConfig(t)
	config := filepath.Join(t.TempDir(), "scheduler-config.yaml")
	args := map[string]any{"clusterName": emulator.DefaultClusterName, "region": emulator.Region, "endpoint": env.e.URL(),
		"clusterEndpoint": cfg.Host, "clusterCA": base64.StdEncoding.EncodeToString(cfg.CAData), "clusterCIDR": framework.ControlPlane.ServiceCIDR()}
	for _, o := range opts {
		o(&spec, args)
	}
	framework.Provisioner(ctx, t, &v1alpha1.Provisioner{ObjectMeta: metav1.ObjectMeta{Name: env.ns}, Spec: spec})
	if err := scheduler.WriteConfig(manifests.SchedulerConfig, config, framework.ControlPlane.Kubeconfig(), args); err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.Start(ctx, scheduler.Options{ConfigFile: config, Flags: []string{"--feature-gates=" + strings.Join(sandbox.WorkloadGates, ",")}})
	if err != nil {
		t.Fatalf("starting the scheduler: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("the scheduler stopped by itself: %v", err)
		}
	})
	// Registered after the scheduler, so it runs while the scheduler's lifecycle still does.
	t.Cleanup(env.cleanup)
	return env
}

// cleanup deletes the Jobs, pods and NodeClaims of the test, and waits for the claims and
// their nodes to go.
func (env *gangEnv) cleanup() {
	ctx, t := context.Background(), env.t
	dyn := framework.Dynamic(t)
	// The Provisioner first: no round plans for the pods that go below meanwhile.
	if err := dyn.Resource(framework.ProvisionerGVR).Delete(ctx, env.ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting provisioner %s: %v", env.ns, err)
	}
	if err := env.client.BatchV1().Jobs(env.ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting jobs: %v", err)
	}
	if err := env.client.CoreV1().Pods(env.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting pods: %v", err)
	}
	framework.DeleteClaimsOf(ctx, t, env.client, env.ns)
}

// gpuJob creates the Job of manifests/examples/gang/train.yaml (pods of one GPU each, a gang
// of all of them) named name, of n pods; opts change its pods.
func (env *gangEnv) gpuJob(name string, n int32, opts ...func(*corev1.PodSpec)) {
	env.t.Helper()
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(env.t), "manifests", "examples", "gang", "train.yaml"))
	if err != nil {
		env.t.Fatal(err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(data, &job); err != nil {
		env.t.Fatalf("manifests/examples/gang/train.yaml: %v", err)
	}
	job.Name = name
	job.Spec.Parallelism, job.Spec.Completions = ptr.To(n), ptr.To(n)
	job.Spec.Scheduling.SchedulingPolicy.Gang.MinCount = ptr.To(n)
	for _, o := range opts {
		o(&job.Spec.Template.Spec)
	}
	if _, err := env.client.BatchV1().Jobs(env.ns).Create(env.ctx, &job, metav1.CreateOptions{}); err != nil {
		env.t.Fatalf("creating job %s: %v", name, err)
	}
}

// claims returns the names of the Provisioner's NodeClaims.
func (env *gangEnv) claims() []string {
	env.t.Helper()
	list, err := framework.Dynamic(env.t).Resource(framework.NodeClaimGVR).List(env.ctx,
		metav1.ListOptions{LabelSelector: v1alpha1.LabelProvisionerName + "=" + env.ns})
	if err != nil {
		env.t.Fatal(err)
	}
	var names []string
	for _, u := range list.Items {
		names = append(names, u.GetName())
	}
	return names
}

// gangsPlanned returns nodewright_gangs_planned_total{result} of this process's scheduler.
func gangsPlanned(t *testing.T, result string) float64 {
	t.Helper()
	return framework.Counter(t, "nodewright_gangs_planned_total", map[string]string{"result": result})
}

// TestGangOverLimitGetsNothing is issue 18's second acceptance item: the same gang under a
// Provisioner whose GPU limit allows 6 gets no NodeClaim and no instance, and an event on its
// PodGroup names the limit; raising the limit to 8 lets the gang run.
func TestGangOverLimitGetsNothing(t *testing.T) {
	env := newGangEnv(t, corev1.ResourceList{gpu: resource.MustParse("6")})
	env.gpuJob("train", 8)
	var group string
	framework.Eventually(env.ctx, t, 60*time.Second, "an event on the job's PodGroup naming the GPU limit", func(ctx context.Context) (bool, error) {
		events, err := env.client.EventsV1().Events(env.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range events.Items {
			if ev.Regarding.Kind == "PodGroup" && ev.Reason == "FailedProvisioning" && strings.Contains(ev.Note, "limit "+string(gpu)) {
				group = ev.Regarding.Name
				return true, nil
			}
		}
		return false, nil
	})
	// A round after the event writes nothing either.
	time.Sleep(3 * time.Second)
	if claims := env.claims(); len(claims) > 0 {
		t.Fatalf("nodeclaims %v written for gang %s over the limit", claims, group)
	}
	if n := len(env.e.Instances()); n > 0 {
		t.Fatalf("%d instances launched for gang %s over the limit", n, group)
	}
	if got := gangsPlanned(t, "unplanned"); got == 0 {
		t.Error("no gang counted unplanned")
	}

	// Raised to 8, the limit lets the gang run.
	dyn := framework.Dynamic(t)
	patch := []byte(`{"spec":{"limits":{"` + string(gpu) + `":"8"}}}`)
	if _, err := dyn.Resource(framework.ProvisionerGVR).Patch(env.ctx, env.ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("raising the provisioner's GPU limit: %v", err)
	}
	framework.Eventually(env.ctx, t, 120*time.Second, "the gang's 8 pods bound once the limit allows 8 GPUs", func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName!="})
		return err == nil && len(list.Items) == 8, err
	})
}

// TestGangBindsTogether is issue 18's first acceptance item: a Job of 8 pods of one GPU, a
// gang of minCount 8, gets the NodeClaims of all 8 in one round, all 8 pods bind, and none
// binds before the nodes of all 8 are Ready; the scheduler tries the gang once, when they are. Throttled CreateFleet calls spread the launches
// over seconds, so that a pod bound as soon as its own node registered would show.
func TestGangBindsTogether(t *testing.T) {
	env := newGangEnv(t, nil)
	written := gangsPlanned(t, "written") // the process's counter: other tests' gangs count too
	env.e.Throttle("CreateFleet", 3)
	env.gpuJob("train", 8)
	var pods []corev1.Pod
	framework.Eventually(env.ctx, t, 120*time.Second, "the gang's 8 pods bound", func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 8 {
			return false, err
		}
		for _, pod := range list.Items {
			if pod.Spec.NodeName == "" {
				return false, nil
			}
		}
		pods = list.Items
		return true, nil
	})
	if got := gangsPlanned(t, "written") - written; got != 1 {
		t.Errorf("gangs written: %v, want 1 (one round for the whole gang)", got)
	}
	// Every node of the gang was Ready before the first pod bound: the binding's time (the
	// PodScheduled condition, set by the apiserver) is not before any node's Ready time (both
	// in whole seconds).
	var lastReady time.Time
	var lastNode string
	for _, pod := range pods {
		node, err := env.client.CoreV1().Nodes().Get(env.ctx, pod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s's node: %v", pod.Name, err)
		}
		if node.Labels[v1alpha1.LabelProvisionerName] != env.ns {
			t.Fatalf("pod %s bound to node %s, not one of provisioner %s's", pod.Name, node.Name, env.ns)
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && c.LastTransitionTime.After(lastReady) {
				lastReady, lastNode = c.LastTransitionTime.Time, node.Name
			}
		}
	}
	for _, pod := range pods {
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && c.LastTransitionTime.Time.Before(lastReady) {
				t.Errorf("pod %s bound at %s, before node %s of the gang was Ready at %s", pod.Name,
					c.LastTransitionTime.Format(time.TimeOnly), lastNode, lastReady.Format(time.TimeOnly))
			}
		}
	}
	if claims := env.claims(); len(claims) == 0 || len(claims) > 8 {
		t.Errorf("nodeclaims %v for a gang of 8", claims)
	}
	// The gang was not tried on its nodes before they were all initialized: no cycle failed on
	// a node's not-ready taint (each would write the status of the 8 pods, and back the gang
	// off). (One may fail before: the scheduler tries the gang on the node without GPUs, where
	// its pods fit by CPU and memory, and PreEnqueue does not hold them; that cycle brings it
	// to the round, and one more may run from the backoff queue before its pods were reserved.)
	events, err := env.client.EventsV1().Events(env.ns).List(env.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events.Items {
		if ev.Regarding.Kind == "Pod" && ev.Reason == "FailedScheduling" && strings.Contains(ev.Note, "taint") {
			t.Errorf("pod %s failed a scheduling cycle: %s", ev.Regarding.Name, ev.Note)
		}
	}
}

// TestGangAndSinglePodsInOneRound is issue 18's fifth acceptance item: a gang and single pods
// arriving together are planned in one round, the single pods as before (each its node, by
// the same rules), and all of them bind.
func TestGangAndSinglePodsInOneRound(t *testing.T) {
	env := newGangEnv(t, nil)
	rounds, written := framework.Counter(t, "nodewright_provisioning_rounds_total", map[string]string{"result": "planned"}), gangsPlanned(t, "written")
	env.gpuJob("train", 4)
	// Single pods of 3 CPUs: none fits the node without GPUs.
	single := st.MakePod().Label("app", "web").SchedulerName("nodewright-scheduler").
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "3", corev1.ResourceMemory: "1Gi"}).Obj()
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](6),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: single.Labels}, Spec: single.Spec},
		},
	}
	if _, err := env.client.AppsV1().Deployments(env.ns).Create(env.ctx, deployment, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	framework.Eventually(env.ctx, t, 120*time.Second, "the 6 single pods and the gang's 4 bound", func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName!="})
		return err == nil && len(list.Items) == 10, err
	})
	if got := gangsPlanned(t, "written") - written; got != 1 {
		t.Errorf("gangs written: %v, want 1", got)
	}
	if got := framework.Counter(t, "nodewright_provisioning_rounds_total", map[string]string{"result": "planned"}) - rounds; got != 1 {
		t.Errorf("rounds that planned: %v, want 1 for the gang and the single pods together", got)
	}
}

// TestGangWithZoneAffinityBinds: a gang whose pods require each other's zone (required pod
// affinity on topology.kubernetes.io/zone, none of them bound yet) is planned in one zone, and
// the scheduler binds it there. (Part of issue 18's fourth item: a Job's pods are alike, so
// their plan is in one zone even without the affinity; the zone that has capacity for all of
// a gang, and the TopologyAwareWorkloadScheduling constraints, are not done.)
func TestGangWithZoneAffinityBinds(t *testing.T) {
	env := newGangEnv(t, nil)
	env.gpuJob("train", 6, func(spec *corev1.PodSpec) {
		spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.JobNameLabel: "train"}},
			TopologyKey:   corev1.LabelTopologyZone,
		}}}}
	})
	env.boundInOneZone(6)
}

// TestGangReleasedWhenAPodCannotLaunch is issue 18's third acceptance item: a gang of two
// one-GPU pods and two four-GPU pods, whose four-GPU type has no capacity in any pool for
// longer than gangLaunchTimeout. The four-GPU claims are deleted at each insufficient-capacity
// answer and planned again in the other pools until none is left; the two one-GPU nodes
// launch and are Ready meanwhile. At the timeout the gang is released: every claim deleted,
// the launched ones included, so no node of the gang is left running idle, and no instance
// outlives its claim.
func TestGangReleasedWhenAPodCannotLaunch(t *testing.T) {
	const big = "g4dn.12xlarge" // 4 GPUs
	env := newGangEnv(t, nil, func(spec *v1alpha1.ProvisionerSpec, args map[string]any) {
		spec.Requirements = []v1alpha1.NodeSelectorRequirement{{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn,
			Values: []string{"g4dn.xlarge", big}}}
		args["gangLaunchTimeout"] = "20s"
	})
	env.e.InsufficientCapacity(big, "", "")
	released := framework.Counter(t, "nodewright_gangs_released_total", nil)
	group := &schedulingv1beta1.PodGroup{ObjectMeta: metav1.ObjectMeta{Name: "train"},
		Spec: schedulingv1beta1.PodGroupSpec{SchedulingPolicy: schedulingv1beta1.PodGroupSchedulingPolicy{
			Gang: &schedulingv1beta1.GangSchedulingPolicy{MinCount: 4}}}}
	if _, err := env.client.SchedulingV1beta1().PodGroups(env.ns).Create(env.ctx, group, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating podgroup: %v", err)
	}
	for i, gpus := range []string{"1", "1", "4", "4"} {
		pod := st.MakePod().Namespace(env.ns).Name(fmt.Sprintf("train-%d", i)).SchedulerName("nodewright-scheduler").
			Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "500m", gpu: gpus}).Obj()
		pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{gpu: resource.MustParse(gpus)}
		pod.Spec.SchedulingGroup = &corev1.PodSchedulingGroup{PodGroupName: ptr.To("train")}
		if _, err := env.client.CoreV1().Pods(env.ns).Create(env.ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", pod.Name, err)
		}
	}
	// The one-GPU nodes launch and join while the four-GPU pods find no pool.
	framework.Eventually(env.ctx, t, 60*time.Second, "the gang's two one-GPU nodes joined", func(ctx context.Context) (bool, error) {
		nodes, err := env.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelProvisionerName + "=" + env.ns})
		return err == nil && len(nodes.Items) == 2, err
	})
	framework.Eventually(env.ctx, t, 60*time.Second, "the gang released at gangLaunchTimeout", func(ctx context.Context) (bool, error) {
		return framework.Counter(t, "nodewright_gangs_released_total", nil) > released, nil
	})
	framework.Eventually(env.ctx, t, 60*time.Second, "no claim, node or instance of the gang left", func(ctx context.Context) (bool, error) {
		nodes, err := env.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelProvisionerName + "=" + env.ns})
		if err != nil || len(nodes.Items) > 0 || len(env.claims()) > 0 {
			return false, err
		}
		for _, inst := range env.e.Instances() {
			if inst.State == emulator.StatePending || inst.State == emulator.StateRunning {
				return false, nil
			}
		}
		return true, nil
	})
	events, err := env.client.EventsV1().Events(env.ns).List(env.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range events.Items {
		found = found || ev.Regarding.Kind == "PodGroup" && ev.Reason == "FailedProvisioning" && strings.Contains(ev.Note, "were not all initialized within 20s")
	}
	if !found {
		t.Error("no event on the PodGroup saying it was released")
	}
	for _, pod := range []string{"train-0", "train-3"} {
		if p, err := env.client.CoreV1().Pods(env.ns).Get(env.ctx, pod, metav1.GetOptions{}); err != nil || p.Spec.NodeName != "" {
			t.Errorf("pod %s: bound to %q (%v); want it pending, its gang not started", pod, p.Spec.NodeName, err)
		}
	}
}

// TestGangWithZoneConstraintLandsInOneZone is issue 18's fourth acceptance item with the
// TopologyAwareWorkloadScheduling gate: a PodGroup whose schedulingConstraints require one
// zone, of two arm64 pods and a GPU pod (types whose cheapest offerings are in different
// zones), gets all its nodes in one zone, and binds there.
func TestGangWithZoneConstraintLandsInOneZone(t *testing.T) {
	env := newGangEnv(t, nil)
	group := &schedulingv1beta1.PodGroup{ObjectMeta: metav1.ObjectMeta{Name: "train"},
		Spec: schedulingv1beta1.PodGroupSpec{
			SchedulingPolicy: schedulingv1beta1.PodGroupSchedulingPolicy{Gang: &schedulingv1beta1.GangSchedulingPolicy{MinCount: 3}},
			SchedulingConstraints: &schedulingv1beta1.PodGroupSchedulingConstraints{
				Topology: []schedulingv1beta1.TopologyConstraint{{Key: corev1.LabelTopologyZone}}},
		}}
	created, err := env.client.SchedulingV1beta1().PodGroups(env.ns).Create(env.ctx, group, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating podgroup: %v", err)
	}
	if created.Spec.SchedulingConstraints == nil {
		t.Fatal("the apiserver dropped the PodGroup's schedulingConstraints: TopologyAwareWorkloadScheduling is off")
	}
	for i, arch := range []string{"arm64", "arm64", "amd64"} {
		pod := st.MakePod().Namespace(env.ns).Name(fmt.Sprintf("train-%d", i)).SchedulerName("nodewright-scheduler").
			Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "1"}).NodeSelector(map[string]string{corev1.LabelArchStable: arch}).Obj()
		if arch == "amd64" {
			pod.Spec.Containers[0].Resources.Requests[gpu] = resource.MustParse("1")
			pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{gpu: resource.MustParse("1")}
		}
		pod.Spec.SchedulingGroup = &corev1.PodSchedulingGroup{PodGroupName: ptr.To("train")}
		if _, err := env.client.CoreV1().Pods(env.ns).Create(env.ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", pod.Name, err)
		}
	}
	env.boundInOneZone(3)
}

// boundInOneZone waits until n pods of the namespace are bound, and fails the test unless
// their nodes are all in one zone.
func (env *gangEnv) boundInOneZone(n int) {
	t := env.t
	t.Helper()
	var pods []corev1.Pod
	framework.Eventually(env.ctx, t, 120*time.Second, fmt.Sprintf("the gang's %d pods bound", n), func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName!="})
		pods = list.Items
		return err == nil && len(list.Items) == n, err
	})
	zones := map[string]bool{}
	for _, pod := range pods {
		node, err := env.client.CoreV1().Nodes().Get(env.ctx, pod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		zones[node.Labels[corev1.LabelTopologyZone]] = true
	}
	if len(zones) != 1 {
		t.Errorf("the gang's pods run in zones %v, want one", zones)
	}
}
