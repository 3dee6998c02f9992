package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/lifecycle"
	"github.com/nodewright/nodewright/pkg/plan"
)

// The soak's bounds. leakBound is how long garbage collection may take to terminate an
// instance whose NodeClaim is gone: its grace period, one interval, and a minute for the
// scheduler's restart (the lifecycle runs in it). stuckBound is how long a node may stay
// cordoned or tainted disrupted with nothing in progress that explains it.
const (
	leakBound  = lifecycle.DefaultGCGracePeriod + lifecycle.DefaultGCInterval + time.Minute
	stuckBound = 3 * time.Minute
	checkEvery = 5 * time.Second
)

// checker checks the soak's invariants (Invariants) from informers on the cluster and the
// emulator's instances, every checkEvery. Each violation is counted once: an instance, a
// NodeClaim, a node or a pod counts once, and the PDB and the limit once per episode.
type checker struct {
	s      *soak
	stop   chan struct{}
	claims cache.Store
	nodes  corelisters.NodeLister
	pods   corelisters.PodLister
	types  []*cloud.InstanceType
	// claimsAdded counts the NodeClaims created since the start.
	claimsAdded atomic.Int64

	orphanSince, cordonedSince map[string]time.Time
	counted                    sets.Set[string]
	stranded                   sets.Set[types.UID]
	pdbReady, pdbShort         bool
	overLimit                  bool
	peakRSS, lastRSS           float64
	peakGoroutines             int
	lastGoroutines             int
	metrics                    *http.Client
}

func newChecker(ctx context.Context, s *soak) (*checker, error) {
	ch := &checker{s: s, stop: make(chan struct{}), orphanSince: map[string]time.Time{}, cordonedSince: map[string]time.Time{},
		counted: sets.New[string](), stranded: sets.New[types.UID](),
		metrics: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	factory := informers.NewSharedInformerFactory(s.c.client, 0)
	ch.nodes = factory.Core().V1().Nodes().Lister()
	ch.pods = factory.Core().V1().Pods().Lister()
	dfactory := dynamicinformer.NewDynamicSharedInformerFactory(s.dyn, 0)
	claims := dfactory.ForResource(v1alpha1.NodeClaimGVR).Informer()
	if _, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(any) { ch.claimsAdded.Add(1) }}); err != nil {
		return nil, err
	}
	ch.claims = claims.GetStore()
	factory.Start(ch.stop)
	dfactory.Start(ch.stop)
	factory.WaitForCacheSync(ctx.Done())
	dfactory.WaitForCacheSync(ctx.Done())
	var err error
	if ch.types, err = s.c.instanceTypes(ctx); err != nil {
		return nil, fmt.Errorf("listing instance types: %w", err)
	}
	return ch, nil
}

func (ch *checker) close() { close(ch.stop) }

// loop checks every checkEvery until ctx ends.
func (ch *checker) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkEvery):
			ch.check(ctx)
		}
	}
}

// check checks every invariant once.
func (ch *checker) check(ctx context.Context) {
	now := time.Now()
	claims := map[string]*v1alpha1.NodeClaim{}
	for _, obj := range ch.claims.List() {
		if nc, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](obj.(*unstructured.Unstructured)); err == nil {
			claims[nc.Name] = nc
		}
	}
	ch.checkInstances(now, claims)
	ch.checkLimit(claims)
	ch.checkCordoned(now, claims)
	if !ch.s.ending.Load() {
		ch.checkPDB()
	}
	ch.checkStranded(ctx, now, claims)
	if p := ch.s.current(); p != nil {
		if peak, _, err := p.usage(); err == nil {
			ch.peakRSS, ch.lastRSS = max(ch.peakRSS, peak), peak
		}
	}
	if n, err := ch.goroutines(ctx); err == nil {
		ch.peakGoroutines, ch.lastGoroutines = max(ch.peakGoroutines, n), n
	}
}

// goroutines reads go_goroutines from the scheduler's metrics.
func (ch *checker) goroutines(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", ch.s.metricsPort), nil)
	if err != nil {
		return 0, err
	}
	resp, err := ch.metrics.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no go_goroutines in the scheduler's metrics")
}

// checkInstances counts instances without a NodeClaim past leakBound, and NodeClaims with
// more than one instance.
func (ch *checker) checkInstances(now time.Time, claims map[string]*v1alpha1.NodeClaim) {
	byClaim := map[string][]string{}
	for _, inst := range ch.s.c.emulator.Instances() {
		if inst.State != emulator.StatePending && inst.State != emulator.StateRunning {
			delete(ch.orphanSince, inst.ID)
			continue
		}
		name := inst.Tags[v1alpha1.TagNodeClaim]
		byClaim[name] = append(byClaim[name], inst.ID)
		if _, ok := claims[name]; ok {
			delete(ch.orphanSince, inst.ID)
			continue
		}
		if d, over := overdue(ch.orphanSince, inst.ID, now, leakBound); over && ch.once("leak/"+inst.ID) {
			ch.s.violation(&ch.s.report.Invariants.LeakedInstances, "instance %s (nodeclaim %q) %s without its NodeClaim for %s",
				inst.ID, name, inst.State, d.Round(time.Second))
		}
	}
	for name, ids := range byClaim {
		if len(ids) > 1 && ch.once("double/"+name) {
			ch.s.violation(&ch.s.report.Invariants.DoubleLaunches, "nodeclaim %q has %d instances: %v", name, len(ids), ids)
		}
	}
}

