package emulator

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

func TestLaunchTemplates(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	userData := testUserData("--node-labels=team=a")
	id := v.createLaunchTemplate(ctx, t, "nodewright/default/abc", userData)

	if _, err := v.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("nodewright.dev/cluster"), Value: aws.String("test")}}}); err != nil {
		t.Fatalf("CreateTags: %v", err)
	}
	for _, in := range []*ec2.DescribeLaunchTemplatesInput{
		{LaunchTemplateNames: []string{"nodewright/default/abc"}},
		{LaunchTemplateIds: []string{id}},
		{Filters: []ec2types.Filter{{Name: aws.String("tag:nodewright.dev/cluster"), Values: []string{"test"}}}},
	} {
		out, err := v.ec2.DescribeLaunchTemplates(ctx, in)
		if err != nil {
			t.Fatalf("DescribeLaunchTemplates(%+v): %v", in, err)
		}
		if len(out.LaunchTemplates) != 1 || aws.ToString(out.LaunchTemplates[0].LaunchTemplateId) != id || aws.ToInt64(out.LaunchTemplates[0].LatestVersionNumber) != 1 {
			t.Errorf("DescribeLaunchTemplates(%+v) = %+v", in, out.LaunchTemplates)
		}
	}
	lts := v.e.LaunchTemplates()
	if len(lts) != 1 || lts[0].UserData != userData || lts[0].MetadataOptions.HTTPTokens != "required" ||
		lts[0].MetadataOptions.HTTPPutResponseHopLimit != 1 || lts[0].Tags["nodewright.dev/cluster"] != "test" {
		t.Errorf("LaunchTemplates() = %+v", lts)
	}

	for _, tc := range []struct {
		name     string
		in       *ec2.CreateLaunchTemplateInput
		wantCode string
	}{
		{"no data", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-2"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{}}, "MissingParameter"},
		{"duplicate name", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("nodewright/default/abc"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: "m5.large"}}, "InvalidLaunchTemplateName.AlreadyExistsException"},
		{"malformed name", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("a b"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: "m5.large"}}, "InvalidLaunchTemplateName.MalformedException"},
		{"user data not base64", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-2"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{UserData: aws.String("#!/bin/bash")}}, "InvalidUserData.Malformed"},
		{"hop limit", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-2"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(65)}}}, "InvalidParameterValue"},
		{"http tokens", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-2"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: "always"}}}, "InvalidParameterValue"},
		{"throughput on gp2", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-2"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			BlockDeviceMappings: []ec2types.LaunchTemplateBlockDeviceMappingRequest{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.LaunchTemplateEbsBlockDeviceRequest{VolumeType: "gp2", Throughput: aws.Int32(200)}}}}}, "InvalidParameterValue"},
		{"reserved tag", &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-2"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: "m5.large"},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: "launch-template", Tags: []ec2types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}}}, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.ec2.CreateLaunchTemplate(ctx, tc.in); errorCode(err) != tc.wantCode {
				t.Errorf("CreateLaunchTemplate: %v, want code %s", err, tc.wantCode)
			}
		})
	}

	if _, err := v.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("nodewright/default/abc")}); err != nil {
		t.Fatalf("DeleteLaunchTemplate: %v", err)
	}
	if _, err := v.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"nodewright/default/abc"}}); errorCode(err) != "InvalidLaunchTemplateName.NotFoundException" {
		t.Errorf("describing a deleted template: %v", err)
	}
	if _, err := v.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)}); errorCode(err) != "InvalidLaunchTemplateId.NotFound" {
		t.Errorf("deleting a deleted template: %v", err)
	}
}

// cheapest returns the pools sorted by price for the capacity type, cheapest first.
func cheapest(ct string, pools ...[2]string) [][2]string {
	price := func(p [2]string) float64 {
		if ct == CapacityTypeSpot {
			sp, ok := ModelSpotPrice(p[0], p[1])
			if !ok {
				return math.Inf(1)
			}
			return sp
		}
		it, _ := catalog.Get(p[0])
		return it.OnDemandPriceUSD
	}
	out := slices.Clone(pools)
	slices.SortStableFunc(out, func(a, b [2]string) int {
		switch pa, pb := price(a), price(b); {
		case pa < pb:
			return -1
		case pa > pb:
			return 1
		}
		return 0
	})
	return out
}

