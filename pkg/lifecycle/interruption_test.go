package lifecycle

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodewright/nodewright/pkg/cloud"
)

var _ cloud.InterruptionQueue = (*fakeQueue)(nil)

// fakeQueue hands out its messages once and records the handles deleted.
type fakeQueue struct {
	mu      sync.Mutex
	msgs    []cloud.InterruptionMessage
	deleted []string
}

func (q *fakeQueue) Receive(context.Context) ([]cloud.InterruptionMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs := q.msgs
	q.msgs = nil
	return msgs, nil
}

func (q *fakeQueue) Delete(_ context.Context, msg cloud.InterruptionMessage) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleted = append(q.deleted, msg.Handle)
	return nil
}

func TestInterruption(t *testing.T) {
	e := newEnv(t)
	e.add(t,
		claim("spot", launched("aws:///us-east-1a/i-00000000000000001"), initialized),
		claim("rebalance", launched("aws:///us-east-1a/i-00000000000000002"), initialized),
		claim("maintenance", launched("aws:///us-east-1a/i-00000000000000003"), initialized),
		claim("stopped", launched("aws:///us-east-1a/i-00000000000000004"), initialized),
	)
	q := &fakeQueue{msgs: []cloud.InterruptionMessage{
		{Kind: cloud.InterruptionSpot, InstanceIDs: []string{"i-00000000000000001"}, Handle: "1"},
		{Kind: cloud.InterruptionRebalance, InstanceIDs: []string{"i-00000000000000002"}, Handle: "2"},
		{Kind: cloud.InterruptionScheduledChange, InstanceIDs: []string{"i-00000000000000003"}, Handle: "3"},
		{Kind: cloud.InterruptionStateChange, State: "stopping", InstanceIDs: []string{"i-00000000000000004"}, Handle: "4"},
		{Kind: cloud.InterruptionSpot, InstanceIDs: []string{"i-0000000000000dead"}, Handle: "5"}, // not ours
		{Kind: cloud.InterruptionUnknown, Handle: "6"},
	}}
	if err := (&interrupter{deps: e.deps, queue: q}).poll(e.ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, name := range []string{"spot", "rebalance", "maintenance", "stopped"} {
		got[name] = e.getClaim(t, name) != nil
	}
	want := map[string]bool{"spot": false, "rebalance": true, "maintenance": false, "stopped": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodeclaims remaining (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5", "6"}, q.deleted); diff != "" {
		t.Errorf("messages deleted (-want, +got):\n%s", diff)
	}
}
