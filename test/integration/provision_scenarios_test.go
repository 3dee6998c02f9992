package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// spotIn is a Provisioner spec of spot nodes in zones (any zone when none is given).
func spotIn(zones ...string) v1alpha1.ProvisionerSpec {
	reqs := []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)}
	if len(zones) > 0 {
		reqs = append(reqs, requirement(corev1.LabelTopologyZone, zones...))
	}
	return v1alpha1.ProvisionerSpec{Requirements: reqs}
}

// countBy counts the nodes by the value of their label key.
func countBy(nodes []*corev1.Node, pods []corev1.Pod, key string) map[string]int {
	byName := map[string]*corev1.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	out := map[string]int{}
	for _, p := range pods {
		out[byName[p.Spec.NodeName].Labels[key]]++
	}
	return out
}

// TestProvisionTopologySpreadOverZones: 6 pods spreading over zones with maxSkew 1, on a
// Provisioner of 3 zones -> 2 pods in each zone, on nodes planned there.
func TestProvisionTopologySpreadOverZones(t *testing.T) {
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	env := newProvisionEnv(t, spotIn(zones...))
	env.inflate(6, func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("500m")
		s.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "inflate"}},
		}}
	})
	pods := env.runningPods(6)
	got := countBy(env.nodesOf(pods), pods, corev1.LabelTopologyZone)
	want := map[string]int{"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pods per zone = %v, want %v", got, want)
	}
	env.assertNoStrandedPods()
}

// TestProvisionHostnameAntiAffinity: 4 pods that refuse to share a host -> 4 nodes, one pod
// each.
func TestProvisionHostnameAntiAffinity(t *testing.T) {
	env := newProvisionEnv(t, spotIn())
	env.inflate(4, func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("500m")
		s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				TopologyKey:   corev1.LabelHostname,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "inflate"}},
			}},
		}}
	})
	pods := env.runningPods(4)
	nodes := env.nodesOf(pods)
	if len(nodes) != 4 {
		t.Errorf("4 pods on %d nodes, want 4", len(nodes))
	}
	if claims := env.claims(); len(claims) != 4 {
		t.Errorf("%d nodeclaims, want 4", len(claims))
	}
	env.assertNoStrandedPods()
}

// TestProvisionGPU: a pod requesting a GPU gets a node of a GPU instance type, whose node
// has the GPU as its device plugin would register it.
func TestProvisionGPU(t *testing.T) {
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{})
	const gpu = corev1.ResourceName("nvidia.com/gpu")
	env.inflate(1, func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Requests[gpu] = resource.MustParse("1")
		s.Containers[0].Resources.Limits = corev1.ResourceList{gpu: resource.MustParse("1")}
	})
	pods := env.runningPods(1)
	n := env.nodesOf(pods)[0]
	if q := n.Status.Allocatable[gpu]; q.Value() < 1 {
		t.Errorf("node %s (%s) has %s %s allocatable, want at least 1", n.Name, n.Labels[corev1.LabelInstanceTypeStable], q.String(), gpu)
	}
	if n.Labels[v1alpha1.LabelInstanceGPUName] == "" {
		t.Errorf("node %s (%s) has no %s label", n.Name, n.Labels[corev1.LabelInstanceTypeStable], v1alpha1.LabelInstanceGPUName)
	}
}

// TestProvisionWeightedProvisioners: of two Provisioners that can both serve the pods, the
// heavier one's nodes are launched, though the lighter one's spot nodes are cheaper.
func TestProvisionWeightedProvisioners(t *testing.T) {
	light := spotIn()
	light.Weight = ptr.To[int32](10)
	env := newProvisionEnv(t, light)
	heavy := env.provisioner("heavy", v1alpha1.ProvisionerSpec{
		Weight:       ptr.To[int32](50),
		Requirements: []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeOnDemand)},
	})
	env.inflate(2, nil)
	pods := env.runningPods(2)
	for _, n := range env.nodesOf(pods) {
		if got := n.Labels[v1alpha1.LabelProvisionerName]; got != heavy {
			t.Errorf("node %s is of provisioner %q, want the heavier %q", n.Name, got, heavy)
		}
		if got := n.Labels[v1alpha1.LabelCapacityType]; got != v1alpha1.CapacityTypeOnDemand {
			t.Errorf("node %s is %s, want on-demand", n.Name, got)
		}
	}
	if claims := env.claims(); len(claims) != 0 {
		t.Errorf("the lighter provisioner has %d nodeclaims, want none", len(claims))
	}
}

