package provision

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"
)

var (
	_ fwk.PreFilterPlugin = &Provision{}
	_ fwk.FilterPlugin    = &Provision{}
)

// PreFilter keeps a pod reserved on a NodeClaim whose node has registered to that node:
// the plan put it there with the pods it was planned with, and another pod's new node may
// have been planned with its room. Other pods may go anywhere.
func (p *Provision) PreFilter(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	claim, nodeName, ok := p.ledger.Reservation(pod.UID)
	if !ok {
		return nil, nil
	}
	if _, registered := p.registeredSince(claim); !registered {
		return nil, nil
	}
	return &fwk.PreFilterResult{NodeNames: sets.New(nodeName)}, nil
}

// PreFilterExtensions returns nil: PreFilter keeps no state to update.
func (p *Provision) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter keeps the room of a new node for the pods its NodeClaim was launched for while they
// are pending: another pod fits the node only in what they leave free, and a pod reserved on
// another claim not at all. The scheduler's nominated-pod accounting would keep the room
// too, but breaks topology spread (see PostFilter).
func (p *Provision) Filter(_ context.Context, _ fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) *fwk.Status {
	node := nodeInfo.Node()
	if node == nil {
		return nil
	}
	claim := p.ledger.ClaimNameForNode(node)
	if claim == "" {
		return nil
	}
	held, pending := p.heldRoom(claim, pod.UID)
	if pending == 0 {
		return nil
	}
	if own, _, ok := p.ledger.Reservation(pod.UID); ok && own != claim {
		// Planned elsewhere: taking this node's spare room could break what its own pods
		// were planned with (anti-affinity, spread), and leave the pod's own node idle.
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: reserved on nodeclaim %s; node is held for %d pending pod(s) of nodeclaim %s", Name, own, pending, claim))
	}
	if reason := fitsBeside(podRequests(pod), held, nodeInfo); reason != "" {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: room held for %d pending pod(s) of nodeclaim %s: %s", Name, pending, claim, reason))
	}
	return nil
}

// heldRoom returns the requests of the pending pods the NodeClaim named claim was launched
// for, other than the pod with uid, and how many there are; none when the pod with uid is
// one of them (they were planned together).
func (p *Provision) heldRoom(claim string, uid types.UID) (v1.ResourceList, int) {
	if p.ledger.isSettled(claim) {
		return nil, 0
	}
	nc, ok := p.ledger.Claim(claim)
	if !ok {
		return nil, 0
	}
	held, n := v1.ResourceList{v1.ResourcePods: {}}, 0
	for _, pod := range p.pendingOf(nc.Spec.Pods) {
		if pod.UID == uid {
			return nil, 0
		}
		if reserved, _, ok := p.ledger.Reservation(pod.UID); !ok || reserved != claim {
			continue // released
		}
		addTo(held, podRequests(pod))
		n++
	}
	if n == 0 {
		p.ledger.settle(claim)
		return nil, 0
	}
	pods := held[v1.ResourcePods]
	pods.Add(*resourceQuantity(int64(n)))
	held[v1.ResourcePods] = pods
	return held, n
}

// fitsBeside returns "" if req fits on nodeInfo's node next to its pods and held, else the
// first resource that does not, as `cpu request 2 > free 1.5`.
func fitsBeside(req, held v1.ResourceList, nodeInfo fwk.NodeInfo) string {
	alloc, used := nodeInfo.GetAllocatable(), nodeInfo.GetRequested()
	free := v1.ResourceList{
		v1.ResourceCPU:    *milliQuantity(alloc.GetMilliCPU() - used.GetMilliCPU()),
		v1.ResourceMemory: *resourceQuantity(alloc.GetMemory() - used.GetMemory()),
		v1.ResourcePods:   *resourceQuantity(int64(alloc.GetAllowedPodNumber() - len(nodeInfo.GetPods()))),
	}
	for name, q := range alloc.GetScalarResources() {
		free[name] = *resourceQuantity(q - used.GetScalarResources()[name])
	}
	want := sum(req, v1.ResourceList{v1.ResourcePods: *resourceQuantity(1)})
	return fitsResources(want, held, free)
}
