package provision

import (
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/disruption"
)

// Ledger is the plugin's memory of which pod is reserved on which NodeClaim, and
// which node each claim became. NodeClaims are its source of truth: spec.pods never changes
// (the spec is immutable), so the ledger is rebuilt from them after a restart (Rebuild) and
// kept up to date from their events (Set, Delete). Pods a later round put into the spare room
// of a launched claim are recorded on it in annotation nodewright.dev/added-pods (written by
// the round, then Add) and rebuilt from there too. It is safe for concurrent use: PostFilter
// reads it on the scheduling goroutine while rounds and informers write it.
type Ledger struct {
	mu     sync.RWMutex
	byPod  map[types.UID]string
	claims map[string]*v1alpha1.NodeClaim
	// released are pods let go of their claim (Release) though the claim still lists them,
	// with the claim's name: a claim written for such a pod later reserves it again.
	released map[types.UID]string
	// settled are the claims none of whose reserved pods is pending any more: their nodes'
	// room is held for no one (see Filter).
	settled map[string]bool
	// byNode are the claims by the name of their node, known from the launch on.
	byNode map[string]string
	// added are, by claim, the pods reserved in its spare room after it was written: those
	// of its annotation and of Add, which the informer may not have shown yet.
	added map[string][]v1alpha1.PodReference
	// holding are the claims that hold room for pods a disruption moves (annotation
	// nodewright.dev/held-pods): replacements, few and short-lived.
	holding map[string]bool
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{byPod: map[types.UID]string{}, claims: map[string]*v1alpha1.NodeClaim{},
		released: map[types.UID]string{}, settled: map[string]bool{}, byNode: map[string]string{}, added: map[string][]v1alpha1.PodReference{},
		holding: map[string]bool{}}
}

// Rebuild replaces the ledger's content with the reservations of claims.
func (l *Ledger) Rebuild(claims []*v1alpha1.NodeClaim) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byPod, l.claims = map[types.UID]string{}, map[string]*v1alpha1.NodeClaim{}
	l.released, l.settled, l.byNode = map[types.UID]string{}, map[string]bool{}, map[string]string{}
	l.added, l.holding = map[string][]v1alpha1.PodReference{}, map[string]bool{}
	for _, nc := range claims {
		l.setLocked(nc)
	}
}

// Set records nc, new or updated (e.g. its status.nodeName set by the lifecycle).
func (l *Ledger) Set(nc *v1alpha1.NodeClaim) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLocked(nc)
}

func (l *Ledger) setLocked(nc *v1alpha1.NodeClaim) {
	if nc.DeletionTimestamp != nil {
		l.deleteLocked(nc.Name)
		return
	}
	l.claims[nc.Name] = nc
	if _, ok := nc.Annotations[v1alpha1.AnnotationHeldPods]; ok {
		l.holding[nc.Name] = true
	} else {
		delete(l.holding, nc.Name)
	}
	if nc.Status.NodeName != "" {
		l.byNode[nc.Status.NodeName] = nc.Name
	}
	// A malformed annotation (edited by hand) adds nothing: its pods are planned again.
	if added, _ := nc.AddedPods(); len(added) > 0 {
		l.addLocked(nc.Name, added)
	}
	for _, ref := range l.podsLocked(nc) {
		if l.released[ref.UID] != nc.Name {
			l.byPod[ref.UID] = nc.Name
		}
	}
}

// addLocked adds refs, those it does not have yet, to the pods added to the claim named name.
func (l *Ledger) addLocked(name string, refs []v1alpha1.PodReference) {
	for _, ref := range refs {
		if !slices.ContainsFunc(l.added[name], func(r v1alpha1.PodReference) bool { return r.UID == ref.UID }) {
			l.added[name] = append(l.added[name], ref)
		}
	}
}

// Release lets the pod with uid go of its claim, to be planned again, though the claim
// (whose spec is immutable) still lists it. A rebuilt ledger holds it again.
func (l *Ledger) Release(uid types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if claim, ok := l.byPod[uid]; ok {
		l.released[uid] = claim
	}
	delete(l.byPod, uid)
}

// Add reserves refs on the NodeClaim named name, in the room its node has left beyond the
// pods it was written for, once they are recorded in its annotation. It reports false,
// reserving nothing, if the ledger does not hold the claim (deleted meanwhile).
func (l *Ledger) Add(name string, refs []v1alpha1.PodReference) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.claims[name]; !ok {
		return false
	}
	l.addLocked(name, refs)
	for _, ref := range refs {
		l.byPod[ref.UID] = name
		delete(l.released, ref.UID)
	}
	// Pods pending again: the claim is no longer settled.
	delete(l.settled, name)
	return true
}

// Added returns the pods added to the spare room of the NodeClaim named name.
func (l *Ledger) Added(name string) []v1alpha1.PodReference {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return slices.Clone(l.added[name])
}

