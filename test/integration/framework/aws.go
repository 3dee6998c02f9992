package framework

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	nwaws "github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/lifecycle"
)

// The resources of nodewright's kinds, for the dynamic client.
var (
	NodeClaimGVR    = v1alpha1.SchemeGroupVersion.WithResource("nodeclaims")
	ProvisionerGVR  = v1alpha1.SchemeGroupVersion.WithResource("provisioners")
	EC2NodeClassGVR = v1alpha1.SchemeGroupVersion.WithResource("ec2nodeclasses")
)

// cleanupTimeout bounds how long a cleanup waits for the lifecycle to remove an object
// before it strips the finalizers itself.
const cleanupTimeout = 30 * time.Second

// Emulator starts an EC2 emulator on loopback, closed when the test ends. Unless opts say
// otherwise it joins instances to the shared control plane, and its latencies are short
// (200ms launch, terminate and join, 50ms join poll) so that tests run in seconds.
func Emulator(t testing.TB, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	if opts.KubeClient == nil && opts.RESTConfig == nil {
		opts.RESTConfig = RESTConfig(t)
	}
	if opts.LaunchLatency == 0 {
		opts.LaunchLatency = 200 * time.Millisecond
	}
	if opts.TerminateLatency == 0 {
		opts.TerminateLatency = 200 * time.Millisecond
	}
	if opts.JoinDelay == 0 {
		opts.JoinDelay = 200 * time.Millisecond
	}
	if opts.JoinPollInterval == 0 {
		opts.JoinPollInterval = 50 * time.Millisecond
	}
	e := emulator.New(opts)
	if err := e.Start(); err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// AWSProvider returns pkg/aws's provider and interruption queue (on the emulator's default
// queue) talking to e, configured to join nodes to the shared control plane.
func AWSProvider(t testing.TB, e *emulator.Emulator) (*nwaws.Provider, *nwaws.InterruptionQueue) {
	t.Helper()
	clients, err := nwaws.NewClients(context.Background(), nwaws.ClientOptions{
		Region:      emulator.Region,
		Endpoint:    e.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("anonymous", "anonymous", ""),
		MaxBackoff:  10 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("creating the AWS clients: %v", err)
	}
	cfg := RESTConfig(t)
	provider, err := nwaws.New(nwaws.Options{
		Clients:           clients,
		ClusterName:       emulator.DefaultClusterName,
		ClusterEndpoint:   cfg.Host,
		ClusterCA:         base64.StdEncoding.EncodeToString(cfg.CAData),
		ClusterCIDR:       "10.96.0.0/16",
		KubernetesVersion: "1.37",
	})
	if err != nil {
		t.Fatalf("creating the AWS provider: %v", err)
	}
	queue, err := nwaws.NewInterruptionQueue(nwaws.InterruptionQueueOptions{
		SQS:       clients.SQS,
		QueueName: emulator.DefaultQueueName,
		Wait:      time.Second,
	})
	if err != nil {
		t.Fatalf("creating the interruption queue: %v", err)
	}
	return provider, queue
}

// Dynamic returns a dynamic client for the shared control plane.
func Dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	client, err := dynamic.NewForConfig(RESTConfig(t))
	if err != nil {
		t.Fatalf("creating dynamic client: %v", err)
	}
	return client
}

// Lifecycle runs a lifecycle Manager in-process with ctx (which carries the test's logger)
// until the returned stop is called or the test ends; stop cancels Run and waits for it to
// return, and may be called more than once. Client and Dynamic default to the shared
// control plane; leader election defaults to a Lease in kube-system named after the test,
// with a short lease (3s, renew 2s, retry 250ms) so that a restarted Manager takes over fast.
// A Run that returns an error before stop fails the test.
func Lifecycle(ctx context.Context, t testing.TB, opts lifecycle.Options) (stop func()) {
	t.Helper()
	// The lifecycle reads through the API rather than its informers' caches: the client
	// defaults (5 QPS) would throttle it to the point of slowing the tests down.
	cfg := RESTConfig(t)
	cfg.QPS, cfg.Burst = 100, 200
	if opts.Client == nil {
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatalf("creating client: %v", err)
		}
		opts.Client = client
	}
	if opts.Dynamic == nil {
		client, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatalf("creating dynamic client: %v", err)
		}
		opts.Dynamic = client
	}
	le := &opts.LeaderElection
	if le.LeaseName == "" {
		le.LeaseName = leaseName(t.Name())
	}
	if le.LeaseDuration == 0 {
		le.LeaseDuration = 3 * time.Second
	}
	if le.RenewDeadline == 0 {
		le.RenewDeadline = 2 * time.Second
	}
	if le.RetryPeriod == 0 {
		le.RetryPeriod = 250 * time.Millisecond
	}
	m, err := lifecycle.New(opts)
	if err != nil {
		t.Fatalf("creating the lifecycle manager: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("lifecycle manager stopped: %v", err)
		}
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

func leaseName(testName string) string {
	name := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if len(name) > 50 {
		name = strings.Trim(name[:50], "-")
	}
	return "nodewright-lifecycle-" + name
}

// EC2NodeClass creates an EC2NodeClass named name whose subnet and security group selectors
// find the emulator's defaults, deleted when the test ends.
func EC2NodeClass(ctx context.Context, t testing.TB, name string) *v1alpha1.EC2NodeClass {
	t.Helper()
	nc := &v1alpha1.EC2NodeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "EC2NodeClass"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.EC2NodeClassSpec{
			SubnetSelector:        v1alpha1.SubnetSelector{Tags: map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}},
			SecurityGroupSelector: v1alpha1.SecurityGroupSelector{Tags: map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}},
			InstanceProfile:       new("nodes"),
		},
	}
	createObject(ctx, t, EC2NodeClassGVR, nc)
	return nc
}