func TestCreateFleetLaunchesCheapestPool(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	pools := [][2]string{{"m5.large", "us-east-1a"}, {"m5.large", "us-east-1b"}, {"c5.large", "us-east-1a"}, {"t3a.2xlarge", "us-east-1f"}, {"m6i.large", "us-east-1c"}}
	for _, ct := range []string{CapacityTypeSpot, CapacityTypeOnDemand} {
		t.Run(ct, func(t *testing.T) {
			out, err := v.ec2.CreateFleet(ctx, fleetInput("test-lt", ct, "", pools...))
			if err != nil {
				t.Fatalf("CreateFleet: %v", err)
			}
			want := cheapest(ct, pools...)[0]
			if len(out.Instances) != 1 || len(out.Errors) != 0 {
				t.Fatalf("instances %+v, errors %+v", out.Instances, out.Errors)
			}
			got := out.Instances[0]
			if string(got.InstanceType) != want[0] || aws.ToString(got.AvailabilityZone) != want[1] || string(got.Lifecycle) != ct || len(got.InstanceIds) != 1 {
				t.Errorf("launched %s in %s (%s, %v), want %s in %s", got.InstanceType, aws.ToString(got.AvailabilityZone), got.Lifecycle, got.InstanceIds, want[0], want[1])
			}
			if !strings.HasPrefix(aws.ToString(out.FleetId), "fleet-") {
				t.Errorf("fleet ID %q", aws.ToString(out.FleetId))
			}
		})
	}
}

func TestCreateFleetInsufficientCapacityFallsBack(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	pools := [][2]string{{"m5.large", "us-east-1a"}, {"m5.large", "us-east-1b"}, {"c5.large", "us-east-1c"}}
	ranked := cheapest(CapacityTypeSpot, pools...)
	v.e.InsufficientCapacity(ranked[0][0], ranked[0][1], CapacityTypeSpot)

	out, err := v.ec2.CreateFleet(ctx, fleetInput("test-lt", CapacityTypeSpot, "", pools...))
	if err != nil {
		t.Fatalf("CreateFleet: %v", err)
	}
	if len(out.Errors) != 1 {
		t.Fatalf("errors %+v, want one", out.Errors)
	}
	fe := out.Errors[0]
	if aws.ToString(fe.ErrorCode) != "InsufficientInstanceCapacity" || string(fe.LaunchTemplateAndOverrides.Overrides.InstanceType) != ranked[0][0] ||
		aws.ToString(fe.LaunchTemplateAndOverrides.Overrides.AvailabilityZone) != ranked[0][1] || fe.Lifecycle != ec2types.InstanceLifecycleSpot {
		t.Errorf("error entry %s %s %s %s", aws.ToString(fe.ErrorCode), fe.LaunchTemplateAndOverrides.Overrides.InstanceType,
			aws.ToString(fe.LaunchTemplateAndOverrides.Overrides.AvailabilityZone), fe.Lifecycle)
	}
	if len(out.Instances) != 1 || string(out.Instances[0].InstanceType) != ranked[1][0] || aws.ToString(out.Instances[0].AvailabilityZone) != ranked[1][1] {
		t.Errorf("instances %+v, want one on %v", out.Instances, ranked[1])
	}

	// On-demand is another pool: it still launches.
	out, err = v.ec2.CreateFleet(ctx, fleetInput("test-lt", CapacityTypeOnDemand, "", ranked[0]))
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("on-demand in the same type and zone: %+v, %v", out, err)
	}
	// Every pool short: the fleet answers no instance and one error per pool.
	v.e.InsufficientCapacity("", "", "")
	out, err = v.ec2.CreateFleet(ctx, fleetInput("test-lt", CapacityTypeSpot, "", pools...))
	if err != nil || len(out.Instances) != 0 || len(out.Errors) != 3 {
		t.Fatalf("all short: instances %+v, errors %d, err %v", out.Instances, len(out.Errors), err)
	}
}

func TestCreateFleetClientTokenIsIdempotent(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	in := fleetInput("test-lt", CapacityTypeSpot, "nodeclaim-uid-1", [2]string{"m5.large", "us-east-1a"})
	first, err := v.ec2.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.ec2.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.FleetId) != aws.ToString(second.FleetId) || !slices.Equal(launchedIDs(first), launchedIDs(second)) {
		t.Errorf("second answer %s %v, want %s %v", aws.ToString(second.FleetId), launchedIDs(second), aws.ToString(first.FleetId), launchedIDs(first))
	}
	if n := len(v.e.Instances()); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
	other := fleetInput("test-lt", CapacityTypeSpot, "nodeclaim-uid-1", [2]string{"c5.large", "us-east-1a"})
	if _, err := v.ec2.CreateFleet(ctx, other); errorCode(err) != "IdempotentParameterMismatch" {
		t.Errorf("same token, other parameters: %v", err)
	}
}

