package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestTwoReplicasProvisionOnce runs two nodewright-scheduler processes with the shipped
// configuration, as the chart's two replicas: only the one that leads plans and writes
// NodeClaims. A standby that planned too (its informers see the pods the leader marks
// unschedulable) would write a second NodeClaim for the same pods, whose node stays empty.
func TestTwoReplicasProvisionOnce(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)
	e, class, prov := emulatorProvisioner(ctx, t, ns, emulator.Options{}, v1alpha1.ProvisionerSpec{})
	config := filepath.Join(t.TempDir(), "scheduler-config.yaml")
	if err := scheduler.WriteConfig(manifests.SchedulerConfig, config, framework.ControlPlane.Kubeconfig(), emulatorArgs(t, e)); err != nil {
		t.Fatal(err)
	}
	logs := []string{filepath.Join(t.TempDir(), "replica-a.log"), filepath.Join(t.TempDir(), "replica-b.log")}
	for _, log := range logs {
		runScheduler(t, log, "--config="+config, "--secure-port=0", "--v=2")
	}
	env := &provisionEnv{t: t, ctx: ctx, logger: klog.FromContext(ctx), client: client, ns: ns, emulator: e, class: class, prov: prov, config: config}
	t.Cleanup(func() { env.cleanup(prov.Name) })
	framework.Eventually(ctx, t, time.Minute, "a replica leading", func(ctx context.Context) (bool, error) {
		lease, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "nodewright-scheduler", metav1.GetOptions{})
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", nil
	})

	env.inflate(6, nil)
	nodes := env.nodesOf(env.runningPods(6))
	// Give a standby's round, which would follow the leader's by its batch window, the time
	// to write its claims.
	time.Sleep(5 * time.Second)
	claims := env.claims()
	if len(claims) != len(nodes) {
		var names []string
		for _, nc := range claims {
			names = append(names, nc.Name)
		}
		t.Errorf("%d NodeClaims (%s) for pods on %d nodes, want one per node", len(claims), strings.Join(names, ", "), len(nodes))
	}
	planned := 0
	for _, log := range logs {
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "Computed packing") {
			planned++
		}
	}
	if planned != 1 {
		t.Errorf("%d replicas planned nodes, want the leader only", planned)
	}
}
