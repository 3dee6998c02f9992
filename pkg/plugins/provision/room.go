package provision

import (
	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// amounts are what freeRoom counts of a resource list: milli-cpu, memory and
// ephemeral-storage bytes, the resources NodeResourcesFit never ignores. A pod's other
// requests (extended resources, which a profile may tell it to ignore) are taken to fit.
type amounts [3]int64

func amountsOf(l v1.ResourceList) amounts {
	return amounts{l.Cpu().MilliValue(), l.Memory().Value(), l.StorageEphemeral().Value()}
}

// freeRoom is the room the cluster's nodes have left by their pods' requests alone: the cheap
// check that lets a provisioning round take a pod the scheduler has not tried yet. Room by
// requests is necessary for a node to take a pod (NodeResourcesFit), so a pod that fits the
// free room of no node cannot go on any node that exists now, whatever the other filters say;
// a pod that fits some node's is left to the scheduler, which tries it as before.
//
// A node held for the pods reserved on its NodeClaim (nodeHeld: Filter turns every other pod
// away from it while one of them is pending) has no room for the pods the check is for, which
// are reserved nowhere: the pods of a burst that goes on while the nodes of its first round
// register are taken by the next round, not left to fail on those nodes. Every other error
// of the check is on the side of "may fit": pods nominated by preemption, taints and the
// other filters are not counted; only the pods bound are, and a node is held only while it
// was when the room was read (holds forgets its room when a claim settles). The scheduler's
// own cache may hold more (pods it assumed and is binding), which makes room look larger,
// not smaller.
type freeRoom struct {
	nodes []nodeRoom
	// index is the position of each node's room in nodes, by node name.
	index map[string]int
	// lowestPriority is the lowest priority of a bound pod, and bound whether there is one: a
	// pod of a higher priority may preempt it, and is left to the scheduler.
	lowestPriority int32
	bound          bool
}

// nodeRoom is one node's allocatable less its pods' requests, and how many more pods it
// takes; none if held.
type nodeRoom struct {
	free amounts
	pods int64
	held bool
}

// newFreeRoom returns the free room of nodes, with pods, the pods bound to them; held, if not
// nil, tells the nodes held for reserved pods.
func newFreeRoom(nodes []*v1.Node, pods []*v1.Pod, held func(*v1.Node) bool) *freeRoom {
	r := &freeRoom{index: make(map[string]int, len(nodes))}
	for _, n := range nodes {
		r.index[n.Name] = len(r.nodes)
		r.nodes = append(r.nodes, nodeRoom{free: amountsOf(n.Status.Allocatable), pods: n.Status.Allocatable.Pods().Value(),
			held: held != nil && held(n)})
	}
	for _, pod := range pods {
		r.add(pod, 1)
	}
	return r
}

// add counts pod, bound, on its node (sign 1), or no longer (sign -1: it went or finished).
// A pod not bound, finished, or on a node r does not know, is not counted. The lowest
// priority stays as low as it was once a pod goes: an error on the side of "may fit".
func (r *freeRoom) add(pod *v1.Pod, sign int64) {
	i, ok := r.index[pod.Spec.NodeName]
	if !ok || sign > 0 && (pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed) {
		return
	}
	if p := corev1helpers.PodPriority(pod); sign > 0 && (!r.bound || p < r.lowestPriority) {
		r.lowestPriority, r.bound = p, true
	}
	room := &r.nodes[i]
	room.pods -= sign
	reqs := requests(pod)
	for k := range room.free {
		room.free[k] -= sign * reqs[k]
	}
}

// mayFit reports whether pod might go on a node that exists: it fits some node's free room,
// or it may preempt a bound pod.
func (r *freeRoom) mayFit(pod *v1.Pod) bool {
	if r.bound && corev1helpers.PodPriority(pod) > r.lowestPriority &&
		(pod.Spec.PreemptionPolicy == nil || *pod.Spec.PreemptionPolicy != v1.PreemptNever) {
		return true
	}
	reqs := requests(pod)
	for _, room := range r.nodes {
		if room.fits(reqs) {
			return true
		}
	}
	return false
}

// fits reports whether reqs fit room, and room takes one more pod.
func (room nodeRoom) fits(reqs amounts) bool {
	if room.held || room.pods < 1 {
		return false
	}
	for k, req := range reqs {
		if req > 0 && room.free[k] < req {
			return false
		}
	}
	return true
}

// requests returns what pod requests, as the scheduler counts it (init containers and
// overhead included).
func requests(pod *v1.Pod) amounts {
	return amountsOf(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
}