func TestCreateFleetValidation(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	var sixtyOne [][2]string
	for _, it := range catalog.All()[:61] {
		sixtyOne = append(sixtyOne, [2]string{it.Name, "us-east-1a"})
	}
	tests := []struct {
		name     string
		edit     func(*ec2.CreateFleetInput)
		wantCode string
	}{
		{"61 overrides", func(in *ec2.CreateFleetInput) {
			in.LaunchTemplateConfigs = fleetInput("test-lt", "spot", "", sixtyOne...).LaunchTemplateConfigs
		}, "InvalidParameterValue"},
		{"no version", func(in *ec2.CreateFleetInput) { in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.Version = nil }, "MissingParameter"},
		{"maintain fleet", func(in *ec2.CreateFleetInput) { in.Type = ec2types.FleetTypeMaintain }, "Unsupported"},
		{"unknown launch template", func(in *ec2.CreateFleetInput) {
			in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateName = aws.String("nope")
		}, "InvalidLaunchTemplateName.NotFoundException"},
		{"version 2", func(in *ec2.CreateFleetInput) {
			in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.Version = aws.String("2")
		}, "InvalidLaunchTemplateId.VersionNotFound"},
		{"unknown subnet", func(in *ec2.CreateFleetInput) {
			in.LaunchTemplateConfigs[0].Overrides[0].SubnetId = aws.String("subnet-00000000000000000")
			in.LaunchTemplateConfigs[0].Overrides[0].AvailabilityZone = nil
		}, "InvalidSubnetID.NotFound"},
		{"unknown instance type", func(in *ec2.CreateFleetInput) { in.LaunchTemplateConfigs[0].Overrides[0].InstanceType = "m5.huge" }, "InvalidParameterValue"},
		{"spot strategy", func(in *ec2.CreateFleetInput) { in.SpotOptions.AllocationStrategy = "cheapest" }, "InvalidParameterValue"},
		{"on-demand strategy", func(in *ec2.CreateFleetInput) { in.OnDemandOptions.AllocationStrategy = "capacity-optimized" }, "InvalidParameterValue"},
		{"capacity type", func(in *ec2.CreateFleetInput) { in.TargetCapacitySpecification.DefaultTargetCapacityType = "reserved" }, "InvalidParameterValue"},
		{"capacity split", func(in *ec2.CreateFleetInput) { in.TargetCapacitySpecification.SpotTargetCapacity = aws.Int32(2) }, "InvalidParameterValue"},
		{"tag resource type", func(in *ec2.CreateFleetInput) { in.TagSpecifications[0].ResourceType = ec2types.ResourceTypeVpc }, "InvalidParameterValue"},
		{"instance requirements", func(in *ec2.CreateFleetInput) {
			in.LaunchTemplateConfigs[0].Overrides[0].InstanceRequirements = &ec2types.InstanceRequirementsRequest{
				VCpuCount: &ec2types.VCpuCountRangeRequest{Min: aws.Int32(2)}, MemoryMiB: &ec2types.MemoryMiBRequest{Min: aws.Int32(4096)},
			}
		}, "Unsupported"},
		{"dry run", func(in *ec2.CreateFleetInput) { in.DryRun = aws.Bool(true) }, "DryRunOperation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := fleetInput("test-lt", CapacityTypeSpot, "", [2]string{"m5.large", "us-east-1a"})
			tc.edit(in)
			if _, err := v.ec2.CreateFleet(ctx, in); errorCode(err) != tc.wantCode {
				t.Errorf("CreateFleet: %v, want code %s", err, tc.wantCode)
			}
		})
	}
	if n := len(v.e.Instances()); n != 0 {
		t.Errorf("invalid requests launched %d instances", n)
	}
	sixty := fleetInput("test-lt", CapacityTypeSpot, "", sixtyOne[:60]...)
	if _, err := v.ec2.CreateFleet(ctx, sixty); err != nil {
		t.Errorf("60 overrides: %v", err)
	}
}

