package provision

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/disruption"
)

var (
	_ fwk.PreFilterPlugin = &Provision{}
	_ fwk.FilterPlugin    = &Provision{}
)

// PreFilter keeps a pod reserved on a NodeClaim to that claim's node: the plan put it there
// with the pods it was planned with, and the other new nodes were planned without it. Until
// the claim has launched there is no node to go to, and the pod waits. Other pods may go
// anywhere, but for those whose placement and a pending reserved pod's, or a pod's a round
// is planning, constrain each other (see reservedConflict): they wait for it to bind, and
// the next round plans them.
//
// A pod a round is reserving on a new node right now waits too (see placing); the cycle is
// marked as begun before the ledger is read.
func (p *Provision) PreFilter(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	if !p.placing.begin(pod.UID) {
		return nil, fwk.NewStatus(fwk.Unschedulable, Name+": being reserved on a new node")
	}
	claim, nodeName, ok := p.ledger.Reservation(pod.UID)
	if !ok {
		if r, planning := p.conflicts.reservedConflict(pod); r != nil {
			if planning {
				return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting for pod %s/%s, which a provisioning round is planning a node for: "+
					"the two constrain each other's placement", Name, r.Namespace, r.Name))
			}
			return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting for pod %s/%s, reserved on a new node, to bind: "+
				"the two constrain each other's placement", Name, r.Namespace, r.Name))
		}
		return nil, nil
	}
	if nodeName == "" {
		return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting for the launch of nodeclaim %s", Name, claim))
	}
	// A gang's pod that reached a cycle while its gang waits for its nodes (from the backoff
	// queue, where PreEnqueue does not run again): the cycle fails here, saying so, rather
	// than on a node not Ready yet; PreEnqueue holds the gang once it is requeued.
	if why := p.gangs.unready(pod); why != "" {
		return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: waiting for its gang: %s", Name, why))
	}
	return &fwk.PreFilterResult{NodeNames: sets.New(nodeName)}, nil
}

// PreFilterExtensions returns nil: PreFilter keeps no state to update.
func (p *Provision) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter holds a new node for the pods its NodeClaim was launched for: while one of them is
// pending, no other pod may go on the node, not even into room they leave free, since it
// could break what they were planned with (anti-affinity, topology spread) as well as take
// their room. The scheduler's nominated-pod accounting would keep their room, but breaks
// topology spread (see PostFilter). DaemonSet pods wait too; they were planned with the node.
func (p *Provision) Filter(_ context.Context, _ fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) *fwk.Status {
	node := nodeInfo.Node()
	if node == nil {
		return nil
	}
	claim, pending, unmatched := p.reserved.holdOf(node, pod.UID)
	if unmatched {
		// Launched by nodewright (the kubelet registers it with this label) but not yet
		// matched to its NodeClaim: held until the lifecycle labels it, since the pods it
		// was launched for cannot be known before.
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: node not yet matched to its nodeclaim", Name))
	}
	if claim == "" {
		return nil
	}
	if pending > 0 {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: node held for %d pending pod(s) of nodeclaim %s", Name, pending, claim))
	}
	// A replacement holds its room for the pods moved to it (pkg/disruption).
	if nc, ok := p.ledger.Claim(claim); ok && nc.Annotations[v1alpha1.AnnotationHeldPods] != "" {
		infos := nodeInfo.GetPods()
		onNode := make([]*v1.Pod, len(infos))
		for i, info := range infos {
			onNode[i] = info.GetPod()
		}
		if why := disruption.Held(nc, pod, onNode, p.opts.Clock.Now()); why != "" {
			return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: %s", Name, why))
		}
	}
	return nil
}
