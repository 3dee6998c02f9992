package disruption

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan"
)

// Cluster is what candidates are chosen from: nodewright's NodeClaims, and the cluster's
// nodes by name, pods by node name, PodDisruptionBudgets, Provisioners by name and the
// instance types of each Provisioner (see plan.Input.InstanceTypes).
type Cluster struct {
	Claims        []*v1alpha1.NodeClaim
	Nodes         map[string]*v1.Node
	Pods          map[string][]*v1.Pod
	PDBs          []*policyv1.PodDisruptionBudget
	Provisioners  map[string]*v1alpha1.Provisioner
	InstanceTypes map[string][]*cloud.InstanceType
}

// Candidates returns the nodes of c's claims that a consolidation may remove at now, with
// their prices, and why each other claim's node may not, by claim name. A node is a
// candidate when its claim is initialized and neither it nor its node is being deleted; its
// pods have been as they are for consolidateAfter (the node initialized, and its newest pod
// started, that long ago: a pod that left is not seen, so a node that just lost one may
// come sooner); nothing blocks it (Blocked); and its offering's price is known.
func Candidates(c Cluster, now time.Time, consolidateAfter time.Duration) ([]Candidate, map[string]string) {
	var out []Candidate
	skipped := map[string]string{}
	for _, nc := range c.Claims {
		node := c.Nodes[nc.Status.NodeName]
		initialized, ok := nc.TrueSince(v1alpha1.ConditionInitialized)
		switch {
		case nc.DeletionTimestamp != nil:
			skipped[nc.Name] = "the claim is being deleted"
			continue
		case !ok || node == nil:
			skipped[nc.Name] = "its node is not initialized"
			continue
		case node.DeletionTimestamp != nil:
			skipped[nc.Name] = "its node is being deleted"
			continue
		}
		pods := c.Pods[node.Name]
		if settled := settledAt(initialized, pods).Add(consolidateAfter); now.Before(settled) {
			skipped[nc.Name] = fmt.Sprintf("its pods changed less than %s ago", consolidateAfter)
			continue
		}
		if reason := Blocked(node, pods, c.PDBs); reason != "" {
			skipped[nc.Name] = reason
			continue
		}
		price, err := Price(nc, c.Provisioners[nc.Spec.Provisioner], c.InstanceTypes[nc.Spec.Provisioner])
		if err != nil {
			skipped[nc.Name] = err.Error()
			continue
		}
		out = append(out, Candidate{Node: node.Name, Claim: nc.Name, Provisioner: nc.Spec.Provisioner, Price: price})
	}
	return out, skipped
}

// settledAt is when a node initialized at initialized, running pods, last saw a pod start.
func settledAt(initialized time.Time, pods []*v1.Pod) time.Time {
	at := initialized
	for _, pod := range pods {
		if plan.GoesWithNode(pod) || pod.Status.StartTime == nil {
			continue
		}
		if t := pod.Status.StartTime.Time; t.After(at) {
			at = t
		}
	}
	return at
}

// Price returns what nc's node costs per hour: its offering's price, its type's node cost
// and its Provisioner's, as plan.Template.Cost counts a planned node's.
func Price(nc *v1alpha1.NodeClaim, prov *v1alpha1.Provisioner, types []*cloud.InstanceType) (float64, error) {
	if prov == nil {
		return 0, fmt.Errorf("its Provisioner %q is gone", nc.Spec.Provisioner)
	}
	for _, it := range types {
		if it.Name != nc.Status.InstanceType {
			continue
		}
		for _, o := range it.Offerings {
			if o.Zone == nc.Status.Zone && o.CapacityType == nc.Status.CapacityType {
				return o.Price + it.NodeCost + prov.Spec.NodeCostUSDPerHour(), nil
			}
		}
	}
	return 0, fmt.Errorf("no price for %s %s in %s among its Provisioner's offerings", nc.Status.CapacityType, nc.Status.InstanceType, nc.Status.Zone)
}