func TestCreateFleetPoolErrors(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	tests := []struct {
		name     string
		pool     [2]string
		ct       string
		wantCode string
	}{
		{"not offered in zone f", [2]string{"p5.48xlarge", "us-east-1f"}, CapacityTypeSpot, "Unsupported"},
		{"arm64 type on an x86_64 AMI", [2]string{"m6g.large", "us-east-1a"}, CapacityTypeOnDemand, "InvalidParameterValue"},
		{"mac without dedicated host", [2]string{"mac1.metal", "us-east-1a"}, CapacityTypeOnDemand, "Unsupported"},
		{"high memory as spot", [2]string{"u7i-12tb.224xlarge", "us-east-1a"}, CapacityTypeSpot, "Unsupported"},
		{"hpc as spot", [2]string{"hpc7g.16xlarge", "us-east-1a"}, CapacityTypeSpot, "Unsupported"},
		{"mac as spot", [2]string{"mac-m4.metal", "us-east-1a"}, CapacityTypeSpot, "Unsupported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := v.ec2.CreateFleet(ctx, fleetInput("test-lt", tc.ct, "", tc.pool))
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Instances) != 0 || len(out.Errors) != 1 || aws.ToString(out.Errors[0].ErrorCode) != tc.wantCode {
				t.Errorf("instances %+v, errors %+v; want one %s error", out.Instances, out.Errors, tc.wantCode)
			}
		})
	}
}