// TestProvisionDaemonSetSizesNodes: a DaemonSet requesting 1 CPU on the Provisioner's nodes
// is counted: 3 pods x 1 CPU get one node of the cheapest spot offering that holds 4 CPUs,
// and the DaemonSet's pod runs there next to them.
func TestProvisionDaemonSetSizesNodes(t *testing.T) {
	env := newProvisionEnv(t, spotIn())
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: env.ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SchedulerName:                 schedulerName,
					NodeSelector:                  map[string]string{v1alpha1.LabelProvisionerName: env.ns},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{Name: "agent", Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
				},
			},
		},
	}
	if _, err := env.client.AppsV1().DaemonSets(env.ns).Create(env.ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.inflate(3, nil)
	pods := env.runningPods(4) // 3 of inflate and the DaemonSet's
	nodes := env.nodesOf(pods)
	if len(nodes) != 1 {
		t.Fatalf("pods run on %d nodes, want 1", len(nodes))
	}
	n := nodes[0]
	if alloc := n.Status.Allocatable[corev1.ResourceCPU]; alloc.Cmp(resource.MustParse("4")) < 0 {
		t.Errorf("node %s (%s) has %s CPUs allocatable, want at least 4 (3 pods and the DaemonSet's)", n.Name, n.Labels[corev1.LabelInstanceTypeStable], alloc.String())
	}
	// The plan's choice (CreateFleet's price-capacity-optimized strategy may launch another of
	// its options) is the cheapest spot offering that holds 4 CPUs.
	claims := env.claims()
	if len(claims) != 1 {
		t.Fatalf("%d nodeclaims, want 1", len(claims))
	}
	var chosen, zone string
	for _, r := range claims[0].Spec.Requirements {
		switch r.Key {
		case corev1.LabelInstanceTypeStable:
			chosen = r.Values[0]
		case corev1.LabelTopologyZone:
			zone = r.Values[0]
		}
	}
	if lowest, got := env.cheapest(v1alpha1.CapacityTypeSpot, resource.MustParse("4"), chosen, zone); got != lowest {
		t.Errorf("the plan chose %s in %s at $%v/h, want the cheapest spot offering holding 4 CPUs ($%v/h)", chosen, zone, got, lowest)
	}
	env.assertNoStrandedPods()
}

// createPods creates pods with up to 10 requests in flight, with no client-side rate limit,
// and returns how long it took.
func (env *provisionEnv) createPods(pods []*corev1.Pod) time.Duration {
	env.t.Helper()
	cfg := rest.CopyConfig(framework.RESTConfig(env.t))
	cfg.QPS, cfg.Burst = -1, 0
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		env.t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(pods))
	work := make(chan *corev1.Pod)
	for range 10 {
		wg.Go(func() {
			for p := range work {
				if _, err := client.CoreV1().Pods(env.ns).Create(env.ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("creating pod %s: %w", p.Name, err)
				}
			}
		})
	}
	for _, p := range pods {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		env.t.Fatal(err)
	}
	return time.Since(start)
}

// pod is a pause pod of the env's namespace for nodewright-scheduler requesting cpu.
func (env *provisionEnv) pod(name, cpu string) *st.PodWrapper {
	return st.MakePod().Namespace(env.ns).Name(name).SchedulerName(schedulerName).
		Container("registry.k8s.io/pause:3.10").TerminationGracePeriodSeconds(0).
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: cpu, corev1.ResourceMemory: "256Mi"})
}

