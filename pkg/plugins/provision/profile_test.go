package provision

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// zoneOnlyConfig is a scheduler configuration whose profile adds an affinity to us-east-1c
// to every pod (NodeAffinity's addedAffinity).
const zoneOnlyConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: nodewright-scheduler
  pluginConfig:
  - name: NodeAffinity
    args:
      addedAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
          - matchExpressions:
            - key: topology.kubernetes.io/zone
              operator: In
              values: [us-east-1c]
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPlanWithProfilePluginConfig: the simulation's plugins take the profile's args, as the
// scheduler's do. With defaults, the pod is planned in the cheapest zone, us-east-1a.
func TestPlanWithProfilePluginConfig(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pluginConfig, err := ProfilePluginConfig(writeConfig(t, zoneOnlyConfig), "nodewright-scheduler")
	if err != nil {
		t.Fatal(err)
	}
	pod := pendingPod("a", "1").Obj()
	prov := provisioner("default", spotOnly)
	withDefaults, err := Plan(ctx, planInput([]*v1.Pod{pod}, prov))
	if err != nil {
		t.Fatal(err)
	}
	if len(withDefaults.Nodes) != 1 || withDefaults.Nodes[0].Template.Offering.Zone != "us-east-1a" {
		t.Fatalf("with the default args, want one node in us-east-1a, the cheapest zone")
	}
	in := planInput([]*v1.Pod{pod}, prov)
	in.Framework = FrameworkFactoryWith(nil, nil, nil, pluginConfig)
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != 1 || len(plan.Unplanned) != 0 {
		t.Fatalf("planned %d nodes and %d unplanned pods, want 1 and 0", len(plan.Nodes), len(plan.Unplanned))
	}
	if zone := plan.Nodes[0].Template.Offering.Zone; zone != "us-east-1c" {
		t.Errorf("planned in %s, want us-east-1c (the profile's addedAffinity)", zone)
	}
	if ct := plan.Nodes[0].Template.Offering.CapacityType; ct != v1alpha1.CapacityTypeSpot {
		t.Errorf("planned %s, want spot", ct)
	}
}

func TestProfilePluginConfigErrors(t *testing.T) {
	tests := []struct {
		name, file, profile, want string
	}{
		{"no file", filepath.Join(t.TempDir(), "missing.yaml"), "nodewright-scheduler", "reading the scheduler configuration"},
		{"no such profile", writeConfig(t, zoneOnlyConfig), "other", `has no profile "other"`},
		{"not a configuration", writeConfig(t, "apiVersion: v1\nkind: Pod\n"), "nodewright-scheduler", "decoding the scheduler configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ProfilePluginConfig(tc.file, tc.profile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
