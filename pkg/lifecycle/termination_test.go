package lifecycle

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// evictions records the Eviction API calls of a fake clientset and answers them with 429
// while blocked is true, as a PodDisruptionBudget allowing no disruption would.
type evictionRecorder struct {
	mu      sync.Mutex
	blocked bool
	evicted []string
}

func (r *evictionRecorder) install(e *env) {
	e.kube.PrependReactor("create", "pods/eviction", func(action clienttesting.Action) (bool, runtime.Object, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		ev := action.(clienttesting.CreateAction).GetObject().(*policyv1.Eviction)
		if r.blocked {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		}
		r.evicted = append(r.evicted, ev.Namespace+"/"+ev.Name)
		return true, nil, nil
	})
	// No pod may be deleted except through eviction.
	e.kube.PrependReactor("delete", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		panic("a pod was deleted directly instead of evicted")
	})
}

func TestTerminationDrainsThenTerminates(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	providerID := e.launch(t, nc)
	launched(providerID)(nc)
	initialized(nc)
	e.add(t, nc, node("node-a", providerID, ownedBy("a"), nodeDeleting),
		pod("web", "node-a"), pod("ds", "node-a", daemonSetPod), pod("static", "node-a", mirrorPod),
		pod("job", "node-a", succeeded), pod("elsewhere", "node-b"))
	rec := &evictionRecorder{blocked: true}
	rec.install(e)
	term := &terminator{deps: e.deps}

	// A disruption budget refuses: cordoned, the node and instance stay, retried later.
	requeue, err := term.reconcileNode(e.ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	if requeue != drainPollInterval {
		t.Errorf("requeue after %s, want %s", requeue, drainPollInterval)
	}
	n := e.getNode(t, "node-a")
	if !n.Spec.Unschedulable {
		t.Error("node not cordoned")
	}
	if len(n.Finalizers) != 1 || !e.instanceExists(t, providerID) {
		t.Fatal("node released or instance terminated while a pod could not be evicted")
	}
	if !e.getClaim(t, "a").IsTrue(v1alpha1.ConditionTerminating) {
		t.Error("nodeclaim not marked Terminating")
	}

	// The budget allows it: only the normal pod is evicted; it is still there until it goes.
	rec.blocked = false
	if _, err := term.reconcileNode(e.ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"default/web"}, rec.evicted); diff != "" {
		t.Errorf("evicted pods (-want, +got):\n%s", diff)
	}
	if !e.instanceExists(t, providerID) {
		t.Fatal("instance terminated before the evicted pod left")
	}

	// The pod is gone (the fake has no kubelet): terminate, release, delete the claim.
	if err := e.kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), "default", "web"); err != nil {
		t.Fatal(err)
	}
	if requeue, err := term.reconcileNode(e.ctx, "node-a"); err != nil || requeue != 0 {
		t.Fatalf("reconcile = %s, %v; want done", requeue, err)
	}
	if e.instanceExists(t, providerID) {
		t.Error("instance not terminated")
	}
	if n := e.getNode(t, "node-a"); n != nil && len(n.Finalizers) != 0 {
		t.Errorf("node finalizers = %v, want none", n.Finalizers)
	}
	if e.getClaim(t, "a") != nil {
		t.Error("nodeclaim not deleted")
	}
}

// TestTerminationInstanceGone: a node whose instance is gone is released without a drain.
func TestTerminationInstanceGone(t *testing.T) {
	e := newEnv(t)
	providerID := "aws:///us-east-1a/i-00000000000000009" // never launched in the fake cloud
	e.add(t, claim("a", launched(providerID), initialized), node("node-a", providerID, ownedBy("a"), nodeDeleting), pod("web", "node-a"))
	rec := &evictionRecorder{blocked: true}
	rec.install(e)
	if _, err := (&terminator{deps: e.deps}).reconcileNode(e.ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if n := e.getNode(t, "node-a"); n != nil && len(n.Finalizers) != 0 {
		t.Errorf("node finalizers = %v, want none", n.Finalizers)
	}
	if len(rec.evicted) != 0 {
		t.Errorf("evicted %v from a node whose instance is gone", rec.evicted)
	}
}

// TestTerminationReleasesNodeDespiteConflict: the Node read at the start of the reconcile is
// stale by the time its finalizer comes off (the cordon and the kubelet wrote to it): the
// finalizer is removed in the same pass, not after a failed update and a retry with backoff.
func TestTerminationReleasesNodeDespiteConflict(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	providerID := e.launch(t, nc)
	launched(providerID)(nc)
	initialized(nc)
	e.add(t, nc, node("node-a", providerID, ownedBy("a"), nodeDeleting))
	conflicts := 1
	e.kube.PrependReactor("update", "nodes", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if conflicts == 0 {
			return false, nil, nil
		}
		conflicts--
		return true, nil, apierrors.NewConflict(corev1.Resource("nodes"), "node-a", errors.New("the object has been modified"))
	})
	requeue, err := (&terminator{deps: e.deps}).reconcileNode(e.ctx, "node-a")
	if err != nil || requeue != 0 {
		t.Fatalf("reconcileNode = %s, %v; want 0, nil", requeue, err)
	}
	if n := e.getNode(t, "node-a"); n != nil && len(n.Finalizers) != 0 {
		t.Errorf("node finalizers = %v, want none", n.Finalizers)
	}
	if e.instanceExists(t, providerID) {
		t.Error("instance not terminated")
	}
	if conflicts != 0 {
		t.Error("the injected conflict was never hit")
	}
}

// TestTerminationOfClaim: deleting a NodeClaim deletes its Node first, then terminates the
// instance and removes the claim's finalizer.
func TestTerminationOfClaim(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	providerID := e.launch(t, nc)
	launched(providerID)(nc)
	deleting(nc)
	// The fake apiserver deletes at once, finalizers or not; a plain Node shows the order.
	e.add(t, nc, node("node-a", providerID))
	term := &terminator{deps: e.deps}
	if _, err := term.reconcileClaim(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e.getNode(t, "node-a") != nil {
		t.Fatal("node not deleted")
	}
	if !e.instanceExists(t, providerID) || len(e.getClaim(t, "a").Finalizers) != 1 {
		t.Fatal("instance terminated or claim released before its node was gone")
	}
	if _, err := term.reconcileClaim(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e.instanceExists(t, providerID) {
		t.Error("instance not terminated")
	}
	if got := e.getClaim(t, "a"); got != nil && len(got.Finalizers) != 0 {
		t.Errorf("nodeclaim finalizers = %v, want none", got.Finalizers)
	}
}

// TestTerminationIgnoresOthers: nodes not being deleted, or without our finalizer, are left alone.
func TestTerminationIgnoresOthers(t *testing.T) {
	e := newEnv(t)
	e.add(t, node("alive", "aws:///us-east-1a/i-1", ownedBy("a")),
		node("foreign", "aws:///us-east-1a/i-2", nodeDeleting, func(n *corev1.Node) { n.Finalizers = []string{"other"} }))
	term := &terminator{deps: e.deps}
	for _, name := range []string{"alive", "foreign"} {
		if _, err := term.reconcileNode(e.ctx, name); err != nil {
			t.Fatal(err)
		}
		if n := e.getNode(t, name); n.Spec.Unschedulable || len(n.Finalizers) != 1 {
			t.Errorf("node %s changed: unschedulable %v, finalizers %v", name, n.Spec.Unschedulable, n.Finalizers)
		}
	}
}
