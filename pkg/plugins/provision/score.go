package provision

import (
	"context"

	v1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/nodewright/nodewright/pkg/disruption"
)

var (
	_ fwk.ScorePlugin    = &Provision{}
	_ fwk.PreScorePlugin = &Provision{}
)

// PreScore skips Score for a pod no replacement holds room for, nearly every pod: every node
// would score 0, and Score's call for each node of each pod costs the scheduler a few
// percent of its throughput.
func (p *Provision) PreScore(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) *fwk.Status {
	if p.ledger.HoldsRoomFor(pod, p.opts.Clock.Now()) {
		return nil
	}
	return fwk.NewStatus(fwk.Skip)
}

// Score ranks first, for a pod a disruption moved, the replacement that holds room for it
// (disruption.Held): the consolidation planned it there, and the default scoring, which
// spreads pods over the emptiest nodes, would otherwise send it elsewhere and leave the
// replacement empty. Every other node scores 0, so the other plugins decide among them.
// The profile gives Provision a weight above the default plugins' together.
func (p *Provision) Score(_ context.Context, _ fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) (int64, *fwk.Status) {
	node := nodeInfo.Node()
	if node == nil {
		return 0, nil
	}
	nc, ok := p.ledger.Claim(p.ledger.ClaimNameForNode(node))
	if !ok || !disruption.Holding(nc, p.opts.Clock.Now()) || !disruption.HeldFor(nc, pod) {
		return 0, nil
	}
	return fwk.MaxScore, nil
}

// ScoreExtensions returns nil: scores are 0 or the maximum already.
func (p *Provision) ScoreExtensions() fwk.ScoreExtensions { return nil }
