package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1beta1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/features"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// A gang is the pods of a PodGroup whose scheduling policy is gang (minCount pods or none):
// the scheduler binds them together or not at all (the GangScheduling plugin), so a round
// plans them together or not at all. Their nodes are planned in a plan of their own after
// the round's other pods' (whose NodeClaims it then sees, for the Provisioners' limits), and
// written only if every pod of the gang is planned; if a claim cannot be written, those
// written are deleted. The pods of a gang written wait until the nodes of all its claims are
// initialized (gangs.wait), then go to the scheduler together (docs/concepts.md, "Gangs").
//
// Gangs exist only when the scheduler schedules PodGroups (the GenericWorkload feature gate);
// without it, a pod's schedulingGroup means nothing to it, and nothing to the rounds.
type gang struct {
	group *schedulingv1beta1.PodGroup
	pods  []*v1.Pod
}

// name is the gang's PodGroup as namespace/name.
func (g *gang) name() string { return g.group.Namespace + "/" + g.group.Name }

// podGroupName returns the name of the PodGroup pod belongs to, "" if none.
func podGroupName(pod *v1.Pod) string {
	if sg := pod.Spec.SchedulingGroup; sg != nil && sg.PodGroupName != nil {
		return *sg.PodGroupName
	}
	return ""
}

