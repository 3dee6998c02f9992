package lifecycle

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestEmptiness(t *testing.T) {
	tests := []struct {
		name        string
		provisioner *v1alpha1.Provisioner
		pods        []*corev1.Pod
		uninit      bool
		// reserved are the pods the NodeClaim was launched for, by name (UID = name), and
		// added those added to its spare room since (its annotation).
		reserved, added []string
		// wantEmpty is whether the Empty condition is set after the first reconcile, and
		// wantDeleted whether the Node is gone once the TTL has passed.
		wantEmpty, wantDeleted bool
	}{{
		name:        "only DaemonSet, mirror and finished pods: empty, deleted after the TTL",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		pods:        []*corev1.Pod{pod("ds", "node-a", daemonSetPod), pod("static", "node-a", mirrorPod), pod("job", "node-a", succeeded)},
		wantEmpty:   true, wantDeleted: true,
	}, {
		name:        "no pods at all: empty",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		wantEmpty:   true, wantDeleted: true,
	}, {
		name:        "a running pod: not empty",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		pods:        []*corev1.Pod{pod("web", "node-a"), pod("ds", "node-a", daemonSetPod)},
	}, {
		name:        "a pod on another node does not count",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		pods:        []*corev1.Pod{pod("web", "node-b")},
		wantEmpty:   true, wantDeleted: true,
	}, {
		name:        "a do-not-evict pod blocks",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		pods:        []*corev1.Pod{pod("ds", "node-a", daemonSetPod, doNotEvict)},
	}, {
		name:        "a pod the node was launched for, still pending: not empty",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		pods:        []*corev1.Pod{pod("web", "", withUID)},
		reserved:    []string{"web"},
	}, {
		name:        "a pod added to the node's spare room, still pending: not empty",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		pods:        []*corev1.Pod{pod("web", "", withUID)},
		reserved:    []string{"gone"},
		added:       []string{"web"},
	}, {
		name:        "pods the node was launched for, bound elsewhere, gone or replaced: empty",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		pods:        []*corev1.Pod{pod("web", "node-b", withUID), pod("api", "", func(p *corev1.Pod) { p.UID = "other" })},
		reserved:    []string{"web", "gone", "api"},
		wantEmpty:   true, wantDeleted: true,
	}, {
		name:        "no ttlSecondsAfterEmpty: empty nodes are kept",
		provisioner: provisioner("default"),
	}, {
		name:        "a node not initialized yet is not empty",
		provisioner: provisioner("default", ttlAfterEmpty(30)),
		uninit:      true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			opts := []func(*v1alpha1.NodeClaim){launched("aws:///us-east-1a/i-00000000000000001"), func(nc *v1alpha1.NodeClaim) {
				for _, name := range tc.reserved {
					nc.Spec.Pods = append(nc.Spec.Pods, v1alpha1.PodReference{Namespace: "default", Name: name, UID: types.UID(name)})
				}
				var added []string
				for _, name := range tc.added {
					added = append(added, fmt.Sprintf(`{"namespace":"default","name":%q,"uid":%q}`, name, name))
				}
				if len(added) > 0 {
					nc.Annotations = map[string]string{v1alpha1.AnnotationAddedPods: "[" + strings.Join(added, ",") + "]"}
				}
			}}
			if !tc.uninit {
				opts = append(opts, initialized)
			}
			e.add(t, claim("a", opts...), tc.provisioner, node("node-a", "aws:///us-east-1a/i-00000000000000001", ownedBy("a")))
			for _, p := range tc.pods {
				e.add(t, p)
			}
			em := &emptiness{deps: e.deps}
			requeue, err := em.reconcile(e.ctx, "node-a")
			if err != nil {
				t.Fatal(err)
			}
			empty := condition(e.getClaim(t, "a"), v1alpha1.ConditionEmpty)
			if gotEmpty := empty != nil && empty.Status == "True"; gotEmpty != tc.wantEmpty {
				t.Fatalf("Empty condition = %+v, want set %v", empty, tc.wantEmpty)
			}
			if tc.wantEmpty && (requeue != 30*time.Second || !empty.LastTransitionTime.Time.Equal(t0)) {
				t.Errorf("requeue after %s since %s, want 30s since %s", requeue, empty.LastTransitionTime, t0)
			}

			e.clock.Step(29 * time.Second)
			if _, err := em.reconcile(e.ctx, "node-a"); err != nil {
				t.Fatal(err)
			}
			if e.getNode(t, "node-a") == nil {
				t.Fatal("node deleted before its TTL")
			}
			e.clock.Step(time.Second)
			if _, err := em.reconcile(e.ctx, "node-a"); err != nil {
				t.Fatal(err)
			}
			if gotDeleted := e.getNode(t, "node-a") == nil; gotDeleted != tc.wantDeleted {
				t.Errorf("node deleted = %v, want %v", gotDeleted, tc.wantDeleted)
			}
		})
	}
}

