package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// forbidden matches what client-go and the scheduler log when RBAC refuses a request.
var forbidden = regexp.MustCompile(`(?i)forbidden|cannot (get|list|watch|create|update|patch|delete) resource`)

// TestShippedRBACRunsTheScheduler runs bin/nodewright-scheduler as the ServiceAccount
// kube-system/nodewright with nothing but the RBAC of manifests/ (which the chart's equals,
// see TestHelmChartAndKustomizeAgree), as the Deployment would: serving, leader-elected,
// authenticating its clients through the cluster. It goes through a scale-up, a drain (a
// NodeClaim deleted under running pods: evictions) and a scale-down to no node, and fails if
// anything the scheduler or the lifecycle asked for was forbidden, or if the probes'
// endpoints do not answer.
func TestShippedRBACRunsTheScheduler(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := framework.Client(t)
	var rbac []*unstructured.Unstructured
	for _, obj := range framework.DecodeObjects(t, kustomize(t)) {
		switch obj.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, obj)
		}
	}
	framework.Apply(ctx, t, rbac)
	kubeconfig := framework.ServiceAccountKubeconfig(ctx, t, "kube-system", "nodewright")

	ns := framework.Namespace(ctx, t, client)
	e, class, prov := emulatorProvisioner(ctx, t, ns, emulator.Options{}, v1alpha1.ProvisionerSpec{TTLSecondsAfterEmpty: ptr.To[int64](1)})

	config := filepath.Join(t.TempDir(), "scheduler-config.yaml")
	if err := scheduler.WriteConfig(manifests.SchedulerConfig, config, kubeconfig, emulatorArgs(t, e)); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "scheduler.log")
	runScheduler(t, logFile, "--config="+config, "--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig, "--v=2")

	env := &provisionEnv{t: t, ctx: ctx, logger: klog.FromContext(ctx), client: client, ns: ns, emulator: e, class: class, prov: prov, config: config}
	// Registered after runScheduler's cleanup, so it runs while the scheduler still does.
	t.Cleanup(func() { env.cleanup(prov.Name) })

	// Scale-up: NodeClaims created, instances launched, the Node labelled, the pods bound.
	env.inflate(3, nil)
	first := env.nodesOf(env.runningPods(3))
	probe(ctx, t, port, "/livez", "/readyz")

	// A drain: the NodeClaim deleted under its pods, which are evicted and land on a new node.
	for _, n := range first {
		claim := n.Labels[v1alpha1.LabelNodeClaim]
		if err := framework.Dynamic(t).Resource(framework.NodeClaimGVR).Delete(ctx, claim, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting nodeclaim %s: %v", claim, err)
		}
		waitNodeGone(ctx, t, logFile, n)
	}
	second := env.nodesOf(env.runningPods(3))

	// Scale-down: the empty node deleted by the lifecycle.
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "inflate", Namespace: ns}}
	if _, err := client.AppsV1().Deployments(ns).UpdateScale(ctx, "inflate", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range second {
		waitNodeGone(ctx, t, logFile, n)
	}

	lease, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "nodewright-scheduler", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the scheduler holds no lease kube-system/nodewright-scheduler: %v", err)
	}
	for _, line := range forbiddenLines(t, logFile) {
		t.Errorf("RBAC refused the scheduler: %s", line)
	}
}

// runScheduler runs bin/nodewright-scheduler with args, its output in logFile, until the test
// ends; then it stops it as the kubelet would, with SIGTERM.
func runScheduler(t *testing.T, logFile string, args ...string) {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(framework.Binary(t, "nodewright-scheduler"), args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("the scheduler did not exit within 1m of SIGTERM")
		}
		_ = out.Close()
		if t.Failed() {
			if data, err := os.ReadFile(logFile); err == nil {
				t.Logf("scheduler output:\n%s", data)
			}
		}
	})
}

// probe waits until each of paths answers 200 on the scheduler's secure port, with no
// credentials, as the kubelet's probes ask.
func probe(ctx context.Context, t *testing.T, port int, paths ...string) {
	t.Helper()
	// The scheduler serves a self-signed certificate; the kubelet does not verify it either.
	httpClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, path := range paths {
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, path)
		framework.Eventually(ctx, t, 30*time.Second, "200 from "+url, func(ctx context.Context) (bool, error) {
			resp, err := httpClient.Get(url)
			if err != nil {
				return false, nil
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
	}
}

// waitNodeGone waits until the lifecycle has deleted node, and stops waiting as soon as the
// scheduler's log says RBAC refused it something.
func waitNodeGone(ctx context.Context, t *testing.T, logFile string, node *corev1.Node) {
	t.Helper()
	framework.Eventually(ctx, t, 90*time.Second, "node "+node.Name+" deleted", func(ctx context.Context) (bool, error) {
		if lines := forbiddenLines(t, logFile); len(lines) > 0 {
			return false, fmt.Errorf("RBAC refused the scheduler: %s", lines[0])
		}
		_, err := framework.Client(t).CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// forbiddenLines returns the lines of the scheduler's log that say RBAC refused a request.
func forbiddenLines(t *testing.T, logFile string) []string {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if forbidden.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// freePort returns a loopback TCP port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
