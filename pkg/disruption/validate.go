package disruption

import (
	"context"
	"fmt"

	"github.com/nodewright/nodewright/pkg/plan"
)

// Revalidate decides d again on cluster as it is now, with candidates the nodes that are
// candidates now: a decision is carried out only if, after a delay in which pods came and
// went, its nodes are all still candidates and can still be removed the same way (deleted, or
// replaced by one node that saves enough). It returns the decision as it stands now, with its
// moves and replacement planned afresh, or nil and why not.
func Revalidate(ctx context.Context, cluster plan.Input, candidates []Candidate, d *Decision) (*Decision, string, error) {
	now := map[string]Candidate{}
	for _, c := range candidates {
		now[c.Node] = c
	}
	nodes := make([]Candidate, len(d.Nodes))
	for i, c := range d.Nodes {
		cur, ok := now[c.Node]
		if !ok {
			return nil, fmt.Sprintf("node %s is no longer a candidate", c.Node), nil
		}
		nodes[i] = cur
	}
	again, err := consolidate(ctx, cluster, nodes, d.Reason)
	switch {
	case err != nil:
		return nil, "", err
	case again == nil:
		return nil, "the nodes' pods no longer fit elsewhere for less", nil
	case again.Method != d.Method:
		return nil, fmt.Sprintf("the nodes would now be %sd, not %sd", again.Method, d.Method), nil
	}
	return again, "", nil
}
