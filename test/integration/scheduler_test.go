package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
	"github.com/nodewright/nodewright/test/integration/framework"
)

const schedulerName = "nodewright-scheduler"

// schedulerConfig writes manifests/scheduler-config.yaml pointed at the sandbox and at no
// cloud, after applying edit to its text (nil keeps it as shipped), and returns the copy's
// path.
func schedulerConfig(t *testing.T, edit func(string) string) string {
	t.Helper()
	config := manifests.SchedulerConfig
	if edit != nil {
		edited := edit(string(config))
		if edited == string(config) {
			t.Fatal("the edit changed nothing in manifests/scheduler-config.yaml")
		}
		config = []byte(edited)
	}
	dst := filepath.Join(t.TempDir(), "scheduler-config.yaml")
	// The plugin builds its cloud at start-up: point it at a loopback port where nothing
	// listens, so that nothing (the price refresh, the lifecycle's GC) reaches AWS.
	args := map[string]any{"endpoint": "http://127.0.0.1:1"}
	if err := scheduler.WriteConfig(config, dst, framework.ControlPlane.Kubeconfig(), args); err != nil {
		t.Fatal(err)
	}
	return dst
}

// startScheduler runs nodewright-scheduler in the test's process until the test ends.
func startScheduler(ctx context.Context, t *testing.T, configFile string) {
	t.Helper()
	s, err := scheduler.Start(ctx, scheduler.Options{ConfigFile: configFile})
	if err != nil {
		t.Fatalf("starting the scheduler: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("the scheduler stopped by itself: %v", err)
		}
	})
}

// kwokNode is a simulated node of the given size, named after the test's namespace.
func kwokNode(ns, cpu, memory string) *corev1.Node {
	name := "kwok-" + ns
	return st.MakeNode().Name(name).Label(corev1.LabelHostname, name).
		Capacity(map[corev1.ResourceName]string{corev1.ResourceCPU: cpu, corev1.ResourceMemory: memory, corev1.ResourcePods: "110"}).Obj()
}

func TestSchedulesDeploymentOntoNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)
	node := framework.Node(ctx, t, client, kwokNode(ns, "8", "32Gi"))
	startScheduler(ctx, t, schedulerConfig(t, nil))

	// A pod for the default scheduler, created first so ours has every chance to touch it.
	// The sandbox runs no default scheduler, so nothing may bind it.
	other := st.MakePod().Namespace(ns).Name("default-scheduler-pod").
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "100m"}).Obj()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	template := st.MakePod().Label("app", "inflate").SchedulerName(schedulerName).
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "1", corev1.ResourceMemory: "1Gi"}).Obj()
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "inflate", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "inflate"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: template.ObjectMeta, Spec: template.Spec},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	framework.Eventually(ctx, t, 60*time.Second, "3 inflate pods running on "+node.Name, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=inflate"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == node.Name && p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 3, nil
	})
	assertUntouched(ctx, t, client, ns, other.Name)
}

// assertUntouched checks that no scheduler has bound or even tried to schedule the pod: a
// scheduler that fails to place a pod records PodScheduled=False on it.
func assertUntouched(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	pod, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.NodeName != "" {
		t.Errorf("pod %s of the default scheduler was bound to %s", name, pod.Spec.NodeName)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			t.Errorf("pod %s of the default scheduler has a PodScheduled condition: %+v", name, c)
		}
	}
}

// TestSchedulerNeedsProvisionPlugin shows that the profile really runs our plugin: without
// Provision in the registry the shipped configuration does not even start.
func TestSchedulerNeedsProvisionPlugin(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	_, err := scheduler.Start(ctx, scheduler.Options{
		ConfigFile: schedulerConfig(t, nil),
		Registry:   []app.Option{},
	})
	if err == nil || !strings.Contains(err.Error(), `"Provision" does not exist`) {
		t.Fatalf("starting without the Provision plugin: err = %v, want one saying Provision does not exist", err)
	}
}

func TestSchedulerRejectsInvalidProvisionArgs(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	config := schedulerConfig(t, func(s string) string {
		return strings.Replace(s, "batchMaxDuration: 10s", "batchMaxDuration: 100ms", 1)
	})
	_, err := scheduler.Start(ctx, scheduler.Options{ConfigFile: config})
	want := `pluginConfig[Provision].args.batchMaxDuration: Invalid value: "100ms": must not be shorter than batchIdleDuration (1s)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want one containing %q", err, want)
	}
}
