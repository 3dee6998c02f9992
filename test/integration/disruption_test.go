package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// fastDisruption shortens the disruption controller's pass interval and validation delay,
// as the tests shorten consolidateAfter.
var fastDisruption = withArgs(map[string]any{"disruptionInterval": "1s", "disruptionValidationDelay": "2s"})

// consolidating returns spotIn's spec with consolidation of underutilized nodes after after.
func consolidating(after string) v1alpha1.ProvisionerSpec {
	spec := spotIn()
	spec.Disruption = &v1alpha1.Disruption{ConsolidateAfter: ptr.To(v1alpha1.NillableDuration(after))}
	return spec
}

// TestDisruptionReplacesOversizedNode is the Replace acceptance item: a node much larger than
// the one pod left on it is replaced by one cheaper node; the pod runs there and the old node
// is gone.
func TestDisruptionReplacesOversizedNode(t *testing.T) {
	env := newProvisionEnv(t, consolidating("5s"), fastDisruption)
	// A big pod gets a node of its own size; the small pod, created once it runs, takes the
	// room left there, as the scheduler places pods on existing room first.
	env.createPods([]*corev1.Pod{env.pod("big", "6").Obj()})
	big := env.runningPods(1)[0]
	env.deployment("small", 1, func(s *corev1.PodSpec) {
		s.NodeSelector = map[string]string{v1alpha1.LabelProvisionerName: env.ns}
		s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("500m")
	})
	pods := env.runningPods(2)
	for _, p := range pods {
		if p.Spec.NodeName != big.Spec.NodeName {
			t.Fatalf("pod %s runs on %s, not with the big pod on %s", p.Name, p.Spec.NodeName, big.Spec.NodeName)
		}
	}
	oldNode := big.Spec.NodeName
	if err := env.client.CoreV1().Pods(env.ns).Delete(env.ctx, "big", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(env.ctx, t, 2*time.Minute, "the oversized node replaced", func(ctx context.Context) (bool, error) {
		if _, err := env.client.CoreV1().Nodes().Get(ctx, oldNode, metav1.GetOptions{}); err == nil {
			return false, nil
		}
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(list.Items) == 1 && list.Items[0].Status.Phase == corev1.PodRunning && list.Items[0].Spec.NodeName != oldNode, nil
	})
	if !strings.Contains(env.log(), "Disrupting node(s) via consolidation replace, terminating 1 node(s) ("+oldNode+") and replacing with spot node") {
		t.Error("no log line of the replacement")
	}
	claims := env.claims()
	if len(claims) != 1 || claims[0].Annotations[v1alpha1.AnnotationReplaces] == "" {
		t.Fatalf("nodeclaims after the replacement: %d, want the replacement alone", len(claims))
	}
	got, _ := env.cheapest(v1alpha1.CapacityTypeSpot, resource.MustParse("500m"), claims[0].Status.InstanceType, claims[0].Status.Zone)
	t.Logf("replaced node %s by %s (%s in %s)", oldNode, claims[0].Status.NodeName, claims[0].Status.InstanceType, claims[0].Status.Zone)
	_ = got
}
