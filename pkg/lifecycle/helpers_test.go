package lifecycle

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	cloudfake "github.com/nodewright/nodewright/pkg/cloud/fake"
	"github.com/nodewright/nodewright/pkg/disruption"
)

// t0 is the fake clock's start, a whole second since API times round to seconds.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a fake cluster and cloud for one test.
type env struct {
	ctx   context.Context
	kube  *kubefake.Clientset
	dyn   *dynamicfake.FakeDynamicClient
	cloud *cloudfake.Provider
	clock *clocktesting.FakeClock
	deps  *deps
}

// newEnv returns an empty fake cluster and cloud; add puts objects in them.
func newEnv(t *testing.T) *env {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	clk := clocktesting.NewFakeClock(t0)
	e := &env{
		ctx:   ctx,
		kube:  kubefake.NewClientset(),
		dyn:   dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds),
		cloud: &cloudfake.Provider{Types: testTypes, Now: clk.Now},
		clock: clk,
	}
	e.deps = &deps{kube: e.kube, objects: objects{client: e.dyn}, cloud: e.cloud, clock: clk, recorder: events.NewFakeRecorder(100), gate: disruption.NewGate()}
	return e
}

// add stores objects: core ones in the Kubernetes fake, nodewright's in the dynamic fake.
func (e *env) add(t *testing.T, objs ...runtime.Object) {
	t.Helper()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *v1alpha1.NodeClaim:
			err = e.addOurs(o, "NodeClaim", v1alpha1.NodeClaimGVR)
		case *v1alpha1.Provisioner:
			err = e.addOurs(o, "Provisioner", v1alpha1.ProvisionerGVR)
		case *v1alpha1.EC2NodeClass:
			err = e.addOurs(o, "EC2NodeClass", v1alpha1.EC2NodeClassGVR)
		default:
			err = e.kube.Tracker().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) addOurs(o runtime.Object, kind string, gvr schema.GroupVersionResource) error {
	u, err := toUnstructured(o, kind)
	if err != nil {
		return err
	}
	return e.dyn.Tracker().Create(gvr, u, "")
}

func toUnstructured(obj runtime.Object, kind string) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.SchemeGroupVersion.String())
	u.SetKind(kind)
	return u, nil
}

var testTypes = []*cloud.InstanceType{
	{Name: "m5.large", Offerings: []cloud.Offering{{Zone: "us-east-1a", CapacityType: v1alpha1.CapacityTypeSpot, Price: 0.04, Available: true}}},
	{Name: "c5.large", Offerings: []cloud.Offering{{Zone: "us-east-1b", CapacityType: v1alpha1.CapacityTypeOnDemand, Price: 0.085, Available: true}}},
}

// claim returns a NodeClaim of Provisioner "default" allowing m5.large, changed by opts.
func claim(name string, opts ...func(*v1alpha1.NodeClaim)) *v1alpha1.NodeClaim {
	nc := &v1alpha1.NodeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "NodeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0)},
		Spec: v1alpha1.NodeClaimSpec{
			Provisioner:  "default",
			NodeClassRef: v1alpha1.NodeClassReference{Name: "default"},
			Requirements: []v1alpha1.NodeSelectorRequirement{
				{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"m5.large"}},
			},
		},
	}
	for _, o := range opts {
		o(nc)
	}
	return nc
}

// launched marks a NodeClaim launched as instance i-1 at t0, with the termination finalizer.
func launched(providerID string) func(*v1alpha1.NodeClaim) {
	return func(nc *v1alpha1.NodeClaim) {
		nc.Finalizers = []string{v1alpha1.TerminationFinalizer}
		nc.Status.ProviderID = providerID
		nc.Status.InstanceID = providerID[len(providerID)-19:]
		nc.Status.NodeName = "node-" + nc.Name
		nc.Status.InstanceType = "m5.large"
		nc.Status.Zone = "us-east-1a"
		nc.Status.CapacityType = v1alpha1.CapacityTypeSpot
		nc.Status.LaunchTime = &metav1.Time{Time: t0}
		nc.Status.Conditions = append(nc.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionLaunched, Status: metav1.ConditionTrue, Reason: reasonLaunched, LastTransitionTime: metav1.NewTime(t0)})
	}
}

