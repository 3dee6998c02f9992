package lifecycle

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestResyncEvery: every period, the first time one period after the start, every cached
// NodeClaim, Provisioner, Node and pod is handed to its event handler again, as an informer's
// resync would, and the controllers' queues get the keys they concern.
func TestResyncEvery(t *testing.T) {
	e := newEnv(t)
	m, err := New(Options{Client: e.kube, Dynamic: e.dyn, Cloud: e.cloud, Clock: e.clock, Recorder: events.NewFakeRecorder(10)})
	if err != nil {
		t.Fatal(err)
	}
	// Filled by hand: a resync reads the caches; it needs no informer running.
	nc, err := toUnstructured(claim("a", launched("aws:///us-east-1a/i-00000000000000001")), "NodeClaim")
	if err != nil {
		t.Fatal(err)
	}
	p, err := toUnstructured(provisioner("spot"), "Provisioner")
	if err != nil {
		t.Fatal(err)
	}
	for _, add := range []struct {
		store cache.Store
		obj   runtime.Object
	}{
		{m.caches.claims.GetStore(), nc},
		{m.caches.provisioners.GetStore(), p},
		{m.caches.nodes.GetStore(), node("node-b", "aws:///us-east-1a/i-00000000000000002", ownedBy("b"))},
		{m.caches.pods.GetStore(), pod("web", "node-c")},
	} {
		if err := add.store.Add(add.obj); err != nil {
			t.Fatal(err)
		}
	}

	// A clock of its own: the work queues' heartbeats wait on e.clock.
	clk := clocktesting.NewFakeClock(t0)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.caches.resyncEvery(ctx, clk, time.Minute)
	}()
	waitForWaiter := func() {
		t.Helper()
		if err := wait.PollUntilContextTimeout(e.ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return clk.HasWaiters(), nil
		}); err != nil {
			t.Fatalf("resync not waiting for its period: %v", err)
		}
	}
	waitForWaiter()
	clk.Step(time.Minute - time.Second)
	if got := queued(m); len(got) != 0 || !clk.HasWaiters() {
		t.Fatalf("resync before its period: queued %v", got)
	}
	clk.Step(time.Second)
	waitForWaiter() // for the next period: this one's resync is done
	cancel()
	<-done

	want := map[string][]string{
		// The claim's name, its Provisioner's and its node's; the Node's claim by its label.
		"launch":                {"a"},
		"registration":          {"a", "b"},
		"nodeclaim-termination": {"a", "b"},
		"expiry":                {"default", "spot"},
		"provisioner-deletion":  {"default", "spot"},
		"emptiness":             {"node-a", "node-b", "node-c"},
		"node-termination":      {"node-b", "node-c"},
	}
	if diff := cmp.Diff(want, queued(m)); diff != "" {
		t.Errorf("keys queued by the resync (-want, +got):\n%s", diff)
	}
}

// queued empties the controllers' queues and returns their keys, sorted, by controller.
func queued(m *Manager) map[string][]string {
	got := map[string][]string{}
	for _, c := range []*controller{m.launch, m.register, m.empty, m.nodeTermination, m.claimTermination, m.expire, m.orphan} {
		for c.queue.Len() > 0 {
			key, _ := c.queue.Get()
			c.queue.Done(key)
			got[c.name] = append(got[c.name], key)
		}
		slices.Sort(got[c.name])
	}
	for name, keys := range got {
		if len(keys) == 0 {
			delete(got, name)
		}
	}
	return got
}

