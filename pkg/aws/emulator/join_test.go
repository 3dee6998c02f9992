package emulator

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"
)

func TestJoinRegistersNodes(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	kube := fake.NewClientset()
	v := newEnv(t, Options{KubeClient: kube, JoinDelay: 5 * time.Second, JoinPollInterval: time.Second})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData("--node-labels=nodewright.dev/provisioner-name=default,team=a",
		"--register-with-taints=dedicated=batch:NoSchedule"))
	v.createLaunchTemplate(ctx, t, "bad-lt", testUserData("--node-labels=node-role.kubernetes.io/worker=true"))
	launch := func(lt string) Instance {
		t.Helper()
		out, err := v.ec2.CreateFleet(ctx, fleetInput(lt, CapacityTypeSpot, "", [2]string{"t3a.2xlarge", "us-east-1f"}))
		if err != nil || len(launchedIDs(out)) != 1 {
			t.Fatalf("CreateFleet: %+v, %v", out, err)
		}
		inst, _ := v.e.Instance(launchedIDs(out)[0])
		return inst
	}
	joins := launch("test-lt")
	rejected := launch("bad-lt")
	v.e.NeverJoinNext(1)
	never := launch("test-lt")

	getNode := func(name string) (*corev1.Node, error) {
		return kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	// Running after 1s, joined 5s later: nothing at 5s.
	stepAndSettle(t, v, 5*time.Second)
	if _, err := getNode(joins.PrivateDNSName); !apierrors.IsNotFound(err) {
		t.Fatalf("node before the join delay: %v", err)
	}
	stepAndSettle(t, v, time.Second)
	var node *corev1.Node
	eventually(ctx, t, "node "+joins.PrivateDNSName, func() bool {
		n, err := getNode(joins.PrivateDNSName)
		node = n
		return err == nil
	})
	wantLabels := map[string]string{
		"kubernetes.io/hostname":           joins.PrivateDNSName,
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"node.kubernetes.io/instance-type": "t3a.2xlarge",
		"topology.kubernetes.io/zone":      "us-east-1f",
		"topology.kubernetes.io/region":    Region,
		"nodewright.dev/provisioner-name":  "default",
		"team":                             "a",
	}
	if diff := cmp.Diff(wantLabels, node.Labels); diff != "" {
		t.Errorf("labels (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.Taint{{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}}, node.Spec.Taints); diff != "" {
		t.Errorf("taints (-want, +got):\n%s", diff)
	}
	if want := "aws:///us-east-1f/" + joins.ID; node.Spec.ProviderID != want {
		t.Errorf("providerID %q, want %q", node.Spec.ProviderID, want)
	}
	// t3a.2xlarge: 8 vCPU, 32768 MiB, 58 pods.
	for name, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: "8", corev1.ResourceMemory: "32Gi", corev1.ResourcePods: "58", corev1.ResourceEphemeralStorage: "20Gi"} {
		if q := node.Status.Capacity[name]; q.String() != want {
			t.Errorf("capacity %s = %s, want %s", name, q.String(), want)
		}
		if q := node.Status.Allocatable[name]; q.String() != want {
			t.Errorf("allocatable %s = %s, want %s", name, q.String(), want)
		}
	}
	eventually(ctx, t, "the instance's node name", func() bool {
		inst, _ := v.e.Instance(joins.ID)
		return inst.NodeName == joins.PrivateDNSName
	})

	stepAndSettle(t, v, time.Minute)
	eventually(ctx, t, "the join error of the instance with a restricted label", func() bool {
		inst, _ := v.e.Instance(rejected.ID)
		return inst.JoinError != ""
	})
	for _, inst := range []Instance{rejected, never} {
		if _, err := getNode(inst.PrivateDNSName); !apierrors.IsNotFound(err) {
			t.Errorf("node of %s: %v, want none", inst.ID, err)
		}
	}

	// Terminating the instance leaves its Node to the autoscaler.
	if err := v.e.InterruptSpot(joins.ID); err != nil {
		t.Fatal(err)
	}
	stepAndSettle(t, v, 10*time.Minute)
	if inst, _ := v.e.Instance(joins.ID); inst.State != StateTerminated {
		t.Errorf("state %s after the interruption", inst.State)
	}
	if _, err := getNode(joins.PrivateDNSName); err != nil {
		t.Errorf("the node of a terminated instance: %v, want it kept", err)
	}
}

