package provision

import (
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/plan"
)

// unplannedMemo remembers, for PostFilter, which pods the last round could not plan and why.
type unplannedMemo struct {
	mu   sync.Mutex
	last map[types.UID]*plan.Unplanned
}

// set replaces what is remembered with last, by pod UID.
func (m *unplannedMemo) set(last map[types.UID]*plan.Unplanned) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = last
}

// get returns what the last round said about pod, if it could not plan it and the pod has
// not changed since.
func (m *unplannedMemo) get(pod *v1.Pod) (*plan.Unplanned, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.last[pod.UID]
	if !ok || plan.PodSignature(u.Pod) != plan.PodSignature(pod) {
		return nil, false
	}
	return u, true
}

// waitTimes remember when each unbound pod was first seen unschedulable, until it binds or
// goes (podUnschedulableToBound).
type waitTimes struct {
	mu    sync.Mutex
	since map[types.UID]time.Time
}

// seen records now as when the pod with uid was first seen unschedulable, unless it was seen
// before.
func (w *waitTimes) seen(uid types.UID, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.since[uid]; !ok {
		w.since[uid] = now
	}
}

// done forgets the pod with uid and returns when it was first seen unschedulable, if it was.
func (w *waitTimes) done(uid types.UID) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	since, ok := w.since[uid]
	delete(w.since, uid)
	return since, ok
}
