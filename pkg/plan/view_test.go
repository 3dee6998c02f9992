package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/utils/ptr"
)

// TestViewsJudgeAsTheWholeSnapshot: a simulator that runs PreFilter over views (see view)
// and one that runs it over the whole snapshot, changed alike by random node additions and
// removals, placements, moves, removals, reinstalls and relabellings of random pods with every kind of inter-pod
// constraint, give every check the same verdict: Check on every node, CheckIgnoringResources,
// and CheckPlaced of the placed pods.
func TestViewsJudgeAsTheWholeSnapshot(t *testing.T) {
	logger, ctx := ktesting.NewTestContext(t)
	for seed := range uint64(12) {
		r := rand.New(rand.NewPCG(seed, 7))
		var pods []*v1.Pod
		for i := range 60 {
			pods = append(pods, randomViewPod(r, i))
		}
		var initial []*v1.Node
		for i := range 4 {
			initial = append(initial, randomViewNode(r, fmt.Sprintf("seed-%d", i)))
		}
		// Some pods are bound to the initial nodes, as the cluster's pods are.
		var bound []*v1.Pod
		for _, p := range pods[:8] {
			q := p.DeepCopy()
			q.Name += "-bound"
			q.UID += "-bound"
			q.Spec.NodeName = initial[r.IntN(len(initial))].Name
			bound = append(bound, q)
		}
		withViews, err := NewSimulator(ctx, DefaultFrameworkFactory(nil, nil), initial, bound, false)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := NewSimulator(ctx, DefaultFrameworkFactory(nil, nil), initial, bound, false)
		if err != nil {
			t.Fatal(err)
		}
		if withViews.snap.views == nil {
			t.Fatal("the default profile's simulator keeps no views")
		}
		whole.snap.views = nil
		sims := []*Simulator{withViews, whole}

		nodes := map[string]*v1.Node{}
		for _, n := range initial {
			nodes[n.Name] = n
		}
		placed := map[*v1.Pod]string{}
		nextNode := 0
		for step := range 120 {
			switch op := r.IntN(12); {
			case op < 2 || len(nodes) < 2: // a node joins, with a DaemonSet-like pod at times
				n := randomViewNode(r, fmt.Sprintf("node-%d", nextNode))
				nextNode++
				var ds []*v1.Pod
				if r.IntN(3) == 0 {
					ds = append(ds, randomViewPod(r, 1000+nextNode))
				}
				for _, s := range sims {
					s.AddNode(n, ds...)
				}
				nodes[n.Name] = n
			case op < 3: // a node goes, with its pods
				name := randomKey(r, nodes)
				for _, s := range sims {
					s.RemoveNode(name)
				}
				delete(nodes, name)
				for p, at := range placed {
					if at == name {
						delete(placed, p)
					}
				}
			case op < 4 && len(placed) > 0: // a pod is taken off
				p := randomKey(r, placed)
				for _, s := range sims {
					if err := s.Unplace(logger, p, placed[p]); err != nil {
						t.Fatal(err)
					}
				}
				delete(placed, p)
			case op < 5 && len(placed) > 0: // a pod moves to another node
				p := randomKey(r, placed)
				name := randomKey(r, nodes)
				for _, s := range sims {
					if err := s.Unplace(logger, p, placed[p]); err != nil {
						t.Fatal(err)
					}
					if err := s.Place(p, name); err != nil {
						t.Fatal(err)
					}
				}
				placed[p] = name
			case op < 6 && len(placed) > 0: // a node is reinstalled with its pods
				name := placed[randomKey(r, placed)]
				var on []*v1.Pod
				for p, at := range placed {
					if at == name {
						on = append(on, p)
					}
				}
				for _, s := range sims {
					s.RemoveNode(name)
					s.AddNode(nodes[name], on...)
				}
			case op < 7 && len(placed) > 0: // a node becomes one of other labels, its pods kept
				name := placed[randomKey(r, placed)]
				n := randomViewNode(r, name)
				for _, s := range sims {
					var on []*v1.Pod
					for _, pi := range s.snap.nodes[name].Pods {
						on = append(on, pi.GetPod())
					}
					if !s.snap.setNode(n, on) {
						t.Fatalf("node %s not set in place", name)
					}
				}
				nodes[name] = n
			default: // a pod is placed
				p := pods[r.IntN(len(pods))]
				if _, ok := placed[p]; ok {
					continue
				}
				name := randomKey(r, nodes)
				for _, s := range sims {
					if err := s.Place(p, name); err != nil {
						t.Fatal(err)
					}
				}
				placed[p] = name
			}
			// Judge some pods not placed on every node, and some placed ones in place.
			for range 4 {
				p := pods[r.IntN(len(pods))]
				if _, ok := placed[p]; ok {
					continue
				}
				for name := range nodes {
					got, want := withViews.Check(ctx, p, name), whole.Check(ctx, p, name)
					if !sameStatus(got, want) {
						t.Fatalf("seed %d step %d: pod %s on node %s: %s with views, %s over the whole snapshot", seed, step, p.Name, name, got, want)
					}
					got, _ = withViews.CheckIgnoringResources(ctx, p, name)
					want, _ = whole.CheckIgnoringResources(ctx, p, name)
					if !sameStatus(got, want) {
						t.Fatalf("seed %d step %d: pod %s on node %s, resources aside: %s with views, %s over the whole snapshot", seed, step, p.Name, name, got, want)
					}
				}
			}
			for p, name := range placed {
				if r.IntN(4) != 0 {
					continue
				}
				got, want := withViews.CheckPlaced(ctx, logger, p, name), whole.CheckPlaced(ctx, logger, p, name)
				if !sameStatus(got, want) {
					t.Fatalf("seed %d step %d: placed pod %s on node %s: %s with views, %s over the whole snapshot", seed, step, p.Name, name, got, want)
				}
			}
		}
	}
}