// TestJoinDelayJitter checks that each instance's Node registers at the first poll once it has
// been running for JoinDelay plus its own draw in [0, JoinDelayJitter), not before.
func TestJoinDelayJitter(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const joinDelay, jitter, launched = 5 * time.Second, 10 * time.Second, 4
	v := newEnv(t, Options{KubeClient: fake.NewClientset(), JoinDelay: joinDelay, JoinDelayJitter: jitter, JoinPollInterval: time.Second})
	ids := launchSpot(ctx, t, v, launched)
	joinAt := map[string]time.Time{}
	for _, id := range ids {
		runningAt, d := v.schedule(id)
		if d < joinDelay || d >= joinDelay+jitter {
			t.Errorf("%s join delay %v, want %v plus [0, %v)", id, d, joinDelay, jitter)
		}
		joinAt[id] = runningAt.Add(d)
	}
	// The join loop's ticker must exist before the clock moves, or its polls would lag.
	eventually(ctx, t, "the join loop's ticker", v.clock.HasWaiters)

	// Running after 1s, joining 5s to 15s later: poll by poll up to 16s, each Node appears at
	// the first poll at or past its instance's own time.
	joined := map[string]time.Time{}
	for range 16 {
		stepAndSettle(t, v, time.Second)
		now := v.clock.Now()
		for _, id := range ids {
			if now.Before(joinAt[id]) {
				if inst, _ := v.e.Instance(id); inst.NodeName != "" {
					t.Fatalf("%s joined at +%v, before its time +%v", id, now.Sub(testStart), joinAt[id].Sub(testStart))
				}
				continue
			}
			if _, ok := joined[id]; !ok {
				eventually(ctx, t, "the node of "+id, func() bool {
					inst, _ := v.e.Instance(id)
					return inst.NodeName != ""
				})
				joined[id] = now
			}
		}
	}
	polls := map[time.Time]bool{}
	for _, id := range ids {
		if at := joined[id]; at.Before(joinAt[id]) || !at.Before(joinAt[id].Add(time.Second)) {
			t.Errorf("%s joined at +%v, want the first poll at or past +%v", id, at.Sub(testStart), joinAt[id].Sub(testStart))
		}
		polls[joined[id]] = true
	}
	if len(polls) < 2 {
		t.Errorf("all %d instances joined at the same poll, want the jitter to spread them", launched)
	}
}

// stepAndSettle advances the fake clock, which ticks the join loop once.
func stepAndSettle(t *testing.T, v *env, d time.Duration) {
	t.Helper()
	v.clock.Step(d)
}

// eventually polls condition until it holds, failing the test after 10 seconds.
func eventually(ctx context.Context, t *testing.T, what string, condition func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return condition(), nil
	}); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// TestJoinRegistersAtOnce: the instances due at one poll register their Nodes at the same
// time, as their kubelets would, not one create after another: each create here waits until
// all of them are in flight.
func TestJoinRegistersAtOnce(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const launched = 4
	kube := &barrierClient{Interface: fake.NewClientset(), n: launched, all: make(chan struct{})}
	v := newEnv(t, Options{KubeClient: kube, JoinDelay: time.Second, JoinPollInterval: time.Second})
	ids := launchSpot(ctx, t, v, launched)
	eventually(ctx, t, "the join loop's ticker", v.clock.HasWaiters)
	stepAndSettle(t, v, 3*time.Second)
	for _, id := range ids {
		eventually(ctx, t, "the node of "+id, func() bool {
			inst, _ := v.e.Instance(id)
			return inst.NodeName != ""
		})
	}
}

// barrierClient is a clientset whose Node creates each wait until n of them are in flight,
// or fail after 5 s. (The fake clientset runs one request at a time.)
type barrierClient struct {
	kubernetes.Interface
	n        int32
	inFlight atomic.Int32
	all      chan struct{}
}

func (c *barrierClient) CoreV1() corev1client.CoreV1Interface {
	return barrierCore{c.Interface.CoreV1(), c}
}

type barrierCore struct {
	corev1client.CoreV1Interface
	c *barrierClient
}

func (b barrierCore) Nodes() corev1client.NodeInterface {
	return barrierNodes{b.CoreV1Interface.Nodes(), b.c}
}

type barrierNodes struct {
	corev1client.NodeInterface
	c *barrierClient
}

func (b barrierNodes) Create(ctx context.Context, node *corev1.Node, opts metav1.CreateOptions) (*corev1.Node, error) {
	if b.c.inFlight.Add(1) == b.c.n {
		close(b.c.all)
	}
	select {
	case <-b.c.all:
		return b.NodeInterface.Create(ctx, node, opts)
	case <-time.After(5 * time.Second):
		return nil, errors.New("the other nodes' creates did not come meanwhile")
	}
}

// launchSpot launches n spot t3a.2xlarge instances in us-east-1f from a launch template with
// the test's user data, and returns their IDs.
func launchSpot(ctx context.Context, t *testing.T, v *env, n int) []string {
	t.Helper()
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	in := fleetInput("test-lt", CapacityTypeSpot, "", [2]string{"t3a.2xlarge", "us-east-1f"})
	in.TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(int32(n))
	out, err := v.ec2.CreateFleet(ctx, in)
	ids := launchedIDs(out)
	if err != nil || len(ids) != n {
		t.Fatalf("CreateFleet: %+v, %v", out, err)
	}
	return ids
}