// assertNoStrandedPods checks every NodeClaim of the env's Provisioners: each pod it was
// launched for that still exists is bound to its node, and each claim has a pod bound.
func (env *provisionEnv) assertNoStrandedPods() {
	env.t.Helper()
	all, err := framework.ListNodeClaims(env.ctx, env.t)
	if err != nil {
		env.t.Fatal(err)
	}
	for _, nc := range all {
		if !strings.HasPrefix(nc.Spec.Provisioner, env.ns) {
			continue
		}
		bound := 0
		for _, ref := range nc.Spec.Pods {
			pod, err := env.client.CoreV1().Pods(ref.Namespace).Get(env.ctx, ref.Name, metav1.GetOptions{})
			if err != nil || pod.UID != ref.UID {
				continue
			}
			if pod.Spec.NodeName != nc.Status.NodeName {
				env.t.Errorf("pod %s was planned onto nodeclaim %s (node %q) but is bound to %q", ref.Name, nc.Name, nc.Status.NodeName, pod.Spec.NodeName)
				continue
			}
			bound++
		}
		if bound == 0 {
			env.t.Errorf("nodeclaim %s (%s) has none of its %d pods bound", nc.Name, nc.Status.InstanceType, len(nc.Spec.Pods))
		}
	}
}

// onOneClaim returns the claim of each pod the claims were launched for, and fails the test
// for a pod on two claims.
func onOneClaim(t *testing.T, claims []v1alpha1.NodeClaim) map[types.UID]string {
	t.Helper()
	out := map[types.UID]string{}
	for _, nc := range claims {
		for _, ref := range nc.Spec.Pods {
			if other, ok := out[ref.UID]; ok {
				t.Errorf("pod %s is on nodeclaims %s and %s", ref.Name, other, nc.Name)
			}
			out[ref.UID] = nc.Name
		}
	}
	return out
}