// TestEmptinessTTLNotCutShortByRounding: the API keeps the Empty condition's time to the
// second; a node found empty at 12:00:00.3 must still be kept for the whole TTL, not deleted
// at 12:00:30 because the stored time was rounded down to 12:00:00.
func TestEmptinessTTLNotCutShortByRounding(t *testing.T) {
	e := newEnv(t)
	providerID := "aws:///us-east-1a/i-00000000000000001"
	e.add(t, claim("a", launched(providerID), initialized), provisioner("default", ttlAfterEmpty(30)), node("node-a", providerID, ownedBy("a")))
	em := &emptiness{deps: e.deps}
	e.clock.Step(300 * time.Millisecond)
	requeue, err := em.reconcile(e.ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	// 30s from the end of the second the node was found empty in: 30s + 0.7s.
	if want := 30*time.Second + 700*time.Millisecond; requeue != want {
		t.Errorf("requeue after %s, want %s", requeue, want)
	}
	e.clock.Step(30 * time.Second) // 30s after the node was found empty
	if _, err := em.reconcile(e.ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if e.getNode(t, "node-a") == nil {
		t.Fatal("node deleted 30s after it was found empty (its TTL is 30s), before the second it was found in ended")
	}
	e.clock.Step(700 * time.Millisecond)
	if _, err := em.reconcile(e.ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if e.getNode(t, "node-a") != nil {
		t.Error("node still exists after its TTL")
	}
}

// TestEmptinessClearedByPod: a pod arriving clears the Empty condition, and a later emptiness
// starts the TTL afresh.
func TestEmptinessClearedByPod(t *testing.T) {
	e := newEnv(t)
	providerID := "aws:///us-east-1a/i-00000000000000001"
	e.add(t, claim("a", launched(providerID), initialized), provisioner("default", ttlAfterEmpty(30)), node("node-a", providerID, ownedBy("a")))
	em := &emptiness{deps: e.deps}
	reconcile := func(objs ...runtime.Object) {
		t.Helper()
		e.add(t, objs...)
		if _, err := em.reconcile(e.ctx, "node-a"); err != nil {
			t.Fatal(err)
		}
	}
	reconcile()
	if !e.getClaim(t, "a").IsTrue(v1alpha1.ConditionEmpty) {
		t.Fatal("empty node has no Empty condition")
	}
	e.clock.Step(20 * time.Second)
	reconcile(pod("web", "node-a"))
	if c := condition(e.getClaim(t, "a"), v1alpha1.ConditionEmpty); c != nil {
		t.Fatalf("Empty condition = %+v after a pod arrived, want none", c)
	}
	if err := e.kube.CoreV1().Pods("default").Delete(e.ctx, "web", deleteNow); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(20 * time.Second) // 40s since the node first was empty, 0s since it is again
	reconcile()
	e.clock.Step(20 * time.Second)
	reconcile()
	if e.getNode(t, "node-a") == nil {
		t.Fatal("node deleted 20s after it became empty again, want the TTL to restart")
	}
	e.clock.Step(10 * time.Second)
	reconcile()
	if e.getNode(t, "node-a") != nil {
		t.Error("node still exists 30s after it became empty again")
	}
}

// TestEmptinessFromCacheWithoutFinishedPods: the pods cache the lifecycle shares with
// kube-scheduler lists no finished pods; a node whose only pods have finished (one of them
// asks not to be evicted, another is a pod the node was launched for that finished unbound)
// is found empty and deleted after its TTL, as from a cache that lists them.
func TestEmptinessFromCacheWithoutFinishedPods(t *testing.T) {
	failed := func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }
	pods := []*corev1.Pod{pod("job", "node-a", doNotEvict, succeeded), pod("web", "", withUID, failed)}
	for _, tc := range []struct {
		name   string
		cached []*corev1.Pod
	}{
		{name: "cache with finished pods", cached: pods},
		{name: "cache without finished pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			providerID := "aws:///us-east-1a/i-00000000000000001"
			e.add(t, claim("a", launched(providerID), initialized, func(nc *v1alpha1.NodeClaim) {
				nc.Spec.Pods = []v1alpha1.PodReference{{Namespace: "default", Name: "web", UID: "web"}}
			}), provisioner("default", ttlAfterEmpty(30)), node("node-a", providerID, ownedBy("a")))
			for _, p := range pods {
				e.add(t, p)
			}
			e.deps.pods = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{podNodeIndex: indexPodByNode})
			for _, p := range tc.cached {
				if err := e.deps.pods.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			em := &emptiness{deps: e.deps}
			reconcileEmptiness(t, e, em, "node-a")
			if !e.getClaim(t, "a").IsTrue(v1alpha1.ConditionEmpty) {
				t.Fatal("node with finished pods only has no Empty condition")
			}
			e.clock.Step(30 * time.Second)
			reconcileEmptiness(t, e, em, "node-a")
			if e.getNode(t, "node-a") != nil {
				t.Error("node with finished pods only still exists after its TTL")
			}
		})
	}
}

// reconcileEmptiness runs em once for the node named node, failing the test on an error.
func reconcileEmptiness(t *testing.T, e *env, em *emptiness, node string) {
	t.Helper()
	if _, err := em.reconcile(e.ctx, node); err != nil {
		t.Fatal(err)
	}
}

// withUID gives a pod its name as UID, as the reserved pods of TestEmptiness's claims have.
func withUID(p *corev1.Pod) { p.UID = types.UID(p.Name) }
