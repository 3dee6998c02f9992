package aws

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// TestNodeClassNotReady checks that a selector matching nothing is a typed NodeClassNotReady
// error naming the selector, from InstanceTypes and from Create.
func TestNodeClassNotReady(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*v1alpha1.EC2NodeClass)
		reason string
	}{
		{
			name: "subnet tags",
			modify: func(nc *v1alpha1.EC2NodeClass) {
				nc.Spec.SubnetSelector.Tags = map[string]string{emulator.DiscoveryTagKey: "my-cluster"}
			},
			reason: `no subnet matches subnetSelector {"nodewright.dev/discovery":"my-cluster"}`,
		},
		{
			name: "subnet IDs",
			modify: func(nc *v1alpha1.EC2NodeClass) {
				nc.Spec.SubnetSelector = v1alpha1.SubnetSelector{IDs: []string{"subnet-0123456789abcdef0"}}
			},
			reason: `no subnet matches subnetSelector ["subnet-0123456789abcdef0"]`,
		},
		{
			name: "security group tags",
			modify: func(nc *v1alpha1.EC2NodeClass) {
				nc.Spec.SecurityGroupSelector.Tags = map[string]string{"Name": "nope"}
			},
			reason: `no security group matches securityGroupSelector {"Name":"nope"}`,
		},
		{
			name: "AMI selector",
			modify: func(nc *v1alpha1.EC2NodeClass) {
				nc.Spec.AMISelector = &v1alpha1.AMISelector{Name: "my-ami-*"}
			},
			reason: `no AMI matches amiSelector {"name":"my-ami-*"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			env := newTestEnv(t, emulator.Options{})
			nc := testNodeClass()
			tc.modify(nc)
			_, err := env.provider.InstanceTypes(ctx, nc, nil)
			var notReady *cloud.NodeClassNotReadyError
			if !errors.As(err, &notReady) {
				t.Fatalf("InstanceTypes: %v, want a NodeClassNotReady error", err)
			}
			if diff := cmp.Diff(&cloud.NodeClassNotReadyError{NodeClass: "default", Reason: tc.reason}, notReady); diff != "" {
				t.Errorf("error (-want, +got):\n%s", diff)
			}
			if _, err := env.provider.Create(ctx, testNodeClaim("claim-nr", "1"), nc, nil); !cloud.IsNodeClassNotReady(err) {
				t.Errorf("Create: %v, want a NodeClassNotReady error", err)
			}
		})
	}
}

// TestNodeClassResolution checks the subnets per zone, the security groups and the AMIs of the
// AMI families and of an amiSelector.
func TestNodeClassResolution(t *testing.T) {
	subnets := emulator.DefaultSubnets(testCluster)
	// A second, emptier subnet in us-east-1a must lose to the default one.
	small := emulator.Subnet{ID: "subnet-00000000000000001", Zone: "us-east-1a", CIDR: "10.0.200.0/24",
		Tags: map[string]string{emulator.DiscoveryTagKey: testCluster}}
	image := emulator.Image{ID: "ami-00000000000000001", Name: "my-ami-1", Architecture: "arm64", OwnerID: emulator.AccountID}
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{Subnets: append(subnets, small), Images: []emulator.Image{image}})

	al2023, err := env.provider.nodeClasses.resolve(ctx, testNodeClass())
	if err != nil {
		t.Fatalf("resolving: %v", err)
	}
	if got := al2023.subnets["us-east-1a"].id; got != subnets[0].ID {
		t.Errorf("subnet of us-east-1a %s, want the one with the most free addresses, %s", got, subnets[0].ID)
	}
	if diff := cmp.Diff([]string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}, al2023.zones()); diff != "" {
		t.Errorf("zones (-want, +got):\n%s", diff)
	}
	names := map[string]string{}
	for arch, a := range al2023.amis {
		names[arch] = a.name
	}
	for arch, a := range al2023.nvidiaAMIs {
		names[arch+"/nvidia"] = a.name
	}
	if diff := cmp.Diff(map[string]string{
		"amd64":        "/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/x86_64/standard/recommended/image_id",
		"arm64":        "/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/arm64/standard/recommended/image_id",
		"amd64/nvidia": "/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/x86_64/nvidia/recommended/image_id",
		"arm64/nvidia": "/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/arm64/nvidia/recommended/image_id",
	}, names); diff != "" {
		t.Errorf("AL2023 AMI parameters (-want, +got):\n%s", diff)
	}

	br := testNodeClass()
	br.Name = "bottlerocket"
	br.Spec.AMIFamily = v1alpha1.AMIFamilyBottlerocket
	resolved, err := env.provider.nodeClasses.resolve(ctx, br)
	if err != nil || resolved.amis["arm64"].name != "/aws/service/bottlerocket/aws-k8s-1.37/arm64/latest/image_id" {
		t.Errorf("Bottlerocket AMIs %+v, %v", resolved, err)
	}

	custom := testNodeClass()
	custom.Name = "custom"
	custom.Spec.AMISelector = &v1alpha1.AMISelector{Name: "my-ami-*", Owner: "self"}
	resolved, err = env.provider.nodeClasses.resolve(ctx, custom)
	if err != nil {
		t.Fatalf("resolving amiSelector: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"arm64": image.ID}, map[string]string{"arm64": resolved.amis["arm64"].id}); diff != "" || len(resolved.amis) != 1 {
		t.Errorf("amiSelector AMIs %+v", resolved.amis)
	}
	// Only arm64 types can boot the selected AMI.
	types, err := env.provider.InstanceTypes(ctx, custom, nil)
	if err != nil {
		t.Fatalf("InstanceTypes: %v", err)
	}
	for _, it := range types {
		if it.Labels["kubernetes.io/arch"] != "arm64" {
			t.Fatalf("instance type %s of arch %s offered with only an arm64 AMI", it.Name, it.Labels["kubernetes.io/arch"])
		}
	}
}
