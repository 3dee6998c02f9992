package integration

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/sandbox"
)

// TestRestartAPIServer restarts the apiserver of a control plane of its own (not the shared
// one, whose other clients would see it go): a watch opened before ends, what was stored
// before is still there, and the client made before the restart works after it without
// being made again. Once the control plane is stopped, a restart fails.
func TestRestartAPIServer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	cp, err := sandbox.Start(ctx, sandbox.Options{})
	if err != nil {
		t.Fatalf("starting a control plane: %v", err)
	}
	defer cp.Stop()
	client, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	configMaps := client.CoreV1().ConfigMaps(metav1.NamespaceDefault)
	before, err := configMaps.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "before-restart"},
		Data:       map[string]string{"key": "value"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a ConfigMap: %v", err)
	}
	watcher, err := configMaps.Watch(ctx, metav1.ListOptions{ResourceVersion: before.ResourceVersion})
	if err != nil {
		t.Fatalf("watching ConfigMaps: %v", err)
	}
	defer watcher.Stop()

	start := time.Now()
	if err := cp.RestartAPIServer(ctx); err != nil {
		t.Fatalf("restarting the apiserver: %v", err)
	}
	t.Logf("restarted the apiserver in %s", time.Since(start).Round(time.Millisecond))

	// The old apiserver has exited, so the watch's connection is closed already; the
	// client only has to notice.
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-watcher.ResultChan():
		case <-deadline:
			t.Fatal("the watch opened before the restart is still open: the apiserver did not go away")
		}
	}

	got, err := configMaps.Get(ctx, before.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the ConfigMap back after the restart: %v", err)
	}
	if diff := cmp.Diff(before.Data, got.Data); diff != "" {
		t.Errorf("ConfigMap data after the restart (-want, +got):\n%s", diff)
	}
	if _, err := configMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-restart"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating a ConfigMap after the restart: %v", err)
	}

	cp.Stop()
	if err := cp.RestartAPIServer(ctx); err == nil {
		t.Error("RestartAPIServer after Stop: got no error")
	}
}
