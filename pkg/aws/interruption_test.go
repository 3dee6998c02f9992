package aws

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// TestInterruptionQueue launches a spot instance, has the emulator put every kind of event
// about it (and a body that is no event) on the queue, and reads them back.
func TestInterruptionQueue(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	// On the real clock: SQS long polls wait on the emulator's clock.
	env := newTestEnv(t, emulator.Options{Clock: clock.RealClock{}, LaunchLatency: time.Hour})
	claim := testNodeClaim("claim-spot", "1", req(v1alpha1.LabelCapacityType, corev1.NodeSelectorOpIn, "spot"),
		req(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpIn, "m5.large"))
	inst, err := env.provider.Create(ctx, claim, testNodeClass(), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	start := time.Now().Add(time.Hour)
	for _, send := range []func() error{
		func() error { return env.emulator.RebalanceRecommendation(inst.ID) },
		func() error { return env.emulator.ScheduledChange(inst.ID, start) },
		func() error { return env.emulator.SendStateChangeNotification(inst.ID) },
		func() error { return env.emulator.InterruptSpot(inst.ID) },
		func() error {
			_, err := env.emulator.SendMessage(emulator.DefaultQueueName, "not an event")
			return err
		},
	} {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	q, err := NewInterruptionQueue(InterruptionQueueOptions{SQS: env.clients.SQS, QueueName: emulator.DefaultQueueName, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got []cloud.InterruptionMessage
	for len(got) < 5 {
		msgs, err := q.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if m.Handle == "" {
				t.Errorf("message %+v has no receipt handle", m)
			}
			if err := q.Delete(ctx, m); err != nil {
				t.Errorf("Delete: %v", err)
			}
		}
		got = append(got, msgs...)
	}
	ids := []string{inst.ID}
	want := []cloud.InterruptionMessage{
		{Kind: cloud.InterruptionRebalance, InstanceIDs: ids},
		{Kind: cloud.InterruptionScheduledChange, InstanceIDs: ids},
		{Kind: cloud.InterruptionStateChange, InstanceIDs: ids, State: "pending"},
		{Kind: cloud.InterruptionSpot, InstanceIDs: ids},
		{Kind: cloud.InterruptionUnknown},
	}
	for _, m := range got {
		if m.Kind != cloud.InterruptionUnknown && m.Time.IsZero() {
			t.Errorf("message %+v has no time", m)
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(cloud.InterruptionMessage{}, "Handle", "Time"),
		cmpopts.SortSlices(func(a, b cloud.InterruptionMessage) bool { return a.Kind < b.Kind })); diff != "" {
		t.Errorf("messages (-want, +got):\n%s", diff)
	}
	if msgs, err := q.Receive(ctx); err != nil || len(msgs) != 0 {
		t.Errorf("Receive after deleting every message: %+v, %v; want none", msgs, err)
	}
}