// groupPods returns the pods of the PodGroup namespace/name, from the scheduler's informer.
func (g *gangs) groupPods(namespace, name string) ([]*v1.Pod, error) {
	pods, err := g.podLister().Pods(namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(pods, func(pod *v1.Pod) bool { return podGroupName(pod) != name }), nil
}

// gangs reads the PodGroups of pods, from the scheduler's informer, and keeps the pods of a
// gang planned here out of the scheduling queue until the nodes of all of them are
// initialized (Ready, startup taints gone). Let go as each pod's node registered, the gang's
// scheduling cycle would run while its last nodes are not Ready yet, fail (GangScheduling
// binds none of them unless all fit), write the status of every pod of the gang and back the
// gang off, once more for each node that is late.
type gangs struct {
	*deps
	once   sync.Once
	lister schedulinglisters.PodGroupLister

	mu sync.Mutex
	// waiting are the gangs planned by this process whose pods wait for their nodes, by
	// PodGroup (namespace/name); claimGang is the gang of each of their NodeClaims.
	waiting   map[string]*gangNodes
	claimGang map[string]string
	// attempts are the gangs whose nodes are being launched, by PodGroup: from the round that
	// first wrote their claims until their nodes are all initialized, or gangLaunchTimeout.
	// A gang planned again (a claim could not launch) stays in its attempt.
	attempts map[string]*gangAttempt
	// activateGang activates the pods reserved on claims, a gang's that may go.
	activateGang func(claims []string)
}

// gangAttempt is a gang's launch, from since.
type gangAttempt struct {
	since time.Time
}

// gangNodes are the NodeClaims a gang's pods were reserved on, those whose node is not
// initialized yet, and the last claim deleted whose pods are being planned again (replanning,
// until the gang's next claims are written).
//
// A gang whose nodes are all initialized in the informer's view goes only once the
// scheduler's own cache has them too (seen, from the scheduler's node events: cacheSaw): the
// scheduler's node handler and the plugin's run apart, and a gang let go on the informer's
// word alone may meet, in its cycle's snapshot, the not-ready taint the informer saw lifted,
// fail, write the status of all its pods and back off. When the scheduler sends no node event
// (its pods were not in its unschedulable pool then), the gang goes gangSettle later
// (settling).
type gangNodes struct {
	claims     sets.Set[string]
	unready    sets.Set[string]
	replanning string
	seen       sets.Set[string]
	settling   bool
}

// gangSettle is how long a gang whose nodes are all initialized in the informer waits for the
// scheduler's cache to show it so before it goes anyway: the two lag by milliseconds.
const gangSettle = time.Second

// groupsScheduled reports whether the scheduler schedules PodGroups.
func groupsScheduled() bool { return utilfeature.DefaultFeatureGate.Enabled(features.GenericWorkload) }

// podGroups returns the PodGroup lister, nil when the scheduler does not schedule PodGroups
// (their API may not be served then).
func (g *gangs) podGroups() schedulinglisters.PodGroupLister {
	if !groupsScheduled() {
		return nil
	}
	g.once.Do(func() { g.lister = g.handle.SharedInformerFactory().Scheduling().V1beta1().PodGroups().Lister() })
	return g.lister
}

// split returns the pods of no gang, and the gangs of the others that have their minCount of
// pods among pods. The pods of a gang that has fewer, or whose PodGroup the informer has not
// seen, wait: the scheduler does not try a gang before that either.
func (g *gangs) split(logger klog.Logger, pods []*v1.Pod) ([]*v1.Pod, []*gang) {
	lister := g.podGroups()
	if lister == nil {
		return pods, nil
	}
	// kinds of the groups seen: a gang, basic (pod by pod), or waiting (nil gang, not basic).
	type kind struct {
		gang  *gang
		basic bool
	}
	var singles []*v1.Pod
	kinds := map[string]kind{}
	var order []*gang
	for _, pod := range pods {
		groupName := podGroupName(pod)
		if groupName == "" {
			singles = append(singles, pod)
			continue
		}
		key := pod.Namespace + "/" + groupName
		k, seen := kinds[key]
		if !seen {
			group, err := lister.PodGroups(pod.Namespace).Get(groupName)
			switch {
			case apierrors.IsNotFound(err):
				logger.V(4).Info("Pod's PodGroup not seen yet; its pods wait", "pod", klog.KObj(pod), "podGroup", key)
			case err != nil:
				logger.Error(err, "Getting a pod's PodGroup; its pods wait", "pod", klog.KObj(pod), "podGroup", key)
			case group.Spec.SchedulingPolicy.Gang == nil:
				k.basic = true
			default:
				k.gang = &gang{group: group}
				order = append(order, k.gang)
			}
			kinds[key] = k
		}
		switch {
		case k.basic:
			singles = append(singles, pod)
		case k.gang != nil:
			k.gang.pods = append(k.gang.pods, pod)
		}
	}
	var out []*gang
	for _, gg := range order {
		placed := g.placed(gg)
		if min := int(gg.group.Spec.SchedulingPolicy.Gang.MinCount); len(gg.pods)+placed < min {
			logger.V(4).Info("Gang has fewer pods waiting than its minCount; planned once it has them", "podGroup", gg.name(),
				"pods", len(gg.pods), "placed", placed, "minCount", min)
			continue
		}
		out = append(out, gg)
	}
	return singles, out
}

// placed counts the pods of gg's PodGroup that are bound or reserved on a NodeClaim: with
// gg's waiting pods they make up its minCount (the scheduler counts bound pods so too), so
// that the pods of a gang released from a claim that could not launch are planned again.
func (g *gangs) placed(gg *gang) int {
	pods, err := g.groupPods(gg.group.Namespace, gg.group.Name)
	if err != nil {
		return 0
	}
	n := 0
	for _, pod := range pods {
		if _, _, reserved := g.ledger.Reservation(pod.UID); reserved || pod.Spec.NodeName != "" {
			n++
		}
	}
	return n
}

// planGang plans g's pods in a plan of their own and writes their NodeClaims if every pod is
// planned, none if one is not (see gang).
func (p *Provision) planGang(ctx context.Context, g *gang) {
	logger := klog.FromContext(ctx).WithValues("podGroup", g.name(), "pods", len(g.pods))
	in, err := p.planInput(ctx, g.pods)
	if err != nil {
		logger.Error(err, "Preparing the plan of a gang")
		return
	}
	in.Avoid = p.strands.avoidedShapes()
	var result *plan.Result
	if key := topologyKey(g.group); key == v1.LabelTopologyZone {
		result, err = p.planInOneZone(ctx, in, g)
	} else {
		if key != "" {
			// The scheduler keeps the gang in one domain of key among the nodes; new nodes get
			// no such label from nodewright, so the gang is planned as if it had no constraint.
			logger.V(2).Info("Gang's topology constraint is not the zone: planned without it", "topologyKey", key)
		}
		result, err = plan.Plan(ctx, *in)
	}
	if err != nil {
		logger.Error(err, "Planning the nodes of a gang")
		return
	}
	if len(result.Unplanned) > 0 {
		gangsPlanned.WithLabelValues(gangUnplanned).Inc()
		msg := fmt.Sprintf("%s: no node planned for gang %s: %d of its %d pods cannot be planned: %s", Name, g.name(),
			len(result.Unplanned), len(g.pods), result.Unplanned[0].Message())
		logger.V(2).Info("Gang not planned: all of its pods or none", "unplanned", len(result.Unplanned), "reason", result.Unplanned[0].Message())
		p.handle.EventRecorder().Eventf(g.group, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning", "%s", msg)
		for _, pod := range g.pods {
			p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning", "%s", msg)
		}
		return
	}
	logPacking(logger, result)
	written, failed := p.writer.writeClaims(ctx, result)
	if failed > 0 {
		// All or nothing: the claims written go too, and with them their pods' reservations.
		gangsPlanned.WithLabelValues(gangWriteFailed).Inc()
		logger.Info("Deleting the nodeclaims written for a gang: some could not be written", "written", len(written), "failed", failed)
		p.deleteClaims(ctx, logger, written)
		return
	}
	p.writer.addToClaims(ctx, result.Added)
	claims := written
	for _, a := range result.Added {
		claims = append(claims, a.Claim)
	}
	if p.gangs.wait(logger, g.name(), claims) {
		// Nodes that are all initialized already (the gang fit in launched claims' room).
		p.reserved.activateClaims(ctx, claims)
	}
	gangsPlanned.WithLabelValues(gangWritten).Inc()
	logger.V(2).Info("Gang planned", "nodeClaims", len(written), "addedToLaunched", len(result.Added))
	p.handle.EventRecorder().Eventf(g.group, nil, v1.EventTypeNormal, "Provisioning", "Provisioning",
		"%s: %d node(s) planned for the %d pods of the gang: %s", Name, len(written), len(g.pods), strings.Join(written, ", "))
}

// PodGroupPostFilter is called when the scheduler could not place a PodGroup's pods
// together. The pods of a PodGroup never reach PostFilter: PodGroupPostFilter answers for
// each of them as PostFilter would (waiting for its claim's node, released from it after the
// grace, or handed to a round), and returns Unschedulable with the first of their answers:
// the scheduler tries the group again when its pods are let go or its nodes register.
func (p *Provision) PodGroupPostFilter(ctx context.Context, _ fwk.PodGroupCycleState, group fwk.PodGroupInfo,
	_ fwk.PodGroupSchedulingFunc) (*fwk.PodGroupPostFilterResult, *fwk.Status) {
	var first *fwk.Status
	for _, pod := range group.GetUnscheduledPods() {
		_, st := p.PostFilter(ctx, nil, pod, nil)
		if first == nil || (st.Code() == fwk.Unschedulable && first.Code() != fwk.Unschedulable) {
			first = st
		}
	}
	if first == nil {
		return nil, fwk.NewStatus(fwk.Unschedulable, Name+": no pod of the group to plan for")
	}
	// One pod that may still get a node makes the group worth trying again.
	return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s (podgroup %s/%s)", strings.Join(first.Reasons(), "; "),
		group.GetNamespace(), group.GetName()))
}

