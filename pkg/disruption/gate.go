package disruption

import (
	"fmt"
	"sync"
	"time"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// Gate keeps each Provisioner's disruptions within its budgets across everything that
// disrupts nodes (the lifecycle's emptiness and expiry, consolidation and drift): each asks
// it before it starts to remove a node, one at a time. A node counts as disrupting from then
// until it is gone: its NodeClaim is being deleted, Terminating or Disrupting, or the Gate
// let it start less than startedFor ago and the cache does not show that yet.
type Gate struct {
	mu      sync.Mutex
	started map[string]started // by NodeClaim name
}

// started is a disruption the Gate let start.
type started struct {
	provisioner string
	at          time.Time
}

// startedFor is how long a disruption the Gate let start counts before the cache shows it.
const startedFor = time.Minute

// NewGate returns a Gate with nothing started.
func NewGate() *Gate { return &Gate{started: map[string]started{}} }

// Take reports whether the node of the NodeClaim named claim may start being disrupted for
// reason at now, given claims, every NodeClaim of the cache, and its Provisioner's settings;
// if it may, it counts as disrupting from now. If not, it says which budget stops it.
func (g *Gate) Take(claim string, prov *v1alpha1.Provisioner, claims []*v1alpha1.NodeClaim, reason v1alpha1.DisruptionReason, now time.Time) (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	total, disrupting := g.count(prov.Name, claims, now)
	if _, ok := g.started[claim]; ok {
		// Started already (a retry of the same step): it holds its place.
		return true, ""
	}
	budgets := prov.Spec.DisruptionSettings().Budgets
	if Allowed(budgets, reason, total, disrupting, now) < 1 {
		return false, fmt.Sprintf("the disruption budgets of Provisioner %s allow no more %s nodes now: %d of its %d nodes are being disrupted",
			prov.Name, reason, disrupting, total)
	}
	g.started[claim] = started{provisioner: prov.Name, at: now}
	return true, ""
}

// Release forgets that the Gate let claim start: its disruption was undone before it showed.
func (g *Gate) Release(claim string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.started, claim)
}

// Allowed returns how many more of prov's nodes may start being disrupted for reason at now.
func (g *Gate) Allowed(prov *v1alpha1.Provisioner, claims []*v1alpha1.NodeClaim, reason v1alpha1.DisruptionReason, now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	total, disrupting := g.count(prov.Name, claims, now)
	return Allowed(prov.Spec.DisruptionSettings().Budgets, reason, total, disrupting, now)
}

// count returns the number of the NodeClaims of the Provisioner named prov, and of those
// disrupting; it forgets started disruptions older than startedFor.
func (g *Gate) count(prov string, claims []*v1alpha1.NodeClaim, now time.Time) (total, disrupting int) {
	shown := map[string]bool{} // whether the cache shows a claim disrupting, by name
	for _, nc := range claims {
		shown[nc.Name] = Disrupting(nc)
		if nc.Spec.Provisioner != prov {
			continue
		}
		total++
		if Disrupting(nc) {
			disrupting++
		}
	}
	for name, s := range g.started {
		disrupted, exists := shown[name]
		switch {
		case !exists || disrupted || now.Sub(s.at) > startedFor:
			// Gone, or shown: the cache counts it from now on.
			delete(g.started, name)
		case s.provisioner == prov:
			disrupting++
		}
	}
	return total, disrupting
}

// Disrupting reports whether nc's node is being disrupted: the claim is being deleted, its
// node terminating, or a disruption has decided to remove it.
func Disrupting(nc *v1alpha1.NodeClaim) bool {
	return nc.DeletionTimestamp != nil || nc.IsTrue(v1alpha1.ConditionTerminating) || nc.IsTrue(v1alpha1.ConditionDisrupting)
}
