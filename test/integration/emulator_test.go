package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// nodeadmUserData is AL2023 user data that joins the node with the given labels and taint.
func nodeadmUserData(labels, taint string) string {
	return fmt.Sprintf(`MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//"

--//
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: sandbox
    apiServerEndpoint: https://127.0.0.1:6443
    certificateAuthority: Y2E=
    cidr: 10.96.0.0/12
  kubelet:
    flags:
      - --node-labels=%s
      - --register-with-taints=%s

--//--
`, labels, taint)
}

// TestEmulatorJoinsLaunchedInstance launches an instance through the real EC2 client against
// the emulator and checks that it joins the control plane as the kubelet would: a Node with
// the user data's labels and taint and the instance's providerID, which kwok makes Ready and
// which a pod tolerating the taint can be bound to and run on.
func TestEmulatorJoinsLaunchedInstance(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)

	e := framework.Emulator(t, emulator.Options{})
	cfg := aws.Config{Region: emulator.Region, Credentials: credentials.NewStaticCredentialsProvider("anonymous", "anonymous", "")}
	ec2Client := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(e.URL()) })
	ssmClient := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(e.URL()) })

	param, err := ssmClient.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/x86_64/standard/recommended/image_id")})
	if err != nil {
		t.Fatalf("GetParameter: %v", err)
	}
	subnets, err := ec2Client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + emulator.DiscoveryTagKey), Values: []string{emulator.DefaultClusterName}},
		{Name: aws.String("availability-zone"), Values: []string{"us-east-1f"}},
	}})
	if err != nil || len(subnets.Subnets) != 1 {
		t.Fatalf("DescribeSubnets: %+v, %v", subnets, err)
	}

	taint := corev1.Taint{Key: "nodewright.dev/test", Value: ns, Effect: corev1.TaintEffectNoSchedule}
	userData := nodeadmUserData("nodewright.dev/provisioner-name=default,test-namespace="+ns, taint.Key+"="+taint.Value+":"+string(taint.Effect))
	if _, err := ec2Client.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("nodewright-" + ns),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			ImageId:         param.Parameter.Value,
			UserData:        aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired},
		},
	}); err != nil {
		t.Fatalf("CreateLaunchTemplate: %v", err)
	}
	fleet, err := ec2Client.CreateFleet(ctx, &ec2.CreateFleetInput{
		Type:        ec2types.FleetTypeInstant,
		ClientToken: aws.String(ns),
		LaunchTemplateConfigs: []ec2types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String("nodewright-" + ns), Version: aws.String("$Latest")},
			Overrides:                   []ec2types.FleetLaunchTemplateOverridesRequest{{InstanceType: "t3a.2xlarge", SubnetId: subnets.Subnets[0].SubnetId}},
		}},
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: ec2types.DefaultTargetCapacityTypeSpot},
		SpotOptions:                 &ec2types.SpotOptionsRequest{AllocationStrategy: ec2types.SpotAllocationStrategyPriceCapacityOptimized},
	})
	if err != nil || len(fleet.Instances) != 1 || len(fleet.Instances[0].InstanceIds) != 1 {
		t.Fatalf("CreateFleet: %+v, %v", fleet, err)
	}
	instanceID := fleet.Instances[0].InstanceIds[0]
	described, err := ec2Client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	nodeName := aws.ToString(described.Reservations[0].Instances[0].PrivateDnsName)
	t.Cleanup(func() {
		// The emulator leaves the Node of a terminated instance, as the autoscaler must delete it.
		if _, err := ec2Client.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{instanceID}}); err != nil {
			t.Errorf("terminating %s: %v", instanceID, err)
		}
		if err := client.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting node %s: %v", nodeName, err)
		}
	})

	var node *corev1.Node
	framework.Eventually(ctx, t, 60*time.Second, "node "+nodeName+" ready with only its own taint", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		node = n
		return nodeutil.IsNodeReady(n) && cmp.Equal(n.Spec.Taints, []corev1.Taint{taint}), nil
	})
	if want := "aws:///us-east-1f/" + instanceID; node.Spec.ProviderID != want {
		t.Errorf("providerID %q, want %q", node.Spec.ProviderID, want)
	}
	for k, want := range map[string]string{
		"nodewright.dev/provisioner-name":  "default",
		"test-namespace":                   ns,
		"node.kubernetes.io/instance-type": "t3a.2xlarge",
		"topology.kubernetes.io/zone":      "us-east-1f",
		"kubernetes.io/arch":               "amd64",
		"kubernetes.io/hostname":           nodeName,
	} {
		if got := node.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if cpu := node.Status.Allocatable[corev1.ResourceCPU]; cpu.Value() != 8 {
		t.Errorf("allocatable cpu %s, want 8", cpu.String())
	}

	pod := st.MakePod().Namespace(ns).Name("on-emulated-node").Container("registry.k8s.io/pause:3.10").
		Toleration(taint.Key).NodeSelector(map[string]string{"test-namespace": ns}).
		Req(map[corev1.ResourceName]string{corev1.ResourceCPU: "1"}).Obj()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: nodeName}}
	if err := client.CoreV1().Pods(ns).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("binding the pod to %s: %v", nodeName, err)
	}
	framework.Eventually(ctx, t, 60*time.Second, "pod running on "+nodeName, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Spec.NodeName == nodeName && p.Status.Phase == corev1.PodRunning, nil
	})
}
