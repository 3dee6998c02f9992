package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/test/integration/framework"
)

// small gives a pod spec a request of 100m, then applies edit (may be nil).
func small(edit func(*corev1.PodSpec)) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("100m")
		if edit != nil {
			edit(s)
		}
	}
}

// hostPort gives a pod spec's container the host port port.
func hostPort(port int32) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port, HostPort: port, Protocol: corev1.ProtocolTCP}}
	}
}

// TestProvisionHostPorts: eight pods of three Deployments using host ports 80, 8080 and 9090
// (3, 3 and 2 replicas) all run soon, no two pods with one port on a node: nodes planned for
// them take them (NodePorts compares the pods on a node; they were packed onto one before).
func TestProvisionHostPorts(t *testing.T) {
	env := newProvisionEnv(t, spotIn())
	for port, replicas := range map[int32]int32{80: 3, 8080: 3, 9090: 2} {
		env.deployment(fmt.Sprintf("port-%d", port), replicas, small(hostPort(port)))
	}
	pods := env.runningPods(8)
	seen := map[string]bool{}
	for _, p := range pods {
		key := fmt.Sprintf("%s/%d", p.Spec.NodeName, p.Spec.Containers[0].Ports[0].HostPort)
		if seen[key] {
			t.Errorf("two pods with host port %d on node %s", p.Spec.Containers[0].Ports[0].HostPort, p.Spec.NodeName)
		}
		seen[key] = true
	}
	if nodes := env.nodesOf(pods); len(nodes) != 3 {
		t.Errorf("pods run on %d nodes, want 3 (the largest Deployment's replicas)", len(nodes))
	}
	env.assertNoStrandedPods()
}

// requireWith makes a pod spec require a node with a pod of app.
func requireWith(app string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: corev1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		}}}}
	}
}

// TestProvisionAffinityChain: a chain of Deployments created at once, each requiring a node
// with a pod of the one before (db <- web <- cache <- ui), and a pod requiring one of another
// Deployment (api <- metrics): all run soon, each with its partner. The plan places the
// chain's links after the pods they select, on one node grown to hold them.
func TestProvisionAffinityChain(t *testing.T) {
	env := newProvisionEnv(t, spotIn())
	chain := []string{"db", "web", "cache", "ui"}
	// Created from the end of the chain, as a user applying a directory might.
	for i := len(chain) - 1; i >= 0; i-- {
		edit := small(nil)
		if i > 0 {
			edit = small(requireWith(chain[i-1]))
		}
		env.deployment(chain[i], 1, edit)
	}
	env.deployment("metrics", 1, small(requireWith("api")))
	env.deployment("api", 1, small(nil))
	pods := env.runningPods(6)
	nodeOf := map[string]string{}
	for _, p := range pods {
		nodeOf[p.Labels["app"]] = p.Spec.NodeName
	}
	for _, pair := range [][2]string{{"web", "db"}, {"cache", "web"}, {"ui", "cache"}, {"metrics", "api"}} {
		if nodeOf[pair[0]] != nodeOf[pair[1]] {
			t.Errorf("%s runs on %s, %s on %s: want them together", pair[0], nodeOf[pair[0]], pair[1], nodeOf[pair[1]])
		}
	}
	env.assertNoStrandedPods()
}

// TestProvisionStrandedPodIsNotLaunchedForAgain: nodes join with a taint the plan did not
// know (as an image that registers with taints of its own would), so the node launched for a
// pod rejects it. The pod is stranded: a Stranded event naming TaintToleration, the metric,
// and at most one more launch (of another shape) before nodewright stops planning it, where
// it launched a node every few seconds before.
func TestProvisionStrandedPodIsNotLaunchedForAgain(t *testing.T) {
	env := newProvisionEnv(t, spotIn())
	env.setArg("reservationGrace", "5s")
	env.emulator.JoinWithTaints(corev1.Taint{Key: "example.com/image-taint", Value: "true", Effect: corev1.TaintEffectNoSchedule})
	env.deployment("web", 1, small(nil))
	env.waitForEvent("Stranded", "TaintToleration")
	framework.Eventually(env.ctx, t, 3*time.Minute, "the pod stranded twice", func(ctx context.Context) (bool, error) {
		events, err := env.client.EventsV1().Events(env.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Reason == "Stranded" && strings.Contains(e.Note, "stranded 2 times") {
				return true, nil
			}
		}
		// Launches beyond the second fail the test below; no need to wait for more.
		return len(env.emulator.Instances()) > 2, nil
	})
	// Long enough for a launch every grace and backoff, were they still made.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(env.emulator.Instances()) <= 2 {
		time.Sleep(time.Second)
	}
	if n := len(env.emulator.Instances()); n > 2 {
		t.Errorf("%d instances launched for one pod whose nodes reject it, want at most 2", n)
	}
	shapes := map[string]bool{}
	for _, nc := range env.claims() {
		shapes[nc.Status.InstanceType+"/"+nc.Status.Zone+"/"+nc.Status.CapacityType] = true
	}
	if len(shapes) < len(env.claims()) {
		t.Errorf("nodeclaims %v: a shape that rejected the pod was launched again", shapes)
	}
	if !strings.Contains(env.log(), "Pod stranded: the node launched for it rejects it") {
		t.Error("no error logged for the stranded pod")
	}
}
