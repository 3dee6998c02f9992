package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestProvisionDiverseMix: the 100 pods of the benchmarks' diverse mix (zone and hostname
// spread, zone affinity, hostname anti-affinity, plain), created at once, all run.
func TestProvisionDiverseMix(t *testing.T) {
	env := newProvisionEnv(t, spotIn())
	pods := workload.Pods(100, workload.Seed, workload.PodOptions{Namespace: env.ns, SchedulerName: schedulerName})
	for _, p := range pods {
		p.UID = ""
		p.Spec.Containers[0].Image = "registry.k8s.io/pause:3.10"
	}
	env.createPods(pods)
	framework.Eventually(env.ctx, t, 90*time.Second, "100 diverse pods running", func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=" + string(corev1.PodRunning)})
		return err == nil && len(list.Items) == 100, err
	})
	// Not assertNoStrandedPods: the few pods the first round leaves to the next (zone spread
	// across the mix's classes) are also retried by the scheduler as nodes join, and one may
	// bind to room that appeared while the next round planned a node for it.
}