// checkLimit counts the checks at which the Provisioner's NodeClaims, each counted by its
// capacity once launched and by its requests before, as the scheduler's limits count them,
// hold more cpu than the limit.
func (ch *checker) checkLimit(claims map[string]*v1alpha1.NodeClaim) {
	used := limitedResources(claims)[v1.ResourceCPU]
	over := used.Cmp(*resource.NewQuantity(int64(ch.s.opts.CPULimit), resource.DecimalSI)) > 0
	if over && !ch.overLimit {
		ch.s.violation(&ch.s.report.Invariants.LimitExceeded, "the NodeClaims hold %s cpu, over the limit of %d", used.String(), ch.s.opts.CPULimit)
	}
	ch.overLimit = over
}

// checkCordoned counts nodes cordoned or tainted disrupted for longer than stuckBound while
// their NodeClaim is neither being deleted nor disrupted.
func (ch *checker) checkCordoned(now time.Time, claims map[string]*v1alpha1.NodeClaim) {
	nodes, err := ch.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	for _, node := range nodes {
		disrupted := node.Spec.Unschedulable || slices.ContainsFunc(node.Spec.Taints, func(t v1.Taint) bool { return t.Key == v1alpha1.TaintDisrupted })
		nc, ok := claims[node.Labels[v1alpha1.LabelNodeClaim]]
		inProgress := node.DeletionTimestamp != nil || !ok || nc.DeletionTimestamp != nil ||
			nc.IsTrue(v1alpha1.ConditionDisrupting) || nc.IsTrue(v1alpha1.ConditionTerminating)
		if !disrupted || inProgress {
			delete(ch.cordonedSince, node.Name)
			continue
		}
		if d, over := overdue(ch.cordonedSince, node.Name, now, stuckBound); over && ch.once("cordoned/"+node.Name) {
			ch.s.violation(&ch.s.report.Invariants.StuckCordoned, "node %s cordoned or tainted %s for %s with nodeclaim %s neither deleted nor disrupted",
				node.Name, v1alpha1.TaintDisrupted, d.Round(time.Second), nc.Name)
		}
	}
}

// checkPDB counts the episodes in which the protected Deployment, once all ready, has fewer
// ready pods than its PodDisruptionBudget's minAvailable.
func (ch *checker) checkPDB() {
	pods, err := ch.pods.Pods(soakNamespace).List(labels.SelectorFromSet(labels.Set{"deploy": protectedName}))
	if err != nil {
		return
	}
	ready := 0
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && podReady(pod) {
			ready++
		}
	}
	if !ch.pdbReady {
		ch.pdbReady = ready >= protectedReplicas
		return
	}
	short := ready < protectedMin
	if short && !ch.pdbShort {
		ch.s.violation(&ch.s.report.Invariants.PDBViolations, "%d ready pods of %s, under its PodDisruptionBudget's minAvailable %d", ready, protectedName, protectedMin)
	}
	ch.pdbShort = short
}

// podReady reports whether pod's Ready condition is true.
func podReady(pod *v1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// checkStranded counts the pods Pending for longer than StrandBound that a fresh plan of
// the cluster as it is (its nodes, bound pods and NodeClaims against the limit) places.
func (ch *checker) checkStranded(ctx context.Context, now time.Time, claims map[string]*v1alpha1.NodeClaim) {
	all, err := ch.pods.List(labels.Everything())
	if err != nil {
		return
	}
	var bound, late []*v1.Pod
	for _, pod := range all {
		switch {
		case pod.Spec.NodeName != "":
			bound = append(bound, pod)
		case pod.DeletionTimestamp == nil && pod.Status.Phase == v1.PodPending && !ch.stranded.Has(pod.UID) &&
			now.Sub(pod.CreationTimestamp.Time) > ch.s.opts.StrandBound:
			late = append(late, pod)
		}
	}
	if len(late) == 0 {
		return
	}
	nodes, err := ch.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	used := limitedResources(claims)
	prov := &v1alpha1.Provisioner{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.ProvisionerSpec{
		NodeClassRef: v1alpha1.NodeClassReference{Name: "default"},
		Limits:       v1.ResourceList{v1.ResourceCPU: *resource.NewQuantity(int64(ch.s.opts.CPULimit), resource.DecimalSI)}}}
	for _, pod := range late {
		result, err := plan.Plan(ctx, plan.Input{Pods: []*v1.Pod{pod}, Provisioners: []*v1alpha1.Provisioner{prov},
			InstanceTypes: map[string][]*cloud.InstanceType{prov.Name: ch.types}, Nodes: nodes, ScheduledPods: bound,
			Used: map[string]v1.ResourceList{prov.Name: used}, Region: emulator.Region})
		if err != nil {
			klog.FromContext(ctx).Error(err, "Planning a late pod", "pod", klog.KObj(pod))
			continue
		}
		if len(result.Unplanned) == 0 {
			ch.stranded.Insert(pod.UID)
			ch.s.violation(&ch.s.report.Invariants.StrandedPods, "pod %s Pending for %s, which a fresh plan places", klog.KObj(pod),
				now.Sub(pod.CreationTimestamp.Time).Round(time.Second))
		}
	}
}

// limitedResources sums what claims hold of their Provisioner's limits.
func limitedResources(claims map[string]*v1alpha1.NodeClaim) v1.ResourceList {
	used := v1.ResourceList{}
	for _, nc := range claims {
		for name, q := range nc.LimitedResources() {
			total := used[name]
			total.Add(q)
			used[name] = total
		}
	}
	return used
}

// overdue records key in since at now if it is not there, and returns how long it has been
// there and whether that is past bound.
func overdue(since map[string]time.Time, key string, now time.Time, bound time.Duration) (time.Duration, bool) {
	first, ok := since[key]
	if !ok {
		since[key] = now
		return 0, false
	}
	return now.Sub(first), now.Sub(first) > bound
}

// once reports whether key is counted for the first time.
func (ch *checker) once(key string) bool {
	if ch.counted.Has(key) {
		return false
	}
	ch.counted.Insert(key)
	return true
}
