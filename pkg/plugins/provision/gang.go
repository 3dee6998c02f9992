package provision

import (
	"context"
	"fmt"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1beta1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/features"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/lifecycle"
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
}

// gangNodes are the NodeClaims a gang's pods were reserved on, and those whose node is not
// initialized yet.
type gangNodes struct {
	claims  []string
	unready sets.Set[string]
}

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
		sg := pod.Spec.SchedulingGroup
		if sg == nil || sg.PodGroupName == nil {
			singles = append(singles, pod)
			continue
		}
		key := pod.Namespace + "/" + *sg.PodGroupName
		k, seen := kinds[key]
		if !seen {
			group, err := lister.PodGroups(pod.Namespace).Get(*sg.PodGroupName)
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
	pods, err := g.podLister().Pods(gg.group.Namespace).List(labels.Everything())
	if err != nil {
		return 0
	}
	n := 0
	for _, pod := range pods {
		sg := pod.Spec.SchedulingGroup
		if sg == nil || sg.PodGroupName == nil || *sg.PodGroupName != gg.group.Name {
			continue
		}
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
	result, err := plan.Plan(ctx, *in)
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
		for _, name := range written {
			if err := p.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				logger.Error(err, "Deleting a gang's nodeclaim", "nodeClaim", name)
			}
		}
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

// gangWaitLimit bounds how long the pods of a gang wait for its nodes to be initialized: as
// long as the lifecycle waits for a node to join (lifecycle.DefaultRegistrationTimeout).
const gangWaitLimit = lifecycle.DefaultRegistrationTimeout

// wait records the NodeClaims the pods of the gang named group are reserved on: PreEnqueue
// holds the gang's pods (unready) until every claim's node is initialized. It reports whether
// they all are already.
func (g *gangs) wait(logger klog.Logger, group string, claims []string) bool {
	// Under g.mu: a claim's update sets the ledger, then calls initialized, which finds the
	// gang recorded or is seen here.
	g.mu.Lock()
	defer g.mu.Unlock()
	unready := sets.New[string]()
	for _, name := range claims {
		if nc, ok := g.ledger.Claim(name); !ok || !nc.IsTrue(v1alpha1.ConditionInitialized) {
			unready.Insert(name)
		}
	}
	if unready.Len() == 0 {
		return true
	}
	if g.waiting == nil {
		g.waiting, g.claimGang = map[string]*gangNodes{}, map[string]string{}
	}
	g.dropLocked(group) // a gang planned again (some of its pods released) waits for its new claims too
	w := &gangNodes{claims: claims, unready: unready}
	g.waiting[group] = w
	for _, name := range claims {
		g.claimGang[name] = group
	}
	// A node that joins and never gets Ready holds no gang forever: after the limit its
	// pods are let go, to be tried (and fail) as they would have been without the wait.
	g.afterFunc(gangWaitLimit, func() { go g.waitedTooLong(logger, group, w) })
	return false
}

// waitedTooLong lets the pods of the gang named group go if it still waits for w's nodes.
func (g *gangs) waitedTooLong(logger klog.Logger, group string, w *gangNodes) {
	g.mu.Lock()
	late := g.waiting[group] == w
	if late {
		g.dropLocked(group)
	}
	g.mu.Unlock()
	if late {
		logger.Info("Gang's nodes not all initialized within the limit; letting its pods go", "podGroup", group,
			"unready", sets.List(w.unready), "limit", gangWaitLimit)
		g.activatePods(logger, g.pendingOf(refsOf(g.ledger, w.claims)))
	}
}

// refsOf returns the pods reserved on the NodeClaims named claims.
func refsOf(ledger *Ledger, claims []string) []v1alpha1.PodReference {
	var refs []v1alpha1.PodReference
	for _, name := range claims {
		refs = append(refs, ledger.Pods(name)...)
	}
	return refs
}

// unready returns a NodeClaim of pod's gang whose node is not initialized yet, "" if there is
// none (or pod is of no gang planned here): see gangs.
func (g *gangs) unready(pod *v1.Pod) string {
	sg := pod.Spec.SchedulingGroup
	if sg == nil || sg.PodGroupName == nil {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.waiting[pod.Namespace+"/"+*sg.PodGroupName]; w != nil {
		for name := range w.unready {
			return name
		}
	}
	return ""
}

// initialized records that the node of the NodeClaim named claim is initialized, and returns
// the claims of its gang if it was the gang's last: their pods may go.
func (g *gangs) initialized(claim string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	group, ok := g.claimGang[claim]
	if !ok {
		return nil
	}
	w := g.waiting[group]
	w.unready.Delete(claim)
	if w.unready.Len() > 0 {
		return nil
	}
	g.dropLocked(group)
	return w.claims
}

// gone forgets the gang of the NodeClaim named claim, deleted: its pods no longer wait for
// the others' nodes (those released from claim are planned again, and the gang with them).
func (g *gangs) gone(claim string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if group, ok := g.claimGang[claim]; ok {
		g.dropLocked(group)
	}
}

// dropLocked forgets the gang named group. g.mu is held.
func (g *gangs) dropLocked(group string) {
	w := g.waiting[group]
	if w == nil {
		return
	}
	for _, name := range w.claims {
		if g.claimGang[name] == group {
			delete(g.claimGang, name)
		}
	}
	delete(g.waiting, group)
}