// TestNewRegistersOnGivenFactories: the Manager puts its informers, indexes and event
// handlers on the factories it is given, so that the process keeps one cache of each kind,
// and builds a factory only for what it is not given.
func TestNewRegistersOnGivenFactories(t *testing.T) {
	tests := []struct {
		name               string
		givenKube, givenDy bool
		wantOwned          int
	}{
		{name: "both given", givenKube: true, givenDy: true, wantOwned: 0},
		{name: "kube informers given", givenKube: true, wantOwned: 1},
		{name: "none given", wantOwned: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			kube := informers.NewSharedInformerFactory(e.kube, 0)
			dyn := dynamicinformer.NewDynamicSharedInformerFactory(e.dyn, 0)
			opts := Options{Client: e.kube, Dynamic: e.dyn, Cloud: e.cloud, Clock: e.clock, Recorder: events.NewFakeRecorder(10)}
			if tc.givenKube {
				opts.Informers = kube
			}
			if tc.givenDy {
				opts.DynamicInformers = dyn
			}
			m, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(m.caches.owned); got != tc.wantOwned {
				t.Errorf("factories of its own = %d, want %d", got, tc.wantOwned)
			}
			for _, c := range []struct {
				what        string
				got, shared cache.SharedIndexInformer
				given       bool
				index       string
			}{
				{"nodeclaims", m.caches.claims, dyn.ForResource(v1alpha1.NodeClaimGVR).Informer(), tc.givenDy, providerIDIndex},
				{"provisioners", m.caches.provisioners, dyn.ForResource(v1alpha1.ProvisionerGVR).Informer(), tc.givenDy, ""},
				{"nodes", m.caches.nodes, kube.Core().V1().Nodes().Informer(), tc.givenKube, ""},
				{"pods", m.caches.pods, kube.Core().V1().Pods().Informer(), tc.givenKube, podNodeIndex},
			} {
				// Informer() wraps the factory's informer anew on every call: the cache is what
				// they share.
				if shared := c.got.GetIndexer() == c.shared.GetIndexer(); shared != c.given {
					t.Errorf("%s informer is the given factory's: %v, want %v", c.what, shared, c.given)
				}
				if _, ok := c.shared.GetIndexer().GetIndexers()[c.index]; c.index != "" && ok != c.given {
					t.Errorf("%s informer of the given factory has index %q: %v, want %v", c.what, c.index, ok, c.given)
				}
			}
		})
	}
}

// TestNewTwiceOnOneFactory: two Managers of one process (one per scheduler profile) share
// the factories they are given, indexes included.
func TestNewTwiceOnOneFactory(t *testing.T) {
	e := newEnv(t)
	opts := Options{
		Client: e.kube, Dynamic: e.dyn, Cloud: e.cloud, Clock: e.clock, Recorder: events.NewFakeRecorder(10),
		Informers:        informers.NewSharedInformerFactory(e.kube, 0),
		DynamicInformers: dynamicinformer.NewDynamicSharedInformerFactory(e.dyn, 0),
	}
	for i := range 2 {
		if _, err := New(opts); err != nil {
			t.Fatalf("Manager %d: %v", i+1, err)
		}
	}
}

// TestRunOnGivenFactories wires the Manager on factories its caller owns and starts: their
// informers drive the controllers, and a new NodeClaim is launched.
func TestRunOnGivenFactories(t *testing.T) {
	e := newEnv(t)
	e.add(t, provisioner("default"), nodeClass("default"))
	kube := informers.NewSharedInformerFactory(e.kube, 0)
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(e.dyn, 0)
	m, err := New(Options{
		Client: e.kube, Dynamic: e.dyn, Cloud: e.cloud, Clock: e.clock, Recorder: events.NewFakeRecorder(100),
		Informers: kube, DynamicInformers: dyn, LeaderElection: LeaderElectionOptions{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The owner starts its factories once everyone has registered on them, as kube-scheduler
	// does after building its plugins.
	kube.Start(e.ctx.Done())
	dyn.Start(e.ctx.Done())
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	e.add(t, claim("a"))
	if err := wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		nc := e.getClaim(t, "a")
		return nc != nil && nc.IsTrue(v1alpha1.ConditionLaunched), nil
	}); err != nil {
		t.Fatalf("nodeclaim not launched: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}