// TestProvisionBurstIsOneRound: 100 pods created within a second are planned in one round:
// the NodeClaims are exactly the nodes Plan computes for the 100 pods at once (no second
// round plans for pods the first covered), each pod is on one claim, and every pod runs on
// the node of its claim.
func TestProvisionBurstIsOneRound(t *testing.T) {
	spec := spotIn()
	// Nodes of at most 8 vCPUs, so that the burst needs many.
	spec.Requirements = append(spec.Requirements, v1alpha1.NodeSelectorRequirement{Key: v1alpha1.LabelInstanceCPU, Operator: corev1.NodeSelectorOpLt, Values: []string{"9"}})
	env := newProvisionEnv(t, spec)
	var pods []*corev1.Pod
	for i := range 100 {
		// Only this Provisioner's nodes, so the in-memory plan below sees the same cluster.
		pods = append(pods, env.pod(fmt.Sprintf("burst-%03d", i), []string{"250m", "500m", "1", "1500m"}[i%4]).
			NodeSelector(map[string]string{v1alpha1.LabelProvisionerName: env.ns}).Obj())
	}
	took := env.createPods(pods)
	t.Logf("created 100 pods in %s", took)
	if took > time.Second {
		t.Logf("creating the pods took more than a second on this machine; the batch window (idle 1s) still covers them")
	}
	running := env.runningPods(100)

	claims := env.claims()
	if onClaim := onOneClaim(t, claims); len(onClaim) != 100 {
		t.Errorf("%d pods are on a nodeclaim, want 100", len(onClaim))
	}
	env.assertNoStrandedPods()

	// The plan of one round over the 100 pods, as the round computed it.
	var pending []*corev1.Pod
	for i := range running {
		p := running[i].DeepCopy()
		p.Spec.NodeName = ""
		pending = append(pending, p)
	}
	prov := env.prov
	provider, _ := framework.AWSProvider(t, env.emulator)
	its, err := provider.InstanceTypes(env.ctx, env.class, nil)
	if err != nil {
		t.Fatal(err)
	}
	result, err := plan.Plan(env.ctx, plan.Input{
		Pods: pending, Provisioners: []*v1alpha1.Provisioner{prov},
		InstanceTypes: map[string][]*cloud.InstanceType{prov.Name: its}, Region: emulator.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Nodes) != len(claims) {
		t.Errorf("%d nodeclaims, want %d: the plan of one round for the 100 pods", len(claims), len(result.Nodes))
	}
	if n := strings.Count(env.log(), "Computed packing of"); n == 0 {
		t.Error("no packing was logged")
	}
}

// randomCase returns the pods of stranded-pod case c: 1-5 pods with random requests, zone or
// arch selectors, zone or hostname topology spread and hostname anti-affinity among the
// case's own pods.
func (env *provisionEnv) randomCase(r *rand.Rand, c int) []*corev1.Pod {
	var pods []*corev1.Pod
	group := fmt.Sprintf("case-%02d", c)
	for i := range 1 + r.IntN(5) {
		w := env.pod(fmt.Sprintf("%s-%d", group, i), fmt.Sprintf("%dm", 100+r.IntN(3000))).Label("case", group)
		switch r.IntN(4) {
		case 0:
			w = w.NodeSelector(map[string]string{corev1.LabelTopologyZone: []string{"us-east-1a", "us-east-1b", "us-east-1c"}[r.IntN(3)]})
		case 1:
			w = w.NodeSelector(map[string]string{corev1.LabelArchStable: []string{"amd64", "arm64"}[r.IntN(2)]})
		}
		sel := st.MakeLabelSelector().In("case", []string{group}).Obj()
		switch r.IntN(4) {
		case 0:
			w = w.SpreadConstraint(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, sel, nil, nil, nil, nil)
		case 1:
			w = w.SpreadConstraint(1+r.IntN(2), corev1.LabelHostname, corev1.DoNotSchedule, sel, nil, nil, nil, nil)
		case 2:
			w = w.PodAntiAffinityIn("case", corev1.LabelHostname, []string{group}, st.PodAntiAffinityWithRequiredReq)
		}
		pods = append(pods, w.Obj())
	}
	return pods
}

// TestProvisionNoStrandedPods is the end-to-end half of the stranded-pods check (the
// in-memory half, 300 cases, is pkg/plugins/provision's TestNoStrandedPods): 24 seeded
// random cases over requests, selectors, spread and anti-affinity, created at once; every
// pod planned onto a NodeClaim must end bound to that claim's node.
func TestProvisionNoStrandedPods(t *testing.T) {
	const cases, seed = 24, 2026
	env := newProvisionEnv(t, spotIn("us-east-1a", "us-east-1b", "us-east-1c"))
	r := rand.New(rand.NewPCG(seed, 6))
	var pods []*corev1.Pod
	for c := range cases {
		pods = append(pods, env.randomCase(r, c)...)
	}
	t.Logf("%d cases, %d pods (seed %d)", cases, len(pods), seed)
	env.createPods(pods)

	// Wait until every pod is reserved on a claim or explained, and every reserved pod is bound.
	framework.Eventually(env.ctx, t, 120*time.Second, "every planned pod bound", func(ctx context.Context) (bool, error) {
		list, err := env.client.CoreV1().Pods(env.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		reserved := map[types.UID]bool{}
		for _, nc := range env.claims() {
			for _, ref := range nc.Spec.Pods {
				reserved[ref.UID] = true
			}
		}
		for _, p := range list.Items {
			if reserved[p.UID] && p.Spec.NodeName == "" {
				return false, nil
			}
		}
		return len(reserved) > 0, nil
	})
	env.assertNoStrandedPods()
	list, err := env.client.CoreV1().Pods(env.ns).List(env.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var unbound []string
	for _, p := range list.Items {
		if p.Spec.NodeName == "" {
			unbound = append(unbound, p.Name)
		}
	}
	sort.Strings(unbound)
	t.Logf("%d of %d pods bound; not planned: %v", len(list.Items)-len(unbound), len(list.Items), unbound)
}

// TestProvisionRestartMidRound: the scheduler stops after writing a NodeClaim and before its
// node registers, more pods arrive while it is down, and a new scheduler starts: it plans
// only the new pods (the ledger is rebuilt from the NodeClaims), and every pod lands.
func TestProvisionRestartMidRound(t *testing.T) {
	env := newProvisionEnv(t, spotIn(), func(o *envOptions) { o.emulator.LaunchLatency = 4 * time.Second })
	var first, second []*corev1.Pod
	for i := range 3 {
		first = append(first, env.pod(fmt.Sprintf("first-%d", i), "1").Obj())
		second = append(second, env.pod(fmt.Sprintf("second-%d", i), "1").Obj())
	}
	env.createPods(first)
	framework.Eventually(env.ctx, t, 30*time.Second, "a nodeclaim for the first pods", func(context.Context) (bool, error) {
		return len(env.claims()) > 0, nil
	})
	env.restartScheduler()
	env.createPods(second)
	env.runningPods(6)

	claims := env.claims()
	onOneClaim(t, claims)
	if len(claims) != 2 {
		t.Errorf("%d nodeclaims, want 2: one before the restart, one for the pods created during it", len(claims))
	}
	env.assertNoStrandedPods()
}

// TestProvisionIntoLaunchedNodesRoom: pods that arrive while a node is launched and not yet
// joined go into the room it has left, as far as it goes, and only the rest get a new node.
// One pod of 1 CPU gets a t3a.xlarge (3.9 CPUs allocatable); three more come while it joins:
// two are reserved in its spare room, one gets a second NodeClaim. The scheduler restarts
// before the node joins: the reservations, recorded on the NodeClaim, hold.
func TestProvisionIntoLaunchedNodesRoom(t *testing.T) {
	spec := spotIn("us-east-1a")
	spec.Requirements = append(spec.Requirements, requirement(corev1.LabelInstanceTypeStable, "t3a.xlarge"))
	env := newProvisionEnv(t, spec, func(o *envOptions) { o.emulator.JoinDelay = 20 * time.Second })
	env.createPods([]*corev1.Pod{env.pod("first", "1").Obj()})
	var first v1alpha1.NodeClaim
	framework.Eventually(env.ctx, t, 30*time.Second, "the first nodeclaim launched", func(context.Context) (bool, error) {
		claims := env.claims()
		if len(claims) == 0 || claims[0].Status.InstanceType == "" {
			return false, nil
		}
		first = claims[0]
		return true, nil
	})
	env.createPods([]*corev1.Pod{env.pod("more-0", "1").Obj(), env.pod("more-1", "1").Obj(), env.pod("more-2", "1").Obj()})
	framework.Eventually(env.ctx, t, 30*time.Second, "pods reserved in the spare room", func(context.Context) (bool, error) {
		return strings.Contains(env.log(), "Reserved 2 pod(s) in the spare room of nodeclaim "+first.Name), nil
	})
	if node, err := env.client.CoreV1().Nodes().Get(env.ctx, first.Status.NodeName, metav1.GetOptions{}); err == nil {
		t.Fatalf("node %s registered (at %s) before the pods were reserved: the test did not test the room of a node still joining",
			node.Name, node.CreationTimestamp)
	}
	env.waitForEvent("Reserved", "planned into its spare room")
	var added []v1alpha1.PodReference
	framework.Eventually(env.ctx, t, 10*time.Second, "the added pods recorded on the nodeclaim", func(context.Context) (bool, error) {
		for _, nc := range env.claims() {
			if nc.Name == first.Name {
				var err error
				added, err = nc.AddedPods()
				return len(added) == 2, err
			}
		}
		return false, nil
	})
	env.restartScheduler()

	pods := env.runningPods(4)
	perNode := map[string]int{}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
	}
	if perNode[first.Status.NodeName] != 3 {
		t.Errorf("pods per node %v, want 3 on %s, the first nodeclaim's", perNode, first.Status.NodeName)
	}
	for _, p := range pods {
		if slices.ContainsFunc(added, func(r v1alpha1.PodReference) bool { return r.UID == p.UID }) && p.Spec.NodeName != first.Status.NodeName {
			t.Errorf("pod %s, added to nodeclaim %s, runs on %s, not its node %s", p.Name, first.Name, p.Spec.NodeName, first.Status.NodeName)
		}
	}
	if claims := env.claims(); len(claims) != 2 {
		t.Errorf("%d nodeclaims, want 2: the first and one for the pod its room could not hold", len(claims))
	}
	if n := strings.Count(env.log(), "in the spare room of nodeclaim"); n != 1 {
		t.Errorf("pods reserved in spare room %d times, want once: the restarted scheduler should have found them reserved", n)
	}
	env.assertNoStrandedPods()
}