// wait records the NodeClaims the pods of the gang named group are reserved on: PreEnqueue
// holds the gang's pods (unready) until every claim's node is initialized. It reports whether
// they all are already. The gang's first claims start its attempt: if its nodes are not all
// initialized gangLaunchTimeout later, it is released (release).
func (g *gangs) wait(logger klog.Logger, group string, claims []string) bool {
	// Under g.mu: a claim's update sets the ledger, then calls initialized, which finds the
	// gang recorded or is seen here.
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting == nil {
		g.waiting, g.claimGang, g.attempts = map[string]*gangNodes{}, map[string]string{}, map[string]*gangAttempt{}
	}
	all := sets.New(claims...)
	if w := g.waiting[group]; w != nil {
		all = all.Union(w.claims) // planned again: the claims it waited for before, and the new
	}
	unready := sets.New[string]()
	for name := range all {
		if nc, ok := g.ledger.Claim(name); !ok || !g.nodeReady(nc, nil) {
			unready.Insert(name)
		}
	}
	g.dropLocked(group)
	if unready.Len() == 0 {
		delete(g.attempts, group)
		return true
	}
	// Nodes initialized already when the gang is planned (it fit in launched claims' room)
	// are old news to the scheduler's cache.
	g.waiting[group] = &gangNodes{claims: all, unready: unready, seen: all.Difference(unready)}
	for name := range all {
		g.claimGang[name] = group
	}
	if g.attempts[group] == nil {
		a := &gangAttempt{since: g.opts.Clock.Now()}
		g.attempts[group] = a
		g.afterFunc(g.gangLaunchTimeout(), func() { go g.release(logger, group, a) })
	}
	return false
}