// Provisioner creates p, deleted when the test ends. Its TypeMeta is filled in.
func Provisioner(ctx context.Context, t testing.TB, p *v1alpha1.Provisioner) *v1alpha1.Provisioner {
	t.Helper()
	p.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Provisioner"}
	createObject(ctx, t, ProvisionerGVR, p)
	return p
}

// NodeClaim creates nc and returns it as created. When the test ends it deletes the claim
// and waits for the lifecycle to terminate it; if that takes longer than 30s it strips the
// finalizers of the claim and of its Node, so that no test leaves either behind.
func NodeClaim(ctx context.Context, t testing.TB, nc *v1alpha1.NodeClaim) *v1alpha1.NodeClaim {
	t.Helper()
	nc.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "NodeClaim"}
	u := createObject(ctx, t, NodeClaimGVR, nc)
	created, err := fromUnstructured[v1alpha1.NodeClaim](u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { forceDeleteNodeClaim(t, nc.Name) })
	return created
}

// GetNodeClaim returns the NodeClaim named name.
func GetNodeClaim(ctx context.Context, t testing.TB, name string) (*v1alpha1.NodeClaim, error) {
	t.Helper()
	u, err := Dynamic(t).Resource(NodeClaimGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured[v1alpha1.NodeClaim](u)
}

// ListNodeClaims returns every NodeClaim.
func ListNodeClaims(ctx context.Context, t testing.TB) ([]v1alpha1.NodeClaim, error) {
	t.Helper()
	list, err := Dynamic(t).Resource(NodeClaimGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]v1alpha1.NodeClaim, 0, len(list.Items))
	for i := range list.Items {
		nc, err := fromUnstructured[v1alpha1.NodeClaim](&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *nc)
	}
	return out, nil
}

