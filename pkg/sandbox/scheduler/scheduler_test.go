package scheduler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/manifests"
)

func TestWriteConfig(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		args    map[string]any
		want    map[string]any
		wantErr bool
	}{
		{
			name:   "kubeconfig added, the rest kept",
			config: "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: x\n",
			want: map[string]any{
				"apiVersion":       "kubescheduler.config.k8s.io/v1",
				"kind":             "KubeSchedulerConfiguration",
				"profiles":         []any{map[string]any{"schedulerName": "x"}},
				"clientConnection": map[string]any{"kubeconfig": "/sandbox/kubeconfig"},
			},
		},
		{
			name:   "kubeconfig replaced, other client settings kept",
			config: "kind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: /elsewhere\n  qps: 100\n",
			want: map[string]any{
				"kind":             "KubeSchedulerConfiguration",
				"clientConnection": map[string]any{"kubeconfig": "/sandbox/kubeconfig", "qps": float64(100)},
			},
		},
		{
			name: "provision args merged into every profile that configures the plugin",
			config: `profiles:
- schedulerName: a
  pluginConfig:
  - {name: Provision, args: {clusterName: prod, region: us-east-1}}
  - {name: NodeResourcesFit, args: {}}
- schedulerName: b
`,
			args: map[string]any{"endpoint": "http://127.0.0.1:4566", "clusterName": "sandbox"},
			want: map[string]any{
				"clientConnection": map[string]any{"kubeconfig": "/sandbox/kubeconfig"},
				"profiles": []any{
					map[string]any{"schedulerName": "a", "pluginConfig": []any{
						map[string]any{"name": "Provision", "args": map[string]any{
							"clusterName": "sandbox", "region": "us-east-1", "endpoint": "http://127.0.0.1:4566"}},
						map[string]any{"name": "NodeResourcesFit", "args": map[string]any{}},
					}},
					map[string]any{"schedulerName": "b"},
				},
			},
		},
		{name: "empty", config: "", wantErr: true},
		{name: "not yaml", config: "kind: [", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			err := WriteConfig([]byte(tt.config), path, "/sandbox/kubeconfig", tt.args)
			if tt.wantErr {
				if err == nil {
					t.Fatal("WriteConfig succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := sigsyaml.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("written configuration (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestShippedConfigIsValid checks that the shipped configuration passes kube-scheduler's own
// validation and builds the Provision plugin: everything but talking to an apiserver.
func TestShippedConfigIsValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// A kubeconfig for a server that is never contacted: Start only builds the scheduler.
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The cloud is built at start-up: point it at a loopback port where nothing listens, so
	// that its background price refresh never reaches AWS.
	if err := WriteConfig(manifests.SchedulerConfig, path, kubeconfig, map[string]any{"endpoint": "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	s, err := Start(ctx, Options{ConfigFile: path})
	if err != nil {
		t.Fatalf("the shipped configuration does not start: %v", err)
	}
	_ = s.Stop()
}