// gangLaunchTimeout is Args.GangLaunchTimeout.
func (g *gangs) gangLaunchTimeout() time.Duration {
	if g.args == nil || g.args.GangLaunchTimeout == nil {
		return DefaultGangLaunchTimeout
	}
	return g.args.GangLaunchTimeout.Duration
}

// release ends attempt a of the gang named group if it is still on: its nodes were not all
// initialized within gangLaunchTimeout (a claim that could not launch in any pool, a node that
// never got Ready). Every NodeClaim its pods are reserved on is deleted, those launched
// included: a gang that cannot start leaves no node idle. Its pods are then planned again, as
// a new attempt.
func (g *gangs) release(logger klog.Logger, group string, a *gangAttempt) {
	g.mu.Lock()
	on := g.attempts[group] == a
	if w := g.waiting[group]; on && w != nil && w.unready.Len() == 0 && w.replanning == "" {
		// Its nodes are all initialized; it is settling (completeLocked). Asked again after,
		// in case a claim of it goes meanwhile.
		on = false
		g.afterFunc(gangSettle, func() { go g.release(logger, group, a) })
	}
	if on {
		delete(g.attempts, group)
		g.dropLocked(group)
	}
	g.mu.Unlock()
	if !on {
		return
	}
	namespace, name, _ := strings.Cut(group, "/")
	pods, err := g.groupPods(namespace, name)
	if err != nil {
		logger.Error(err, "Listing the pods of a gang to release", "podGroup", group)
		return
	}
	claims := sets.New[string]()
	for _, pod := range pods {
		if claim, _, ok := g.ledger.Reservation(pod.UID); ok {
			claims.Insert(claim)
		}
	}
	now := g.opts.Clock.Now()
	launched := 0
	for _, claim := range sets.List(claims) {
		if nc, ok := g.ledger.Claim(claim); ok && nc.Status.LaunchTime != nil {
			launched++
			hours := now.Sub(nc.Status.LaunchTime.Time).Hours()
			for res, q := range nc.Status.Capacity {
				if res == v1.ResourceCPU || strings.Contains(string(res), "/") {
					gangReleasedResourceHours.WithLabelValues(string(res)).Add(hours * q.AsApproximateFloat64())
				}
			}
		}
	}
	g.deleteClaims(context.Background(), logger.WithValues("podGroup", group), sets.List(claims))
	gangsReleased.Inc()
	msg := fmt.Sprintf("%s: the nodes of gang %s were not all initialized within %s of its first nodeclaims; "+
		"deleted its %d nodeclaim(s), %d of them launched, so that none is left idle; its pods are planned again",
		Name, group, g.gangLaunchTimeout(), claims.Len(), launched)
	logger.Info("Released a gang whose nodes were not all initialized in time", "podGroup", group, "timeout", g.gangLaunchTimeout(),
		"nodeClaims", sets.List(claims), "launched", launched, "since", a.since)
	if lister := g.podGroups(); lister != nil {
		if pg, err := lister.PodGroups(namespace).Get(name); err == nil {
			g.handle.EventRecorder().Eventf(pg, nil, v1.EventTypeWarning, "FailedProvisioning", "Releasing", "%s", msg)
		}
	}
}

