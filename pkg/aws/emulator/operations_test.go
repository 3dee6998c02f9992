package emulator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOperations pins the operations the emulator implements: every one has a round trip
// through the SDK in this package's tests, and pkg/aws may call no other.
func TestOperations(t *testing.T) {
	want := map[string][]string{
		"ec2": {"CreateFleet", "CreateLaunchTemplate", "CreateTags", "DeleteLaunchTemplate", "DescribeAvailabilityZones",
			"DescribeImages", "DescribeInstanceTypeOfferings", "DescribeInstanceTypes", "DescribeInstances",
			"DescribeLaunchTemplates", "DescribeSecurityGroups", "DescribeSpotPriceHistory", "DescribeSubnets", "TerminateInstances"},
		"ssm":     {"GetParameter"},
		"pricing": {"GetProducts"},
		"sqs":     {"DeleteMessage", "GetQueueUrl", "ReceiveMessage", "SendMessage"},
	}
	if diff := cmp.Diff(want, Operations()); diff != "" {
		t.Errorf("Operations() (-want, +got):\n%s", diff)
	}
}

func TestStartRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"not loopback", Options{Address: "0.0.0.0:0"}},
		{"bad CIDR", Options{Subnets: []Subnet{{ID: "subnet-1", Zone: "us-east-1a", CIDR: "10.0.0.0/30"}}}},
		{"bad zone", Options{Subnets: []Subnet{{ID: "subnet-1", Zone: "eu-west-1a", CIDR: "10.0.0.0/24"}}}},
		{"queue twice", Options{Queues: []string{"q", "q"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(tc.opts)
			defer e.Close()
			if err := e.Start(); err == nil {
				t.Error("Start succeeded")
			}
		})
	}
}
