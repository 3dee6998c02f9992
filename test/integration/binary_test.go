package integration

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/test/integration/framework"
)

// The tests here run bin/nodewright-scheduler itself, as a user or a Deployment would.

func TestSchedulerBinaryExitsOnInvalidArgs(t *testing.T) {
	config := schedulerConfig(t, func(s string) string {
		return strings.Replace(s, "region: us-east-1", "region: Virginia", 1)
	})
	cmd := exec.Command(framework.Binary(t, "nodewright-scheduler"), "--config", config, "--secure-port=0")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the scheduler kept running with an invalid region; output:\n%s", output.String())
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit code = 0 with an invalid region, want non-zero")
	}
	// klog quotes the error, so the value's quotes arrive escaped.
	for _, want := range []string{`pluginConfig[Provision].args.region: Invalid value`, "Virginia", "must be an AWS region code"} {
		if !strings.Contains(output.String(), want) {
			t.Errorf("output does not name the field: want %q in:\n%s", want, output.String())
		}
	}
}

// TestSchedulerBinaryRunsAgainstSandbox runs the binary with the shipped configuration,
// leader election on, and checks that it takes its own lease and binds a pod.
func TestSchedulerBinaryRunsAgainstSandbox(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)
	node := framework.Node(ctx, t, client, kwokNode(ns, "4", "16Gi"))

	cmd := exec.Command(framework.Binary(t, "nodewright-scheduler"), "--config", schedulerConfig(t, nil), "--secure-port=0", "--v=2")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("scheduler output:\n%s", output.String())
		}
	}()

	pod := st.MakePod().Namespace(ns).Name("pod").SchedulerName(schedulerName).
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "500m"}).Obj()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(ctx, t, 90*time.Second, "the pod bound by the binary", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == node.Name, err
	})
	lease, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "nodewright-scheduler", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the scheduler's own lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("lease kube-system/nodewright-scheduler has no holder: %+v", lease.Spec)
	}

	// SIGTERM, as the kubelet stops a pod: the scheduler releases its lease and exits 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("no exit within 1m of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}