// initialized marks a NodeClaim registered and initialized at t0.
func initialized(nc *v1alpha1.NodeClaim) {
	for _, c := range []string{v1alpha1.ConditionRegistered, v1alpha1.ConditionInitialized} {
		nc.Status.Conditions = append(nc.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionTrue, Reason: "Test", LastTransitionTime: metav1.NewTime(t0)})
	}
}

func deleting(nc *v1alpha1.NodeClaim) { nc.DeletionTimestamp = &metav1.Time{Time: t0} }

func provisioner(name string, opts ...func(*v1alpha1.Provisioner)) *v1alpha1.Provisioner {
	p := &v1alpha1.Provisioner{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Provisioner"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.ProvisionerSpec{NodeClassRef: v1alpha1.NodeClassReference{Name: "default"}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ttlAfterEmpty(s int64) func(*v1alpha1.Provisioner) {
	return func(p *v1alpha1.Provisioner) { p.Spec.TTLSecondsAfterEmpty = ptr.To(s) }
}

func nodeClass(name string) *v1alpha1.EC2NodeClass {
	return &v1alpha1.EC2NodeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "EC2NodeClass"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
}

// node returns a Ready Node with the providerID, changed by opts.
func node(name, providerID string, opts ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{ProviderID: providerID},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// ownedBy labels a Node for the NodeClaim and gives it the termination finalizer.
func ownedBy(claim string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Labels = map[string]string{v1alpha1.LabelNodeClaim: claim, v1alpha1.LabelProvisionerName: "default"}
		n.Finalizers = []string{v1alpha1.TerminationFinalizer}
	}
}

func nodeDeleting(n *corev1.Node) { n.DeletionTimestamp = &metav1.Time{Time: t0} }

// pod returns a running pod bound to nodeName, changed by opts.
func pod(name, nodeName string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: nodeName},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func daemonSetPod(p *corev1.Pod) {
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", UID: "ds", Controller: ptr.To(true)}}
}

func mirrorPod(p *corev1.Pod) {
	p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
}

func succeeded(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }

func doNotEvict(p *corev1.Pod) {
	p.Annotations = map[string]string{v1alpha1.AnnotationDoNotEvict: "true"}
}

// getClaim returns the NodeClaim, or nil if it does not exist.
func (e *env) getClaim(t *testing.T, name string) *v1alpha1.NodeClaim {
	t.Helper()
	nc, err := e.deps.objects.getNodeClaim(e.ctx, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// getNode returns the Node, or nil if it does not exist.
func (e *env) getNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := e.kube.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// launch launches an instance in the fake cloud for a NodeClaim and returns its provider ID.
func (e *env) launch(t *testing.T, nc *v1alpha1.NodeClaim) string {
	t.Helper()
	inst, err := e.cloud.Create(e.ctx, nc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return inst.ProviderID
}

// instanceExists reports whether the fake cloud still has the instance.
func (e *env) instanceExists(t *testing.T, providerID string) bool {
	t.Helper()
	_, err := e.cloud.Get(e.ctx, providerID)
	if err != nil && !cloud.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// conditions returns the status of each of nc's conditions by type, for compact diffs.
func conditions(nc *v1alpha1.NodeClaim) map[string]metav1.ConditionStatus {
	out := map[string]metav1.ConditionStatus{}
	for _, c := range nc.Status.Conditions {
		out[c.Type] = c.Status
	}
	return out
}

func condition(nc *v1alpha1.NodeClaim, t string) *metav1.Condition {
	return meta.FindStatusCondition(nc.Status.Conditions, t)
}

var (
	deleteNow        = metav1.DeleteOptions{}
	metav1GetOptions = metav1.GetOptions{}
)

// drainEvents returns the events recorded so far.
func drainEvents(e *env) []string {
	var out []string
	ch := e.deps.recorder.(*events.FakeRecorder).Events
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}