// unready returns why pod, of a gang planned here, waits: a NodeClaim of its gang whose node
// is not initialized yet, pods of its gang being planned again, or the scheduler's cache that
// does not show its nodes initialized yet; "" if it does not wait.
func (g *gangs) unready(pod *v1.Pod) string {
	groupName := podGroupName(pod)
	if groupName == "" {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.waiting[pod.Namespace+"/"+groupName]
	if w == nil {
		return ""
	}
	for name := range w.unready {
		return fmt.Sprintf("the node of nodeclaim %s, of the pod's gang, is not initialized yet", name)
	}
	if w.replanning != "" {
		return fmt.Sprintf("the pods of its gang that nodeclaim %s could not launch for are planned again", w.replanning)
	}
	return "the scheduler's cache does not show all the nodes of its gang initialized yet"
}

// ephemeralTaints are the keys of the taints Kubernetes itself puts on a node until it is
// Ready and known to its cloud: the node controller's not-ready and unreachable, which it
// lifts some time after the Ready condition turns true, and the cloud controller manager's
// uninitialized. No pod of a gang that does not tolerate them goes there before they are gone.
var ephemeralTaints = []string{v1.TaintNodeNotReady, v1.TaintNodeUnreachable,
	"node.cloudprovider.kubernetes.io/uninitialized"} // k8s.io/cloud-provider/api.TaintExternalCloudProvider

// untainted reports whether node has none of the ephemeralTaints.
func untainted(node *v1.Node) bool {
	return !slices.ContainsFunc(node.Spec.Taints, func(t v1.Taint) bool { return slices.Contains(ephemeralTaints, t.Key) })
}

// nodeReady reports whether nc's node takes pods: the claim is Initialized (its node Ready,
// no startup taint left) and the node has none of the ephemeralTaints left. node is nc's
// node, or nil to read it from the scheduler's informer.
func (g *gangs) nodeReady(nc *v1alpha1.NodeClaim, node *v1.Node) bool {
	if !nc.IsTrue(v1alpha1.ConditionInitialized) || nc.Status.NodeName == "" {
		return false
	}
	if node == nil {
		var err error
		if node, err = g.handle.SharedInformerFactory().Core().V1().Nodes().Lister().Get(nc.Status.NodeName); err != nil {
			return false
		}
	}
	return node.Name == nc.Status.NodeName && untainted(node)
}

// initialized records that the node of nc, a NodeClaim updated or whose node changed, takes
// pods (nodeReady, in the informer), and returns the claims of its gang if that completes it
// (completeLocked): their pods may go.
func (g *gangs) initialized(nc *v1alpha1.NodeClaim) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	group, ok := g.claimGang[nc.Name]
	if !ok || !g.nodeReady(nc, nil) {
		return nil
	}
	w := g.waiting[group]
	w.unready.Delete(nc.Name)
	return g.completeLocked(group, w)
}

// cacheSaw records node, a node of a NodeClaim (its label names the claim), as the
// scheduler's cache holds it now (the scheduler calls its queueing hints after updating its
// cache), and returns the claims of its gang if that completes it. A node of no gang waiting
// costs one map lookup: the scheduler asks once per pending pod for every node event.
func (g *gangs) cacheSaw(node *v1.Node) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	claim := node.Labels[v1alpha1.LabelNodeClaim]
	group, ok := g.claimGang[claim]
	if !ok {
		return nil
	}
	w := g.waiting[group]
	if !untainted(node) {
		w.seen.Delete(claim)
		return nil
	}
	w.seen.Insert(claim)
	if nc, ok := g.ledger.Claim(claim); ok && g.nodeReady(nc, node) {
		w.unready.Delete(claim)
	}
	return g.completeLocked(group, w)
}

// completeLocked returns the claims of w, the gang named group, and forgets it, if its nodes
// are all initialized, in the informer and in the scheduler's cache; nil if not. Initialized
// in the informer only, the gang settles: it goes gangSettle later unless the scheduler's
// cache shows it first. g.mu is held.
func (g *gangs) completeLocked(group string, w *gangNodes) []string {
	if w.unready.Len() > 0 || w.replanning != "" {
		return nil
	}
	if !w.seen.IsSuperset(w.claims) {
		if !w.settling {
			w.settling = true
			g.afterFunc(gangSettle, func() { go g.settle(group, w) })
		}
		return nil
	}
	g.dropLocked(group)
	delete(g.attempts, group)
	return sets.List(w.claims)
}

// settle lets w, the gang named group, go gangSettle after its nodes were all initialized in
// the informer if the scheduler's cache has not shown them yet: it sends no node event to
// the plugin while the gang's pods are not in its unschedulable pool.
func (g *gangs) settle(group string, w *gangNodes) {
	g.mu.Lock()
	var claims []string
	if g.waiting[group] == w {
		w.settling = false
		w.seen = w.seen.Union(w.claims)
		claims = g.completeLocked(group, w)
	}
	g.mu.Unlock()
	if claims != nil {
		klog.Background().WithName(Name).V(2).Info("Gang's nodes initialized, the scheduler's cache not known to show it: letting it go",
			"podGroup", group, "after", gangSettle)
		g.activateGang(claims)
	}
}

// gone records that the NodeClaim named claim, of a gang, was deleted (it could not launch,
// its node never joined): its pods are planned again, in other pools, and the gang waits for
// their claims too (wait) within its attempt. A claim deleted when its gang was released, or
// by someone else after the gang bound, finds no gang waiting.
func (g *gangs) gone(claim string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	group, ok := g.claimGang[claim]
	if !ok {
		return
	}
	w := g.waiting[group]
	delete(g.claimGang, claim)
	w.claims.Delete(claim)
	w.unready.Delete(claim)
	w.seen.Delete(claim)
	w.replanning = claim
}