func TestAllocationStrategies(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	pools := [][2]string{{"m5.large", "us-east-1a"}, {"m5a.large", "us-east-1b"}, {"c5.large", "us-east-1c"}, {"m6i.large", "us-east-1a"}, {"r5.large", "us-east-1a"}}
	deepest := slices.MaxFunc(pools, func(a, b [2]string) int {
		return cmpFloat(capacityScore(a[0], a[1]), capacityScore(b[0], b[1]))
	})
	cheapestSpot, _ := ModelSpotPrice(cheapest(CapacityTypeSpot, pools...)[0][0], cheapest(CapacityTypeSpot, pools...)[0][1])
	var affordable [][2]string
	for _, p := range pools {
		if sp, _ := ModelSpotPrice(p[0], p[1]); sp <= cheapestSpot*1.2 {
			affordable = append(affordable, p)
		}
	}
	pco := slices.MaxFunc(affordable, func(a, b [2]string) int { return cmpFloat(capacityScore(a[0], a[1]), capacityScore(b[0], b[1])) })
	tests := []struct {
		ct, strategy string
		priorities   bool
		want         [2]string
	}{
		{CapacityTypeSpot, "lowest-price", false, cheapest(CapacityTypeSpot, pools...)[0]},
		{CapacityTypeSpot, "capacity-optimized", false, deepest},
		{CapacityTypeSpot, "price-capacity-optimized", false, pco},
		// Priorities count down from the last pool: the last has the highest priority.
		{CapacityTypeSpot, "capacity-optimized-prioritized", true, pools[len(pools)-1]},
		{CapacityTypeOnDemand, "lowest-price", false, cheapest(CapacityTypeOnDemand, pools...)[0]},
		{CapacityTypeOnDemand, "prioritized", true, pools[len(pools)-1]},
	}
	for _, tc := range tests {
		t.Run(tc.ct+"/"+tc.strategy, func(t *testing.T) {
			in := fleetInput("test-lt", tc.ct, "", pools...)
			if tc.ct == CapacityTypeSpot {
				in.SpotOptions.AllocationStrategy = ec2types.SpotAllocationStrategy(tc.strategy)
			} else {
				in.OnDemandOptions.AllocationStrategy = ec2types.FleetOnDemandAllocationStrategy(tc.strategy)
			}
			if tc.priorities {
				for i := range in.LaunchTemplateConfigs[0].Overrides {
					in.LaunchTemplateConfigs[0].Overrides[i].Priority = aws.Float64(float64(len(pools) - i))
				}
			}
			out, err := v.ec2.CreateFleet(ctx, in)
			if err != nil || len(out.Instances) != 1 {
				t.Fatalf("CreateFleet: %+v, %v", out, err)
			}
			got := [2]string{string(out.Instances[0].InstanceType), aws.ToString(out.Instances[0].AvailabilityZone)}
			if got != tc.want {
				t.Errorf("launched %v, want %v", got, tc.want)
			}
		})
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var dnsNamePattern = regexp.MustCompile(`^ip-10-0-\d+-\d+\.ec2\.internal$`)

func TestInstancesLifecycle(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	in := fleetInput("test-lt", CapacityTypeSpot, "", [2]string{"m5.large", "us-east-1a"}, [2]string{"c5.large", "us-east-1b"})
	in.TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(7)
	out, err := v.ec2.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	ids := launchedIDs(out)
	if len(ids) != 7 {
		t.Fatalf("launched %d instances, want 7", len(ids))
	}

	describe := func(in *ec2.DescribeInstancesInput) map[string]ec2types.Instance {
		t.Helper()
		got := map[string]ec2types.Instance{}
		p := ec2.NewDescribeInstancesPaginator(v.ec2, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("DescribeInstances: %v", err)
			}
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					got[aws.ToString(i.InstanceId)] = i
				}
			}
		}
		return got
	}
	byTag := describe(&ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), Filters: []ec2types.Filter{
		{Name: aws.String("tag:nodewright.dev/cluster"), Values: []string{"test"}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending"}},
	}})
	if len(byTag) != 7 {
		t.Fatalf("DescribeInstances by tag and state found %d, want 7", len(byTag))
	}
	for id, i := range byTag {
		if !dnsNamePattern.MatchString(aws.ToString(i.PrivateDnsName)) || i.InstanceLifecycle != ec2types.InstanceLifecycleTypeSpot ||
			i.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired || aws.ToString(i.VpcId) != VPCID(DefaultClusterName) {
			t.Errorf("%s: dns %q lifecycle %q tokens %q vpc %q", id, aws.ToString(i.PrivateDnsName), i.InstanceLifecycle, i.MetadataOptions.HttpTokens, aws.ToString(i.VpcId))
		}
		tags := map[string]string{}
		for _, tag := range i.Tags {
			tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if tags["nodewright.dev/cluster"] != "test" || tags["aws:ec2:fleet-id"] != aws.ToString(out.FleetId) {
			t.Errorf("%s: tags %v", id, tags)
		}
	}
	if _, err := v.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1], MaxResults: aws.Int32(5)}); errorCode(err) != "InvalidParameterCombination" {
		t.Errorf("InstanceIds with MaxResults: %v", err)
	}

	v.clock.Step(time.Second)
	if got := describe(&ec2.DescribeInstancesInput{InstanceIds: ids}); len(got) != 7 || got[ids[0]].State.Name != ec2types.InstanceStateNameRunning {
		t.Errorf("after the launch latency: %d instances, %s", len(got), got[ids[0]].State.Name)
	}
	free := func() int32 {
		subnets, err := v.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1a", "us-east-1b"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt32(subnets.Subnets[0].AvailableIpAddressCount) + aws.ToInt32(subnets.Subnets[1].AvailableIpAddressCount)
	}
	if got := free(); got != 2*4091-7 {
		t.Errorf("free addresses %d, want %d", got, 2*4091-7)
	}

	term, err := v.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:2]})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, c := range term.TerminatingInstances {
		states = append(states, string(c.PreviousState.Name)+"->"+string(c.CurrentState.Name))
	}
	if diff := cmp.Diff([]string{"running->shutting-down", "running->shutting-down"}, states); diff != "" {
		t.Errorf("TerminateInstances (-want, +got):\n%s", diff)
	}
	v.clock.Step(time.Second)
	got := describe(&ec2.DescribeInstancesInput{InstanceIds: ids[:2]})
	if got[ids[0]].State.Name != ec2types.InstanceStateNameTerminated || got[ids[0]].StateReason == nil {
		t.Errorf("after the terminate latency: %s", got[ids[0]].State.Name)
	}
	if got := free(); got != 2*4091-5 {
		t.Errorf("free addresses %d, want %d", got, 2*4091-5)
	}
	// Terminating again is fine; after an hour EC2 forgets the instance.
	if _, err := v.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:1]}); err != nil {
		t.Errorf("terminating a terminated instance: %v", err)
	}
	v.clock.Step(61 * time.Minute)
	if _, err := v.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1]}); errorCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("describing a forgotten instance: %v", err)
	}
	if _, err := v.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"instance-1"}}); errorCode(err) != "InvalidInstanceID.Malformed" {
		t.Errorf("malformed ID: %v", err)
	}
	if _, err := v.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ids[2]}, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("n")}}}); err != nil {
		t.Fatal(err)
	}
	if inst, _ := v.e.Instance(ids[2]); inst.Tags["Name"] != "n" {
		t.Errorf("tags after CreateTags: %v", inst.Tags)
	}
	if _, err := v.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-00000000000000000"}, Tags: []ec2types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}); errorCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("tagging an unknown instance: %v", err)
	}
}
