package provision

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// deps are what the plugin's parts share, set once in New: the scheduler's handle (its pod
// cache, event recorder and active queue), the options, the args and the ledger. The parts
// (reservations, conflicts, strands, claimWriter) each guard their own state.
type deps struct {
	args   *Args
	handle fwk.Handle
	opts   Options
	ledger *Ledger

	// podsOnce makes pods, the scheduler's pod informer, once: asking the informer factory
	// for it allocates (a new Pod as the key), and unbound asks for every reserved pod at
	// each pod event.
	podsOnce sync.Once
	pods     cache.SharedIndexInformer

	// nodeHeld reports whether Filter turns away from a node every pod reserved nowhere
	// (reservations.holdsNode); nil: none is.
	nodeHeld func(*v1.Node) bool
	// awaitsReserved reports whether PreFilter turns a pod away until pods reserved on new
	// nodes, or being planned, have bound (conflicts.reservedConflict); nil: it never does.
	awaitsReserved func(*v1.Pod) bool
	// constrainsAny reports whether a pod's placement and one of others' constrain each
	// other, as reservedConflict judges it (conflicts.constrainsAny); nil: never.
	constrainsAny func(pod *v1.Pod, others []*v1.Pod) bool
	// spread keeps reserved pods back until their topology spread takes them; nil: never.
	spread *spreadGate
}

// podInformer returns the scheduler's pod informer.
func (d *deps) podInformer() cache.SharedIndexInformer {
	d.podsOnce.Do(func() { d.pods = d.handle.SharedInformerFactory().Core().V1().Pods().Informer() })
	return d.pods
}

// podLister lists and gets the pods of the scheduler's pod informer.
func (d *deps) podLister() corelisters.PodLister {
	return corelisters.NewPodLister(d.podInformer().GetIndexer())
}

// nodeNamed returns the node named name from the scheduler's informer, nil if it has none.
func (d *deps) nodeNamed(name string) *v1.Node {
	node, err := d.handle.SharedInformerFactory().Core().V1().Nodes().Lister().Get(name)
	if err != nil {
		return nil
	}
	return node
}

// reservationGrace returns the args' ReservationGrace, or the default without args.
func (d *deps) reservationGrace() time.Duration {
	if d.args == nil || d.args.ReservationGrace == nil {
		return ReservationGrace
	}
	return d.args.ReservationGrace.Duration
}

// afterFunc runs f after delay on the plugin's clock.
func (d *deps) afterFunc(delay time.Duration, f func()) {
	if c, ok := d.opts.Clock.(clock.WithDelayedExecution); ok {
		c.AfterFunc(delay, f)
		return
	}
	time.AfterFunc(delay, f)
}

// pendingPods returns the pods of this profile, not bound and with no reservation, that want
// a node: those the scheduler found unschedulable, and those it has not tried yet that it
// could only find unschedulable (roundTakes), or only while the round plans the others.
// Taking these at once starts the round of a burst of pods when they are created, not after
// the scheduler has tried each one and written its status.
func (d *deps) pendingPods(logger klog.Logger) []*v1.Pod {
	pods, err := d.podLister().List(labels.Everything())
	if err != nil {
		logger.Error(err, "Listing pods")
		return nil
	}
	var out, untried []*v1.Pod
	for _, pod := range pods {
		if _, _, reserved := d.ledger.Reservation(pod.UID); reserved {
			continue
		}
		switch {
		case d.wantsNode(pod):
			out = append(out, pod)
		case d.untried(pod):
			untried = append(untried, pod)
		}
	}
	if len(untried) == 0 {
		return out
	}
	room, err := d.roomWith(pods)
	if err != nil {
		logger.Error(err, "Leaving the pods not tried yet to the scheduler")
		return out
	}
	taken := 0
	var left []*v1.Pod
	for _, pod := range untried {
		if d.roundTakes(room, pod) {
			out = append(out, pod)
			taken++
		} else {
			left = append(left, pod)
		}
	}
	// A pod whose placement and that of a pod the round takes constrain each other would be
	// turned away while the round plans that pod and until it binds (reservedConflict): the
	// round plans the two together instead, as it would plan the first after its failure.
	withTaken := 0
	if d.constrainsAny != nil && len(out) > 0 {
		roundPods := out
		for _, pod := range left {
			if d.constrainsAny(pod, roundPods) {
				out = append(out, pod)
				withTaken++
			}
		}
	}
	logger.V(4).Info("Pods not tried by the scheduler yet", "pods", len(untried), "taken", taken, "constrainedByTaken", withTaken)
	return out
}

