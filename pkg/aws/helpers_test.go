package aws

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
)

const testCluster = "test-cluster"

var testStart = time.Date(2026, 8, 10, 10, 30, 0, 0, time.UTC)

// testEnv is an emulator, on its own fake clock, and a Provider pointed at it through the real
// SDK clients, on another fake clock.
type testEnv struct {
	emulator *emulator.Emulator
	clients  *Clients
	provider *Provider
	clock    *clocktesting.FakeClock
}

// newTestEnv starts an emulator configured by opts (with the test cluster's subnets and
// security groups) and a provider for it, and stops the emulator when the test ends.
func newTestEnv(t *testing.T, opts emulator.Options) *testEnv {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = clocktesting.NewFakeClock(testStart)
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(1, 2))
	}
	if opts.ClusterName == "" {
		opts.ClusterName = testCluster
	}
	e := emulator.New(opts)
	if err := e.Start(); err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	t.Cleanup(e.Close)
	clients, err := NewClients(context.Background(), ClientOptions{
		Region:      emulator.Region,
		Endpoint:    e.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("anonymous", "anonymous", ""),
		MaxBackoff:  5 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewClients: %v", err)
	}
	clock := clocktesting.NewFakeClock(testStart)
	p, err := New(Options{
		Clients:           clients,
		ClusterName:       testCluster,
		ClusterEndpoint:   "https://127.0.0.1:6443",
		ClusterCA:         "Y2E=",
		ClusterCIDR:       "10.96.0.0/12",
		KubernetesVersion: "1.37",
		Clock:             clock,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testEnv{emulator: e, clients: clients, provider: p, clock: clock}
}

// testNodeClass selects the emulator's default subnets and security groups of the test
// cluster.
func testNodeClass() *v1alpha1.EC2NodeClass {
	return &v1alpha1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: v1alpha1.EC2NodeClassSpec{
			SubnetSelector:        v1alpha1.SubnetSelector{Tags: map[string]string{emulator.DiscoveryTagKey: testCluster}},
			SecurityGroupSelector: v1alpha1.SecurityGroupSelector{Tags: map[string]string{emulator.DiscoveryTagKey: testCluster}},
			InstanceProfile:       ptr("nodes"),
			Tags:                  map[string]string{"team": "platform"},
		},
	}
}

// testNodeClaim is a NodeClaim of the "default" Provisioner for pods requesting cpu in total.
func testNodeClaim(name, cpu string, reqs ...v1alpha1.NodeSelectorRequirement) *v1alpha1.NodeClaim {
	return &v1alpha1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("3f6c1d1e-0000-4000-8000-" + name[len(name)-min(len(name), 12):] + "000000000000"[:12-min(len(name), 12)])},
		Spec: v1alpha1.NodeClaimSpec{
			Provisioner:  "default",
			NodeClassRef: v1alpha1.NodeClassReference{Name: "default"},
			Requirements: reqs,
			Resources: v1alpha1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourcePods: resource.MustParse("5"),
			}},
		},
	}
}

func req(key string, op corev1.NodeSelectorOperator, values ...string) v1alpha1.NodeSelectorRequirement {
	return v1alpha1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func ptr[T any](v T) *T { return &v }