// Pods returns the pods the NodeClaim named name is for: those it was written for and those
// added to its spare room since, released ones included (see Reservation).
func (l *Ledger) Pods(name string) []v1alpha1.PodReference {
	l.mu.RLock()
	defer l.mu.RUnlock()
	nc, ok := l.claims[name]
	if !ok {
		return nil
	}
	return l.podsLocked(nc)
}

func (l *Ledger) podsLocked(nc *v1alpha1.NodeClaim) []v1alpha1.PodReference {
	added := l.added[nc.Name]
	if len(added) == 0 {
		return nc.Spec.Pods
	}
	return append(append(make([]v1alpha1.PodReference, 0, len(nc.Spec.Pods)+len(added)), nc.Spec.Pods...), added...)
}

// Claims returns every NodeClaim the ledger holds.
func (l *Ledger) Claims() []*v1alpha1.NodeClaim {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*v1alpha1.NodeClaim, 0, len(l.claims))
	for _, nc := range l.claims {
		out = append(out, nc)
	}
	return out
}

// Claim returns the NodeClaim named name.
func (l *Ledger) Claim(name string) (*v1alpha1.NodeClaim, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	nc, ok := l.claims[name]
	return nc, ok
}

// isSettled reports whether the claim named name was found with no pod pending.
func (l *Ledger) isSettled(name string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.settled[name]
}

// settle records that the claim named name has no pod pending: pods are never pending
// again once bound or gone (a re-created pod has another UID).
func (l *Ledger) settle(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.claims[name]; ok {
		l.settled[name] = true
	}
}

// Delete forgets the NodeClaim named name and releases its pods (added ones too), to be
// planned again. It returns the released pods.
func (l *Ledger) Delete(name string) []v1alpha1.PodReference {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deleteLocked(name)
}

func (l *Ledger) deleteLocked(name string) []v1alpha1.PodReference {
	nc, ok := l.claims[name]
	if !ok {
		return nil
	}
	pods := l.podsLocked(nc)
	delete(l.claims, name)
	delete(l.settled, name)
	delete(l.added, name)
	delete(l.holding, name)
	if l.byNode[nc.Status.NodeName] == name {
		delete(l.byNode, nc.Status.NodeName)
	}
	for _, ref := range pods {
		if l.byPod[ref.UID] == name {
			delete(l.byPod, ref.UID)
		}
		if l.released[ref.UID] == name {
			delete(l.released, ref.UID)
		}
	}
	return pods
}

// HoldsRoomFor reports whether a NodeClaim holds room for pods like pod at now (see
// disruption.Holding and disruption.HeldFor).
func (l *Ledger) HoldsRoomFor(pod *v1.Pod, now time.Time) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for name := range l.holding {
		if nc := l.claims[name]; disruption.Holding(nc, now) && disruption.HeldFor(nc, pod) {
			return true
		}
	}
	return false
}

// Reservation returns the NodeClaim the pod with uid is reserved on and the name of its
// node, empty until the claim has launched (the lifecycle records the node's name then).
func (l *Ledger) Reservation(uid types.UID) (claim, nodeName string, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	claim, ok = l.byPod[uid]
	if !ok {
		return "", "", false
	}
	return claim, l.claims[claim].Status.NodeName, true
}

// ClaimForNode returns the NodeClaim whose node is node: by the nodewright.dev/nodeclaim
// label, status.nodeName or status.providerID.
func (l *Ledger) ClaimForNode(node *v1.Node) (*v1alpha1.NodeClaim, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if nc, ok := l.claims[node.Labels[v1alpha1.LabelNodeClaim]]; ok {
		return nc, true
	}
	if nc, ok := l.claims[l.byNode[node.Name]]; ok {
		return nc, true
	}
	if node.Spec.ProviderID == "" {
		return nil, false
	}
	for _, nc := range l.claims {
		if nc.Status.ProviderID == node.Spec.ProviderID {
			return nc, true
		}
	}
	return nil, false
}

// ClaimNameForNode returns the name of the NodeClaim whose node is named nodeName, or of
// the claim the node's nodewright.dev/nodeclaim label names: known from the claim's launch,
// before the node registers and is labelled.
func (l *Ledger) ClaimNameForNode(node *v1.Node) string {
	if name := node.Labels[v1alpha1.LabelNodeClaim]; name != "" {
		return name
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.byNode[node.Name]
}

// Used returns, by Provisioner, the capacity its NodeClaims count against its limits: the
// requests planned for those not launched yet, the capacity of the others.
func (l *Ledger) Used() map[string]v1.ResourceList {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := map[string]v1.ResourceList{}
	for _, nc := range l.claims {
		used := out[nc.Spec.Provisioner]
		if used == nil {
			used = v1.ResourceList{}
			out[nc.Spec.Provisioner] = used
		}
		for name, q := range nc.LimitedResources() {
			total := used[name]
			total.Add(q)
			used[name] = total
		}
	}
	return out
}
