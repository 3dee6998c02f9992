package aws

import (
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// apiOperations lists the methods of the per-service interfaces by service: every AWS
// operation pkg/aws can call, since it calls AWS only through them.
func apiOperations() map[string][]string {
	out := map[string][]string{}
	for service, iface := range map[string]reflect.Type{
		"ec2":     reflect.TypeFor[EC2API](),
		"ssm":     reflect.TypeFor[SSMAPI](),
		"pricing": reflect.TypeFor[PricingAPI](),
		"sqs":     reflect.TypeFor[SQSAPI](),
	} {
		for i := range iface.NumMethod() {
			out[service] = append(out[service], iface.Method(i).Name)
		}
		sort.Strings(out[service])
	}
	return out
}

// TestEmulatorImplementsEveryOperation fails when pkg/aws's interfaces gain an operation the
// emulator does not implement.
func TestEmulatorImplementsEveryOperation(t *testing.T) {
	implemented := emulator.Operations()
	for service, ops := range apiOperations() {
		for _, op := range ops {
			if !slices.Contains(implemented[service], op) {
				t.Errorf("pkg/aws calls %s %s, which the emulator does not implement", service, op)
			}
		}
	}
}

// TestEveryOperationRoundTrips drives the provider through launch, lookup, listing, deletion,
// launch template cleanup and the interruption queue, and checks that every operation of the
// interfaces went to the emulator and succeeded at least once.
func TestEveryOperationRoundTrips(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	image := emulator.Image{ID: "ami-00000000000000002", Name: "my-ami-2", Architecture: "x86_64", OwnerID: emulator.AccountID}
	env := newTestEnv(t, emulator.Options{Images: []emulator.Image{image}})
	p := env.provider

	inst, err := p.Create(ctx, testNodeClaim("claim-rt", "1", req(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpIn, "m5.large")), testNodeClass(), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := p.Get(ctx, inst.ProviderID)
	if err != nil || got.ID != inst.ID {
		t.Errorf("Get: %+v, %v", got, err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != inst.ID {
		t.Errorf("List: %+v, %v", list, err)
	}
	if err := p.Delete(ctx, inst.ProviderID); err != nil {
		t.Errorf("Delete: %v", err)
	}
	// Shutting down: Delete succeeds again; once terminated, it and Get say NotFound.
	if err := p.Delete(ctx, inst.ProviderID); err != nil {
		t.Errorf("Delete while shutting down: %v", err)
	}
	if _, err := p.Get(ctx, "aws:///us-east-1a/i-0123456789abcdef0"); !cloud.IsNotFound(err) {
		t.Errorf("Get of an unknown instance: %v, want NotFound", err)
	}
	if list, err := p.List(ctx); err != nil || len(list) != 1 || list[0].State != "shutting-down" {
		t.Errorf("List while shutting down: %+v, %v", list, err)
	}

	custom := testNodeClass()
	custom.Name = "custom"
	custom.Spec.AMISelector = &v1alpha1.AMISelector{Name: "my-ami-*", Owner: "self"}
	if _, err := p.InstanceTypes(ctx, custom, nil); err != nil {
		t.Errorf("InstanceTypes with an amiSelector: %v", err)
	}
	// Forgotten, as after a restart, the first launch's template counts as unused: deleted.
	p.launchTemplates.forget()
	if n, err := p.DeleteLaunchTemplates(ctx); err != nil || n != 1 || len(env.emulator.LaunchTemplates()) != 0 {
		t.Errorf("DeleteLaunchTemplates: %d, %v; %d left", n, err, len(env.emulator.LaunchTemplates()))
	}

	q, err := NewInterruptionQueue(InterruptionQueueOptions{SQS: env.clients.SQS, QueueName: emulator.DefaultQueueName})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.emulator.SendMessage(emulator.DefaultQueueName, "{}"); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive: %+v, %v", msgs, err)
	}
	if err := q.Delete(ctx, msgs[0]); err != nil {
		t.Errorf("Delete: %v", err)
	}

	succeeded := map[string][]string{}
	for _, c := range env.emulator.Calls() {
		if c.ErrorCode == "" && !slices.Contains(succeeded[c.Service], c.Operation) {
			succeeded[c.Service] = append(succeeded[c.Service], c.Operation)
		}
	}
	for service := range succeeded {
		sort.Strings(succeeded[service])
	}
	if diff := cmp.Diff(apiOperations(), succeeded); diff != "" {
		t.Errorf("operations that round-tripped (-interfaces, +succeeded):\n%s", diff)
	}
}
