package integration

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	nwaws "github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestAWSProviderLaunchJoins is the join acceptance item of issue 4: pkg/aws's Provider.Create
// launches an instance for a NodeClaim with a label requirement and a taint; the emulator joins
// it as a Node with those labels and taint and the instance's providerID, and a pod that
// tolerates the taint can be bound to it and runs.
func TestAWSProviderLaunchJoins(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)

	e := framework.Emulator(t, emulator.Options{})
	clients, err := nwaws.NewClients(ctx, nwaws.ClientOptions{
		Region:      emulator.Region,
		Endpoint:    e.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("anonymous", "anonymous", ""),
		MaxBackoff:  10 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewClients: %v", err)
	}
	provider, err := nwaws.New(nwaws.Options{
		Clients:           clients,
		ClusterName:       emulator.DefaultClusterName,
		ClusterEndpoint:   "https://127.0.0.1:6443",
		ClusterCA:         "Y2E=",
		ClusterCIDR:       "10.96.0.0/12",
		KubernetesVersion: "1.37",
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	nodeClass := &v1alpha1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: v1alpha1.EC2NodeClassSpec{
			SubnetSelector:        v1alpha1.SubnetSelector{Tags: map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}},
			SecurityGroupSelector: v1alpha1.SecurityGroupSelector{Tags: map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}},
			InstanceProfile:       new("nodes"),
		},
	}
	taint := corev1.Taint{Key: "nodewright.dev/test", Value: ns, Effect: corev1.TaintEffectNoSchedule}
	claim := &v1alpha1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: ns, UID: types.UID("6d0f2f4e-1c1b-4d2a-9a55-" + ns)},
		Spec: v1alpha1.NodeClaimSpec{
			Provisioner:  "default",
			NodeClassRef: v1alpha1.NodeClassReference{Name: nodeClass.Name},
			Requirements: []v1alpha1.NodeSelectorRequirement{
				{Key: "test-namespace", Operator: corev1.NodeSelectorOpIn, Values: []string{ns}},
				{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"t3a.2xlarge", "m5.2xlarge"}},
				{Key: v1alpha1.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{v1alpha1.CapacityTypeSpot}},
			},
			Taints: []v1alpha1.Taint{{Key: taint.Key, Value: taint.Value, Effect: taint.Effect}},
		},
	}
	inst, err := provider.Create(ctx, claim, nodeClass, nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		// The emulator leaves the Node of a terminated instance, as the autoscaler must delete it.
		if err := provider.Delete(context.Background(), inst.ProviderID); err != nil {
			t.Errorf("deleting %s: %v", inst.ProviderID, err)
		}
		if err := client.CoreV1().Nodes().Delete(context.Background(), inst.NodeName, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting node %s: %v", inst.NodeName, err)
		}
	})

	var node *corev1.Node
	framework.Eventually(ctx, t, 60*time.Second, "node "+inst.NodeName+" ready with the claim's taint", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, inst.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		node = n
		return nodeutil.IsNodeReady(n) && cmp.Equal(n.Spec.Taints, []corev1.Taint{taint}), nil
	})
	if node.Spec.ProviderID != inst.ProviderID {
		t.Errorf("providerID %q, want %q", node.Spec.ProviderID, inst.ProviderID)
	}
	for k, want := range map[string]string{
		"test-namespace":               ns,
		v1alpha1.LabelProvisionerName:  "default",
		v1alpha1.LabelCapacityType:     v1alpha1.CapacityTypeSpot,
		corev1.LabelInstanceTypeStable: inst.InstanceType,
		corev1.LabelTopologyZone:       inst.Zone,
		corev1.LabelHostname:           inst.NodeName,
	} {
		if got := node.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	pod := st.MakePod().Namespace(ns).Name("on-launched-node").Container("registry.k8s.io/pause:3.10").
		Toleration(taint.Key).NodeSelector(map[string]string{"test-namespace": ns}).
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "1"}).Obj()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: inst.NodeName}}
	if err := client.CoreV1().Pods(ns).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("binding the pod to %s: %v", inst.NodeName, err)
	}
	framework.Eventually(ctx, t, 60*time.Second, "pod running on "+inst.NodeName, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Spec.NodeName == inst.NodeName && p.Status.Phase == corev1.PodRunning, nil
	})
}
