package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestLaunchPodsRequestingNothing is issue 13's defect 6: 50 pods whose containers request
// nothing. Their NodeClaims plan no resources at all, an empty list the lifecycle must launch
// from like any other: every pod runs.
func TestLaunchPodsRequestingNothing(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{
		Requirements: []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)},
	})
	env.inflate(50, func(s *corev1.PodSpec) {
		s.Containers[0].Resources = corev1.ResourceRequirements{}
	})
	env.runningPods(50)
	for _, nc := range env.claims() {
		if c := meta.FindStatusCondition(nc.Status.Conditions, v1alpha1.ConditionLaunched); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("nodeclaim %s: Launched %+v, want True", nc.Name, c)
		}
	}
}

// TestLaunchFailureReleasesPods is a NodeClaim that can never launch (CreateFleet refused,
// as for a missing permission): its launch is retried with backoff and reported (condition,
// event, metric), and once it has kept failing for launchTimeout the claim is deleted and its
// pods are planned again, into a new claim that launches once CreateFleet is allowed.
func TestLaunchFailureReleasesPods(t *testing.T) {
	const launchTimeout = 8 * time.Second
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{
		Requirements: []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)},
	}, func(o *envOptions) { o.args = map[string]any{"launchTimeout": launchTimeout.String()} })
	env.emulator.Fail("CreateFleet", "UnauthorizedOperation", 1000)
	env.inflate(3, nil)

	var first v1alpha1.NodeClaim
	framework.Eventually(env.ctx, t, 30*time.Second, "a nodeclaim whose launch failed", func(context.Context) (bool, error) {
		for _, nc := range env.claims() {
			if c := meta.FindStatusCondition(nc.Status.Conditions, v1alpha1.ConditionLaunched); c != nil &&
				c.Status == metav1.ConditionFalse && c.Reason == "LaunchFailed" && strings.Contains(c.Message, "UnauthorizedOperation") {
				first = nc
				return true, nil
			}
		}
		return false, nil
	})
	env.waitForClaimEvent(first.Name, "LaunchFailed", "UnauthorizedOperation")
	failedAt := time.Now()

	// Deleted after the bound, with an event saying so, and its pods in a claim of their own.
	var second v1alpha1.NodeClaim
	framework.Eventually(env.ctx, t, launchTimeout+30*time.Second, "the failing nodeclaim deleted and its pods planned again", func(context.Context) (bool, error) {
		for _, nc := range env.claims() {
			if nc.Name == first.Name {
				return false, nil
			}
			if samePods(nc.Spec.Pods, first.Spec.Pods) {
				second = nc
				return true, nil
			}
		}
		return false, nil
	})
	if waited := time.Since(failedAt); waited > launchTimeout+20*time.Second {
		t.Errorf("the failing claim was deleted %v after its first failure, want about %v", waited, launchTimeout)
	}
	env.emulator.Fail("CreateFleet", "", 0)
	env.waitForClaimEvent(first.Name, "LaunchTimeout", "planned again")
	if want := "Deleting nodeclaim whose launch kept failing; its pods will be planned again"; !strings.Contains(env.log(), want) {
		t.Errorf("the log has no %q line", want)
	}
	if n := framework.Counter(t, "nodewright_nodeclaim_launch_failures_total", map[string]string{"provisioner": env.ns, "reason": "launch_failed"}); n < 2 {
		t.Errorf("nodewright_nodeclaim_launch_failures_total{reason=launch_failed} = %v, want at least 2 (retried)", n)
	}

	// The new claim launches once CreateFleet is allowed again: within its backoff.
	pods := env.runningPods(3)
	for _, p := range pods {
		node, err := env.client.CoreV1().Nodes().Get(env.ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node.Labels[v1alpha1.LabelNodeClaim] != second.Name {
			t.Errorf("pod %s runs on the node of nodeclaim %q, want %q", p.Name, node.Labels[v1alpha1.LabelNodeClaim], second.Name)
		}
	}
}

// TestDeletedProvisionerRemovesItsNodes: a Provisioner with no ttlSecondsAfterEmpty keeps
// its empty nodes, but once the Provisioner is deleted its nodes go with it, drained and
// terminated as any other, as Karpenter removes a deleted NodePool's nodes.
func TestDeletedProvisionerRemovesItsNodes(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{
		Requirements: []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)},
	})
	env.inflate(1, nil)
	node := env.nodesOf(env.runningPods(1))[0]
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "inflate", Namespace: env.ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 0}}
	if _, err := env.client.AppsV1().Deployments(env.ns).UpdateScale(env.ctx, "inflate", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.runningPods(0)
	if len(env.claims()) != 1 {
		t.Fatalf("%d nodeclaims, want the empty node's", len(env.claims()))
	}

	if err := framework.Dynamic(t).Resource(framework.ProvisionerGVR).Delete(env.ctx, env.prov.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(env.ctx, t, 60*time.Second, "the deleted provisioner's node and nodeclaim gone", func(ctx context.Context) (bool, error) {
		_, err := env.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
		return apierrors.IsNotFound(err) && len(env.claims()) == 0, nil
	})
	for _, want := range []string{"Deleting nodeclaim of a deleted provisioner", "Deleted node"} {
		if !strings.Contains(env.log(), want) {
			t.Errorf("the log has no %q line", want)
		}
	}
}

// waitForClaimEvent waits for an event about the NodeClaim named claim with reason whose
// note contains substr. Events about cluster-scoped objects are in namespace default.
func (env *provisionEnv) waitForClaimEvent(claim, reason, substr string) {
	env.t.Helper()
	framework.Eventually(env.ctx, env.t, 30*time.Second, fmt.Sprintf("a %s event on nodeclaim %s saying %q", reason, claim, substr), func(ctx context.Context) (bool, error) {
		events, err := env.client.EventsV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == claim && e.Reason == reason && strings.Contains(e.Note, substr) {
				return true, nil
			}
		}
		return false, nil
	})
}

// samePods reports whether a and b reference the same pods, in any order.
func samePods(a, b []v1alpha1.PodReference) bool {
	uids := func(refs []v1alpha1.PodReference) []types.UID {
		var out []types.UID
		for _, r := range refs {
			out = append(out, r.UID)
		}
		slices.Sort(out)
		return out
	}
	return len(a) > 0 && slices.Equal(uids(a), uids(b))
}
