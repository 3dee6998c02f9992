// Package framework holds what the integration tests share: one sandbox control plane per
// test binary, started by TestMain and stopped on exit or on SIGINT/SIGTERM, and helpers that
// give each test its own namespace and clean up after it.
package framework

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	nodeutil "k8s.io/kubernetes/pkg/util/node"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/sandbox"
)

// ControlPlane is the sandbox every test of the binary shares, set by Main.
var ControlPlane *sandbox.ControlPlane

// Main is TestMain for an integration test package: it starts the control plane, runs the
// tests and stops it. A SIGINT or SIGTERM (Ctrl-C on `go test`) stops the control plane
// before the binary exits, so no etcd, apiserver, controller manager or kwok survives it.
func Main(m *testing.M) {
	os.Exit(run(m, sandbox.Options{}))
}

// MainWith is Main with a control plane started with opts: a package whose tests need a
// control plane unlike the others' (feature gates on) has its own test binary.
func MainWith(m *testing.M, opts sandbox.Options) {
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts sandbox.Options) int {
	ctx := context.Background()
	start := time.Now()
	cp, err := sandbox.Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the sandbox control plane: %v\n", err)
		return 1
	}
	ControlPlane = cp
	if err := sandbox.InstallCRDs(ctx, cp.RESTConfig(), manifests.CRDs()...); err != nil {
		fmt.Fprintf(os.Stderr, "installing nodewright's CRDs: %v\n", err)
		cp.Stop()
		return 1
	}
	fmt.Fprintf(os.Stderr, "sandbox control plane ready in %s (state in %s)\n", time.Since(start).Round(time.Millisecond), cp.Dir())

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "%s: stopping the sandbox control plane\n", sig)
		cp.Stop()
		os.Exit(130)
	}()
	defer cp.Stop()
	return m.Run()
}

// Client returns an admin clientset for the shared control plane.
func Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(RESTConfig(t))
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	return client
}

// RESTConfig returns the admin client configuration of the shared control plane.
func RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	if ControlPlane == nil {
		t.Fatal("no control plane: the package's TestMain must call framework.Main")
	}
	return ControlPlane.RESTConfig()
}

// Namespace creates a namespace for the test, deleted when it ends, and waits until pods can
// be created in it (the controller manager has made its default service account).
func Namespace(ctx context.Context, t testing.TB, client kubernetes.Interface) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		// The namespace controller deletes what is in it; the test does not wait for that.
		if err := client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	Eventually(ctx, t, 30*time.Second, "default service account in "+ns.Name, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	return ns.Name
}

// Node creates a Node that kwok plays the kubelet of, deleted when the test ends, and waits
// until it is Ready and the node lifecycle controller has lifted its not-ready taint.
func Node(ctx context.Context, t testing.TB, client kubernetes.Interface, node *corev1.Node) *corev1.Node {
	t.Helper()
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", node.Name, err)
	}
	t.Cleanup(func() {
		if err := client.CoreV1().Nodes().Delete(context.Background(), created.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting node %s: %v", created.Name, err)
		}
	})
	Eventually(ctx, t, 60*time.Second, "node "+created.Name+" ready and untainted", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		created = n
		return nodeutil.IsNodeReady(n) && len(n.Spec.Taints) == 0, nil
	})
	return created
}

// Eventually polls condition every 100ms until it returns true, and fails the test with
// what it was waiting for if timeout passes or condition returns an error.
func Eventually(ctx context.Context, t testing.TB, timeout time.Duration, what string, condition wait.ConditionWithContextFunc) {
	t.Helper()
	start := time.Now()
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, condition); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	klog.FromContext(ctx).V(2).Info("Waited", "for", what, "duration", time.Since(start))
}

// Binary returns the path of a binary `make build` or `make tools` put in bin/, failing the
// test if it is not there.
func Binary(t testing.TB, name string) string {
	t.Helper()
	binDir, err := sandbox.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(binDir, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is not built (make build tools): %v", path, err)
	}
	return path
}

// RepoRoot returns the repository's top directory, for files such as manifests/.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test's directory")
		}
	}
}