// sameStatus reports whether a and b are the same verdict: code, plugin and reasons.
func sameStatus(a, b *fwk.Status) bool {
	if a == nil || b == nil {
		return a.IsSuccess() && b.IsSuccess()
	}
	return a.Code() == b.Code() && a.Plugin() == b.Plugin() && fmt.Sprint(a.Reasons()) == fmt.Sprint(b.Reasons())
}

// randomKey returns a key of m drawn by r, whatever the map's order.
func randomKey[K comparable, V any](r *rand.Rand, m map[K]V) K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return keys[r.IntN(len(keys))]
}

// randomViewNode returns a node named name in one of three zones or none, of one of two
// instance types, tainted at times.
func randomViewNode(r *rand.Rand, name string) *v1.Node {
	w := st.MakeNode().Name(name).Label(v1.LabelHostname, name).Label(v1.LabelInstanceTypeStable, []string{"small", "large"}[r.IntN(2)]).
		Capacity(map[v1.ResourceName]string{v1.ResourceCPU: "4", v1.ResourceMemory: "8Gi", v1.ResourcePods: "20"})
	if r.IntN(8) != 0 {
		w = w.Label(v1.LabelTopologyZone, []string{"a", "b", "c"}[r.IntN(3)])
	}
	if r.IntN(6) == 0 {
		w = w.Taints([]v1.Taint{{Key: "dedicated", Value: "batch", Effect: v1.TaintEffectNoSchedule}})
	}
	return w.Obj()
}

// randomViewPod returns the i-th random pod: in one of two namespaces, with app and tier
// labels, and at random hard or soft spread over zones or nodes (honouring taints, with
// minDomains at times), required affinity or anti-affinity by zone or node (selecting
// every namespace at times), a node selector and a toleration.
func randomViewPod(r *rand.Rand, i int) *v1.Pod {
	ns := []string{"one", "two"}[r.IntN(2)]
	app := []string{"x", "y", "z"}[r.IntN(3)]
	w := st.MakePod().Namespace(ns).Name(fmt.Sprintf("pod-%d", i)).UID(fmt.Sprintf("uid-%d", i)).
		Label("app", app).Label("tier", []string{"1", "2"}[r.IntN(2)]).
		Req(map[v1.ResourceName]string{v1.ResourceCPU: []string{"100m", "500m", "1"}[r.IntN(3)]})
	selector := st.MakeLabelSelector().Label("app", []string{"x", "y", "z"}[r.IntN(3)]).Obj()
	key := []string{v1.LabelTopologyZone, v1.LabelHostname}[r.IntN(2)]
	switch r.IntN(6) {
	case 0:
		when := []v1.UnsatisfiableConstraintAction{v1.DoNotSchedule, v1.ScheduleAnyway}[r.IntN(2)]
		var minDomains *int32
		if r.IntN(3) == 0 {
			minDomains = ptr.To[int32](3)
		}
		var taints *v1.NodeInclusionPolicy
		if r.IntN(2) == 0 {
			taints = ptr.To(v1.NodeInclusionPolicyHonor)
		}
		w = w.SpreadConstraint(1+r.IntN(2), key, when, selector, minDomains, nil, taints, nil)
		if r.IntN(3) == 0 {
			w = w.SpreadConstraint(1, v1.LabelHostname, v1.DoNotSchedule, selector, nil, nil, nil, nil)
		}
	case 1:
		w = w.PodAffinity(key, selector, st.PodAffinityWithRequiredReq)
	case 2:
		w = w.PodAntiAffinity(key, selector, st.PodAntiAffinityWithRequiredReq)
	case 3:
		w = w.PodAntiAffinity(key, selector, st.PodAntiAffinityWithRequiredReq)
		pod := w.Obj()
		pod.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].NamespaceSelector = &metav1.LabelSelector{}
		return withNodeSelection(r, pod)
	}
	return withNodeSelection(r, w.Obj())
}

// withNodeSelection gives pod, at times, a node selector on the instance type and a
// toleration of the taint randomViewNode puts on nodes.
func withNodeSelection(r *rand.Rand, pod *v1.Pod) *v1.Pod {
	if r.IntN(4) == 0 {
		pod.Spec.NodeSelector = map[string]string{v1.LabelInstanceTypeStable: "large"}
	}
	if r.IntN(3) == 0 {
		pod.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
	}
	return pod
}