// forceDeleteNodeClaim deletes the claim, waits for it to be gone and, failing that, removes
// the finalizers of the claim and its Node.
func forceDeleteNodeClaim(t testing.TB, name string) {
	ctx := context.Background()
	resource := Dynamic(t).Resource(NodeClaimGVR)
	if err := resource.Delete(ctx, name, metav1.DeleteOptions{}); apierrors.IsNotFound(err) {
		return
	} else if err != nil {
		t.Errorf("deleting nodeclaim %s: %v", name, err)
		return
	}
	var nodeName string
	err := pollGone(ctx, func(ctx context.Context) (bool, error) {
		u, err := resource.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		nodeName, _, _ = unstructured.NestedString(u.Object, "status", "nodeName")
		return false, nil
	})
	if err == nil {
		return
	}
	t.Logf("nodeclaim %s not terminated within %s, removing its finalizers: %v", name, cleanupTimeout, err)
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := resource.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("removing the finalizers of nodeclaim %s: %v", name, err)
	}
	if nodeName != "" {
		forceDeleteNode(t, Client(t), nodeName)
	}
}

// forceDeleteNode removes the Node's finalizers and deletes it.
func forceDeleteNode(t testing.TB, client kubernetes.Interface, name string) {
	ctx := context.Background()
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("removing the finalizers of node %s: %v", name, err)
	}
	if err := client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting node %s: %v", name, err)
	}
}

// ForceDeleteNodesOf deletes, when the test ends, every Node whose providerID is one of the
// emulator's instances, stripping finalizers: the emulator leaves the Nodes of the instances
// it terminates, and a test that failed half-way may leave some behind.
func ForceDeleteNodesOf(t testing.TB, e *emulator.Emulator) {
	t.Helper()
	client := Client(t)
	t.Cleanup(func() {
		for _, inst := range e.Instances() {
			if inst.NodeName == "" {
				continue
			}
			n, err := client.CoreV1().Nodes().Get(context.Background(), inst.NodeName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				t.Errorf("reading node %s: %v", inst.NodeName, err)
				continue
			}
			if n.Spec.ProviderID == emulator.ProviderID(inst.Zone, inst.ID) {
				forceDeleteNode(t, client, n.Name)
			}
		}
	})
}

func pollGone(ctx context.Context, gone func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for {
		ok, err := gone(ctx)
		if ok {
			return nil
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// createObject creates obj, a nodewright object with its TypeMeta set, through the dynamic
// client and deletes it when the test ends.
func createObject(ctx context.Context, t testing.TB, gvr schema.GroupVersionResource, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatalf("converting %T: %v", obj, err)
	}
	resource := Dynamic(t).Resource(gvr)
	created, err := resource.Create(ctx, &unstructured.Unstructured{Object: content}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s: %v", gvr.Resource, err)
	}
	name := created.GetName()
	t.Cleanup(func() {
		if err := resource.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s %s: %v", gvr.Resource, name, err)
		}
	})
	return created
}

func fromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return out, nil
}

// InstancesOf returns the emulator's instances tagged for the NodeClaim named claim, in any
// state.
func InstancesOf(e *emulator.Emulator, claim string) []emulator.Instance {
	var out []emulator.Instance
	for _, inst := range e.Instances() {
		if inst.Tags[v1alpha1.TagNodeClaim] == claim {
			out = append(out, inst)
		}
	}
	return out
}

// DeleteClaimsOf deletes the NodeClaims of the Provisioner named provisioner and waits, up
// to a minute, until they and their Nodes are gone: the end of a test whose scheduler made
// them, run while its lifecycle still runs.
func DeleteClaimsOf(ctx context.Context, t testing.TB, client kubernetes.Interface, provisioner string) {
	t.Helper()
	dyn := Dynamic(t)
	selector := v1alpha1.LabelProvisionerName + "=" + provisioner
	if err := dyn.Resource(NodeClaimGVR).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector}); err != nil {
		t.Errorf("deleting nodeclaims: %v", err)
	}
	Eventually(ctx, t, 60*time.Second, "the provisioner's nodeclaims and nodes gone", func(ctx context.Context) (bool, error) {
		claims, err := dyn.Resource(NodeClaimGVR).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err == nil && len(claims.Items) == 0 && len(nodes.Items) == 0, err
	})
}
