package provision

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
)

// PostFilter is called when pod fits no existing node. It makes no cloud or API call: it
// answers from the ledger and hands the rest to a provisioning round.
//
//   - A pod reserved on a NodeClaim whose node has registered is nominated to that node,
//     every cycle, since DefaultPreemption's empty nomination would otherwise clear it.
//   - A pod reserved on a NodeClaim whose node has not registered waits for it.
//   - A pod the last round could not serve for reasons waiting cannot lift is
//     UnschedulableAndUnresolvable, with the reasons.
//   - Any other pod triggers a round and waits.
func (p *Provision) PostFilter(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, _ fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	logger := klog.FromContext(ctx)
	if claim, nodeName, ok := p.ledger.Reservation(pod.UID); ok {
		if nodeName != "" {
			logger.V(4).Info("Nominating reserved pod to its node", "pod", klog.KObj(pod), "nodeClaim", claim, "node", nodeName)
			return &fwk.PostFilterResult{NominatingInfo: &fwk.NominatingInfo{NominatedNodeName: nodeName, NominatingMode: fwk.ModeOverride}},
				fwk.NewStatus(fwk.Success)
		}
		logger.V(4).Info("Pod waits for the node of its nodeclaim", "pod", klog.KObj(pod), "nodeClaim", claim)
		return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting for node of nodeclaim %s", Name, claim))
	}
	if u, ok := p.unplanned(pod); ok && !u.Resolvable {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: %s", Name, u.Message()))
	}
	logger.V(4).Info("Pod triggers a provisioning round", "pod", klog.KObj(pod))
	p.batcher.Trigger()
	return nil, fwk.NewStatus(fwk.Unschedulable, Name+": a node is being planned")
}

// unplanned returns what the last round said about pod, if it could not plan it and the pod
// has not changed since.
func (p *Provision) unplanned(pod *v1.Pod) (*Unplanned, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.lastUnplanned[pod.UID]
	if !ok || podSignature(u.Pod) != podSignature(pod) {
		return nil, false
	}
	return u, true
}