// dropLocked forgets the gang named group. g.mu is held.
func (g *gangs) dropLocked(group string) {
	w := g.waiting[group]
	if w == nil {
		return
	}
	for name := range w.claims {
		if g.claimGang[name] == group {
			delete(g.claimGang, name)
		}
	}
	delete(g.waiting, group)
}

// topologyKey returns the node label whose one value all the pods of group must share (its
// scheduling constraints, the TopologyAwareWorkloadScheduling feature gate), "" if none.
func topologyKey(group *schedulingv1beta1.PodGroup) string {
	c := group.Spec.SchedulingConstraints
	if c == nil || len(c.Topology) == 0 {
		return ""
	}
	return c.Topology[0].Key
}

// planInOneZone plans g's pods in each zone the instance types of in are offered in (or in
// the zone of the gang's pods already placed, if some are) and returns the cheapest plan that
// places them all, with no zone that does the plan of the zone that left the fewest pods
// unplanned: a gang that must share a zone gets its nodes in one zone that holds all of it.
func (p *Provision) planInOneZone(ctx context.Context, in *plan.Input, g *gang) (*plan.Result, error) {
	zones := sets.New[string]()
	if zone := p.gangs.placedZone(g); zone != "" {
		zones.Insert(zone)
	} else {
		for _, types := range in.InstanceTypes {
			for _, it := range types {
				for _, o := range it.Offerings {
					zones.Insert(o.Zone)
				}
			}
		}
	}
	var best *plan.Result
	bestCost := 0.0
	for _, zone := range sets.List(zones) {
		zin := *in
		zin.Pods = make([]*v1.Pod, len(g.pods))
		for i, pod := range g.pods {
			zin.Pods[i] = inZone(pod, zone)
		}
		result, err := plan.Plan(ctx, zin)
		if err != nil {
			return nil, err
		}
		cost := 0.0
		for _, n := range result.Nodes {
			cost += n.Cost()
		}
		better := best == nil || len(result.Unplanned) < len(best.Unplanned) ||
			len(result.Unplanned) == len(best.Unplanned) && cost < bestCost
		klog.FromContext(ctx).V(4).Info("Gang planned in one zone", "podGroup", g.name(), "zone", zone,
			"unplanned", len(result.Unplanned), "usdPerHour", cost)
		if better {
			best, bestCost = result, cost
		}
	}
	if best == nil {
		return plan.Plan(ctx, *in) // no instance type: the plan says why
	}
	return best, nil
}

// inZone returns a copy of pod that requires a node in zone: the requirement is added to each
// of its required node affinity terms (or is the only term).
func inZone(pod *v1.Pod, zone string) *v1.Pod {
	pod = pod.DeepCopy()
	req := v1.NodeSelectorRequirement{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{zone}}
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &v1.Affinity{}
	}
	if pod.Spec.Affinity.NodeAffinity == nil {
		pod.Spec.Affinity.NodeAffinity = &v1.NodeAffinity{}
	}
	na := pod.Spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil || len(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 0 {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{}}}
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for i := range terms {
		terms[i].MatchExpressions = append(terms[i].MatchExpressions, req)
	}
	return pod
}

// placedZone returns the zone of the nodes (or NodeClaims) the pods of g's PodGroup already
// bound or reserved are on, "" if none is.
func (g *gangs) placedZone(gg *gang) string {
	pods, err := g.groupPods(gg.group.Namespace, gg.group.Name)
	if err != nil {
		return ""
	}
	nodes := g.handle.SharedInformerFactory().Core().V1().Nodes().Lister()
	for _, pod := range pods {
		if pod.Spec.NodeName != "" {
			if node, err := nodes.Get(pod.Spec.NodeName); err == nil && node.Labels[v1.LabelTopologyZone] != "" {
				return node.Labels[v1.LabelTopologyZone]
			}
		}
		if claim, _, ok := g.ledger.Reservation(pod.UID); ok {
			if nc, ok := g.ledger.Claim(claim); ok {
				if zone := claimZone(nc); zone != "" {
					return zone
				}
			}
		}
	}
	return ""
}

// claimZone returns the zone nc was launched in, or else the one its requirements pin.
func claimZone(nc *v1alpha1.NodeClaim) string {
	if nc.Status.Zone != "" {
		return nc.Status.Zone
	}
	return v1alpha1.RequirementLabels(nc.Spec.Requirements, func(key string) bool { return key == v1.LabelTopologyZone })[v1.LabelTopologyZone]
}