// roundTakes reports whether a round plans pod, not tried by the scheduler yet, rather than
// leave it to the scheduler, which could only find it unschedulable: it fits the free room
// of no node, or PreFilter would turn it away until pods reserved on new nodes have bound
// (awaitsReserved), and send it to the next round then. Either way the round plans it
// without the failed attempt, the status write and the backoff.
func (d *deps) roundTakes(room *freeRoom, pod *v1.Pod) bool {
	return !room.mayFit(pod) || d.awaitsReserved != nil && d.awaitsReserved(pod)
}

// roomWith returns the free room of the cluster's nodes with pods, the informer's pods.
func (d *deps) roomWith(pods []*v1.Pod) (*freeRoom, error) {
	nodes, err := d.handle.SharedInformerFactory().Core().V1().Nodes().Lister().List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	return newFreeRoom(nodes, pods, d.nodeHeld), nil
}

// wantsNode reports whether pod is this profile's, unbound, and was found unschedulable by
// the scheduler: a pod not tried yet may well fit an existing node.
func (d *deps) wantsNode(pod *v1.Pod) bool {
	if !d.ours(pod) {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodScheduled {
			return c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable
		}
	}
	return false
}

// untried reports whether pod is this profile's, unbound, and not tried by the scheduler yet:
// it has no PodScheduled condition (a pod with scheduling gates has one, SchedulingGated).
func (d *deps) untried(pod *v1.Pod) bool {
	if !d.ours(pod) || len(pod.Spec.SchedulingGates) > 0 {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodScheduled {
			return false
		}
	}
	return true
}

// ours reports whether pod is this profile's, unbound and not being deleted.
func (d *deps) ours(pod *v1.Pod) bool {
	return pod.Spec.SchedulerName == d.handle.ProfileName() && pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil
}

// unbound returns the pod namespace/name, as the informer sees it, if it is the pod with uid
// and not bound.
func (d *deps) unbound(namespace, name string, uid types.UID) (*v1.Pod, bool) {
	pod, err := d.podLister().Pods(namespace).Get(name)
	if err != nil || pod.UID != uid || pod.Spec.NodeName != "" {
		return nil, false
	}
	return pod, true
}

// pendingOf returns the pods of refs that exist, unbound.
func (d *deps) pendingOf(refs []v1alpha1.PodReference) []*v1.Pod {
	var out []*v1.Pod
	for _, ref := range refs {
		if pod, ok := d.unbound(ref.Namespace, ref.Name, ref.UID); ok {
			out = append(out, pod)
		}
	}
	return out
}

// stillPending returns the pods of pods that are still unbound, as the informer sees them.
func (d *deps) stillPending(pods []*v1.Pod) []*v1.Pod {
	var out []*v1.Pod
	for _, pod := range pods {
		if _, ok := d.unbound(pod.Namespace, pod.Name, pod.UID); ok {
			out = append(out, pod)
		}
	}
	return out
}

// activatePods moves pods to the scheduler's active queue, and returns how many there were.
func (d *deps) activatePods(logger klog.Logger, pending []*v1.Pod) int {
	pods := map[string]*v1.Pod{}
	for _, pod := range pending {
		pods[pod.Namespace+"/"+pod.Name] = pod
	}
	if len(pods) > 0 {
		d.handle.Activate(logger, pods)
	}
	return len(pods)
}

// deleteClaims deletes the NodeClaims named names (gone already is fine), logging what fails.
func (d *deps) deleteClaims(ctx context.Context, logger klog.Logger, names []string) {
	for _, name := range names {
		if err := d.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			logger.Error(err, "Deleting a nodeclaim", "nodeClaim", name)
		}
	}
}
