package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// zoneOnlyConfig is a scheduler configuration whose profile adds an affinity to us-east-1c
// to every pod (NodeAffinity's addedAffinity), and leaves a resource no node has out of
// NodeResourcesFit's fit.
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
  - name: NodeResourcesFit
    args:
      ignoredResources: [example.com/licence]
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
// scheduler's do. With defaults, a pod is planned in the cheapest zone, us-east-1a, and a pod
// that requests a resource no instance type has is not planned.
func TestPlanWithProfilePluginConfig(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pluginConfig, err := ProfilePluginConfig(writeConfig(t, zoneOnlyConfig), "nodewright-scheduler")
	if err != nil {
		t.Fatal(err)
	}
	pod := plantest.PendingPod("a", "1").Obj()
	licensed := plantest.PendingPod("b", "1").Req(map[v1.ResourceName]string{"example.com/licence": "1"}).Obj()
	prov := plantest.Provisioner("default", spotOnly)
	withDefaults, err := Plan(ctx, planInput([]*v1.Pod{pod, licensed}, prov))
	if err != nil {
		t.Fatal(err)
	}
	if len(withDefaults.Nodes) != 1 || withDefaults.Nodes[0].Template.Offering.Zone != "us-east-1a" || len(withDefaults.Unplanned) != 1 {
		t.Fatalf("with the default args, want one node in us-east-1a, the cheapest zone, and the licensed pod unplanned")
	}
	in := planInput([]*v1.Pod{pod, licensed}, prov)
	in.PluginConfig = pluginConfig
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unplanned) != 0 {
		t.Fatalf("%d unplanned pods, want both planned", len(plan.Unplanned))
	}
	for _, n := range plan.Nodes {
		if zone := n.Template.Offering.Zone; zone != "us-east-1c" {
			t.Errorf("planned in %s, want us-east-1c (the profile's addedAffinity)", zone)
		}
		if ct := n.Template.Offering.CapacityType; ct != v1alpha1.CapacityTypeSpot {
			t.Errorf("planned %s, want spot", ct)
		}
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

// hardZoneSpreadConfig gives pods default zone spread constraints that filter.
const hardZoneSpreadConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: nodewright-scheduler
  pluginConfig:
  - name: PodTopologySpread
    args:
      defaultingType: List
      defaultConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
`

// TestPlanWithHardDefaultSpread: pods of a ReplicaSet, with no constraints of their own, get
// the profile's default zone spread, which filters: three of them go to three zones. Were
// they taken to be independent of each other, they would be packed onto one node, and two
// would fail the final check.
func TestPlanWithHardDefaultSpread(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pluginConfig, err := ProfilePluginConfig(writeConfig(t, hardZoneSpreadConfig), "nodewright-scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if !HardDefaultSpread(pluginConfig) {
		t.Fatalf("HardDefaultSpread = false for a DoNotSchedule default constraint")
	}
	if IgnoredResources(pluginConfig) != nil {
		t.Errorf("IgnoredResources is not nil for a profile that ignores none")
	}
	if HardDefaultSpread(nil) {
		t.Errorf("HardDefaultSpread = true with the defaults (System defaulting: ScheduleAnyway)")
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "rs-web"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	factory := informers.NewSharedInformerFactory(fake.NewClientset(rs), 0)
	factory.Apps().V1().ReplicaSets().Lister()
	factory.Core().V1().Services().Lister()
	factory.Core().V1().ReplicationControllers().Lister()
	factory.Apps().V1().StatefulSets().Lister()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var pods []*v1.Pod
	for i := range 3 {
		pods = append(pods, plantest.PendingPod(fmt.Sprintf("web-%d", i), "1").Label("app", "web").OwnerReference("web", appsv1.SchemeGroupVersion.WithKind("ReplicaSet")).Obj())
	}
	in := planInput(pods, plantest.Provisioner("default", spotOnly))
	in.Framework = FrameworkFactoryWith(nil, factory, nil, pluginConfig)
	in.PluginConfig = pluginConfig
	plan, err := Plan(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]int{}
	for _, n := range plan.Nodes {
		zones[n.Template.Offering.Zone] += len(n.Pods)
	}
	if len(zones) != 3 || len(plan.Unplanned) != 0 {
		t.Errorf("pods by zone %v and %d unplanned, want one in each of 3 zones and none unplanned", zones, len(plan.Unplanned))
	}
}

func TestIgnoredResources(t *testing.T) {
	ignored := IgnoredResources([]config.PluginConfig{{Name: names.NodeResourcesFit, Args: &config.NodeResourcesFitArgs{
		IgnoredResources: []string{"example.com/licence"}, IgnoredResourceGroups: []string{"vendor.io"}}}})
	for name, want := range map[v1.ResourceName]bool{
		"example.com/licence": true, "example.com/other": false, "vendor.io/fpga": true, v1.ResourceCPU: false,
	} {
		if got := ignored(name); got != want {
			t.Errorf("ignored(%s) = %v, want %v", name, got, want)
		}
	}
}
