package emulator

import (
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

func TestDescribeInstanceTypesPaginatesEveryCatalogType(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	pages := 0
	got := map[string]ec2types.InstanceTypeInfo{}
	p := ec2.NewDescribeInstanceTypesPaginator(v.ec2, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("DescribeInstanceTypes page %d: %v", pages+1, err)
		}
		pages++
		for _, it := range out.InstanceTypes {
			got[string(it.InstanceType)] = it
		}
	}
	// 1108 types, 100 per page: 12 pages.
	if pages != 12 || len(got) != 1108 {
		t.Errorf("got %d types in %d pages, want 1108 in 12", len(got), pages)
	}
	for _, it := range catalog.All() {
		info, ok := got[it.Name]
		if !ok {
			t.Errorf("%s missing", it.Name)
			continue
		}
		if aws.ToInt32(info.VCpuInfo.DefaultVCpus) != int32(it.VCPU) || aws.ToInt64(info.MemoryInfo.SizeInMiB) != it.MemoryMiB ||
			string(info.ProcessorInfo.SupportedArchitectures[0]) != ec2Architecture(it.Architecture) {
			t.Errorf("%s: vcpu %d, memory %d, arch %v; catalog %d, %d, %s", it.Name, aws.ToInt32(info.VCpuInfo.DefaultVCpus),
				aws.ToInt64(info.MemoryInfo.SizeInMiB), info.ProcessorInfo.SupportedArchitectures, it.VCPU, it.MemoryMiB, it.Architecture)
		}
		// Bare metal has no hypervisor; local NVMe storage is the catalog's.
		var nvme int64
		if s := info.InstanceStorageInfo; s != nil && s.NvmeSupport != ec2types.EphemeralNvmeSupportUnsupported {
			nvme = aws.ToInt64(s.TotalSizeInGB)
		}
		if string(info.Hypervisor) != it.Hypervisor || aws.ToBool(info.BareMetal) != it.BareMetal || nvme != int64(it.LocalNVMeGiB) {
			t.Errorf("%s: hypervisor %q, bare metal %v, local NVMe %d GiB; catalog %q, %v, %d", it.Name, info.Hypervisor,
				aws.ToBool(info.BareMetal), nvme, it.Hypervisor, it.BareMetal, it.LocalNVMeGiB)
		}
		// The default card's interfaces reproduce the catalog's max pods.
		card := info.NetworkInfo.NetworkCards[aws.ToInt32(info.NetworkInfo.DefaultNetworkCardIndex)]
		if pods := int(aws.ToInt32(card.MaximumNetworkInterfaces))*(int(aws.ToInt32(info.NetworkInfo.Ipv4AddressesPerInterface))-1) + 2; pods != it.MaxPods {
			t.Errorf("%s: ENI max pods %d, catalog %d", it.Name, pods, it.MaxPods)
		}
	}
}

func TestDescribeInstanceTypes(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	tests := []struct {
		name     string
		in       *ec2.DescribeInstanceTypesInput
		want     []string
		wantCode string
	}{
		{
			name: "by name",
			in:   &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{"t3a.2xlarge", "m5.large"}},
			want: []string{"m5.large", "t3a.2xlarge"},
		},
		{
			name: "instance-type filter with wildcard and arch",
			in: &ec2.DescribeInstanceTypesInput{Filters: []ec2types.Filter{
				{Name: aws.String("instance-type"), Values: []string{"t4g.*", "t3a.n*"}},
				{Name: aws.String("processor-info.supported-architecture"), Values: []string{"arm64"}},
			}},
			want: []string{"t4g.2xlarge", "t4g.large", "t4g.medium", "t4g.micro", "t4g.nano", "t4g.small", "t4g.xlarge"},
		},
		{
			name:     "unknown type",
			in:       &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{"m5.huge"}},
			wantCode: "InvalidInstanceType",
		},
		{
			name:     "unknown filter",
			in:       &ec2.DescribeInstanceTypesInput{Filters: []ec2types.Filter{{Name: aws.String("color"), Values: []string{"red"}}}},
			wantCode: "InvalidParameterValue",
		},
		{
			name:     "MaxResults below 5",
			in:       &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(4)},
			wantCode: "InvalidParameterValue",
		},
		{
			name:     "bad NextToken",
			in:       &ec2.DescribeInstanceTypesInput{NextToken: aws.String("bogus")},
			wantCode: "InvalidPaginationToken",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := v.ec2.DescribeInstanceTypes(ctx, tc.in)
			if code := errorCode(err); code != tc.wantCode || (err != nil && tc.wantCode == "") {
				t.Fatalf("error %v, want code %q", err, tc.wantCode)
			}
			if err != nil {
				return
			}
			var got []string
			for _, it := range out.InstanceTypes {
				got = append(got, string(it.InstanceType))
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("instance types (-want, +got):\n%s", diff)
			}
		})
	}

	out, err := v.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{"g4dn.xlarge"}})
	if err != nil {
		t.Fatal(err)
	}
	gpu := out.InstanceTypes[0].GpuInfo.Gpus[0]
	if got := []string{aws.ToString(gpu.Name), aws.ToString(gpu.Manufacturer)}; !slices.Equal(got, []string{"T4", "NVIDIA"}) || aws.ToInt32(gpu.Count) != 1 {
		t.Errorf("g4dn.xlarge GPU = %v x%d, want T4 NVIDIA x1", got, aws.ToInt32(gpu.Count))
	}
}

func TestDescribeInstanceTypeOfferings(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	byZone := map[string][]string{}
	p := ec2.NewDescribeInstanceTypeOfferingsPaginator(v.ec2, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{"t3a.2xlarge", "p5.48xlarge", "m7i.large"}}},
		MaxResults:   aws.Int32(5),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.InstanceTypeOfferings {
			if o.LocationType != ec2types.LocationTypeAvailabilityZone {
				t.Errorf("location type %q", o.LocationType)
			}
			byZone[string(o.InstanceType)] = append(byZone[string(o.InstanceType)], aws.ToString(o.Location))
		}
	}
	want := map[string][]string{
		"t3a.2xlarge": offeredZones("t3a.2xlarge"),
		"p5.48xlarge": offeredZones("p5.48xlarge"),
		"m7i.large":   offeredZones("m7i.large"),
	}
	if diff := cmp.Diff(want, byZone); diff != "" {
		t.Errorf("offerings (-want, +got):\n%s", diff)
	}
	// The documented rule: t3a.2xlarge everywhere, GPU and generation 7 types not in f.
	if !slices.Contains(byZone["t3a.2xlarge"], "us-east-1f") || slices.Contains(byZone["p5.48xlarge"], "us-east-1f") || slices.Contains(byZone["m7i.large"], "us-east-1f") {
		t.Errorf("zone f rule broken: %v", byZone)
	}

	out, err := v.ec2.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
		Filters:      []ec2types.Filter{{Name: aws.String("location"), Values: []string{"us-east-1f"}}},
		LocationType: ec2types.LocationTypeAvailabilityZone,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.InstanceTypeOfferings); n == 0 || n >= 1108 || out.NextToken != nil {
		t.Errorf("us-east-1f offers %d types (next token %v), want some but not all in one page", n, out.NextToken)
	}
}

func TestDescribeAvailabilityZones(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	out, err := v.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, z := range out.AvailabilityZones {
		got = append(got, aws.ToString(z.ZoneName)+"/"+aws.ToString(z.ZoneId)+"/"+string(z.State))
	}
	want := []string{"us-east-1a/use1-az1/available", "us-east-1b/use1-az2/available", "us-east-1c/use1-az3/available",
		"us-east-1d/use1-az4/available", "us-east-1e/use1-az5/available", "us-east-1f/use1-az6/available"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("zones (-want, +got):\n%s", diff)
	}
	if _, err := v.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1z"}}); errorCode(err) != "InvalidParameterValue" {
		t.Errorf("unknown zone: %v, want InvalidParameterValue", err)
	}
}

func TestDescribeSpotPriceHistory(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	in := &ec2.DescribeSpotPriceHistoryInput{
		ProductDescriptions: []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"},
		StartTime:           aws.Time(testStart),
		Filters:             []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{"m5.*", "t3a.2xlarge"}}},
		MaxResults:          aws.Int32(10),
	}
	count := 0
	p := ec2.NewDescribeSpotPriceHistoryPaginator(v.ec2, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, sp := range out.SpotPriceHistory {
			count++
			it, _ := catalog.Get(string(sp.InstanceType))
			price := parseFloat(t, aws.ToString(sp.SpotPrice))
			if low, high := spotBounds(it); price < low || price > high {
				t.Errorf("%s in %s: spot %v outside its band [%v, %v]", it.Name, aws.ToString(sp.AvailabilityZone), price, low, high)
			}
			if want, _ := ModelSpotPrice(it.Name, aws.ToString(sp.AvailabilityZone)); want != price {
				t.Errorf("%s: price %v, model %v", it.Name, price, want)
			}
			if !strings.HasPrefix(string(it.Name), "m5.") && it.Name != "t3a.2xlarge" || sp.ProductDescription != "Linux/UNIX" {
				t.Errorf("unexpected row %s %s", it.Name, sp.ProductDescription)
			}
			if !aws.ToTime(sp.Timestamp).Equal(testStart.Truncate(time.Hour)) {
				t.Errorf("timestamp %v", aws.ToTime(sp.Timestamp))
			}
		}
	}
	want := 0
	for _, it := range catalog.All() {
		if strings.HasPrefix(it.Name, "m5.") || it.Name == "t3a.2xlarge" {
			want += len(offeredZones(it.Name))
		}
	}
	if count != want {
		t.Errorf("got %d rows, want %d", count, want)
	}
}

func TestDescribeSubnetsAndSecurityGroups(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{ClusterName: "demo"})
	subnets := DefaultSubnets("demo")
	tests := []struct {
		name    string
		filters []ec2types.Filter
		ids     []string
		want    []string
	}{
		{name: "tag:KEY", filters: []ec2types.Filter{{Name: aws.String("tag:" + DiscoveryTagKey), Values: []string{"demo"}}},
			want: []string{subnets[0].ID, subnets[1].ID, subnets[2].ID, subnets[3].ID, subnets[4].ID, subnets[5].ID}},
		{name: "tag:KEY other value", filters: []ec2types.Filter{{Name: aws.String("tag:" + DiscoveryTagKey), Values: []string{"other"}}}},
		{name: "tag-key and zone", filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{"Name"}},
			{Name: aws.String("availability-zone"), Values: []string{"us-east-1b", "us-east-1f"}}}, want: []string{subnets[1].ID, subnets[5].ID}},
		{name: "subnet-id", filters: []ec2types.Filter{{Name: aws.String("subnet-id"), Values: []string{subnets[3].ID}}}, want: []string{subnets[3].ID}},
		{name: "ids", ids: []string{subnets[2].ID}, want: []string{subnets[2].ID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			p := ec2.NewDescribeSubnetsPaginator(v.ec2, &ec2.DescribeSubnetsInput{Filters: tc.filters, SubnetIds: tc.ids})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range out.Subnets {
					got = append(got, aws.ToString(s.SubnetId))
					if aws.ToInt32(s.AvailableIpAddressCount) != 4091 {
						t.Errorf("%s: %d free addresses, want 4091", aws.ToString(s.SubnetId), aws.ToInt32(s.AvailableIpAddressCount))
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("subnets (-want, +got):\n%s", diff)
			}
		})
	}
	// Paginated: 6 subnets, 5 per page.
	out, err := v.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(5)})
	if err != nil || len(out.Subnets) != 5 || out.NextToken == nil {
		t.Fatalf("first page: %d subnets, token %v, err %v", len(out.Subnets), out.NextToken, err)
	}
	out, err = v.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(5), NextToken: out.NextToken})
	if err != nil || len(out.Subnets) != 1 || out.NextToken != nil {
		t.Fatalf("second page: %d subnets, token %v, err %v", len(out.Subnets), out.NextToken, err)
	}
	if _, err := v.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-00000000000000000"}}); errorCode(err) != "InvalidSubnetID.NotFound" {
		t.Errorf("unknown subnet: %v", err)
	}
	if _, err := v.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"sn-1"}}); errorCode(err) != "InvalidSubnetID.Malformed" {
		t.Errorf("malformed subnet: %v", err)
	}

	groups := DefaultSecurityGroups("demo")
	for _, tc := range []struct {
		name string
		in   *ec2.DescribeSecurityGroupsInput
		want []string
	}{
		{"tag", &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:" + DiscoveryTagKey), Values: []string{"demo"}}}}, []string{groups[1].ID}},
		{"group-name", &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{"default"}}}}, []string{groups[0].ID}},
		{"group-id", &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{groups[1].ID}}}}, []string{groups[1].ID}},
		{"ids", &ec2.DescribeSecurityGroupsInput{GroupIds: []string{groups[0].ID, groups[1].ID}}, []string{groups[0].ID, groups[1].ID}},
	} {
		out, err := v.ec2.DescribeSecurityGroups(ctx, tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, g := range out.SecurityGroups {
			got = append(got, aws.ToString(g.GroupId))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: groups (-want, +got):\n%s", tc.name, diff)
		}
	}
	if _, err := v.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-00000000000000000"}}); errorCode(err) != "InvalidGroup.NotFound" {
		t.Errorf("unknown group: %v", err)
	}
}

func TestDescribeImages(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	custom := Image{ID: "ami-0123456789abcdef0", Name: "my-ami", Architecture: "arm64", Tags: map[string]string{"team": "a"}}
	v := newEnv(t, Options{Images: []Image{custom}})
	al2023 := v.e.state.ssm["/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/arm64/standard/recommended/image_id"]
	tests := []struct {
		name     string
		in       *ec2.DescribeImagesInput
		want     []string
		wantCode string
	}{
		{name: "by id", in: &ec2.DescribeImagesInput{ImageIds: []string{al2023}}, want: []string{al2023 + " amazon-eks-node-al2023-arm64-standard-1.37-v20260801 arm64"}},
		{name: "name filter", in: &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []ec2types.Filter{
			{Name: aws.String("name"), Values: []string{"amazon-eks-node-al2023-*-standard-1.37-*"}},
			{Name: aws.String("architecture"), Values: []string{"x86_64"}},
		}}, want: []string{v.e.state.ssm["/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/x86_64/standard/recommended/image_id"] + " amazon-eks-node-al2023-x86_64-standard-1.37-v20260801 x86_64"}},
		{name: "tag", in: &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:team"), Values: []string{"a"}}}}, want: []string{custom.ID + " my-ami arm64"}},
		{name: "owner self", in: &ec2.DescribeImagesInput{Owners: []string{"self"}}, want: []string{custom.ID + " my-ami arm64"}},
		{name: "not found", in: &ec2.DescribeImagesInput{ImageIds: []string{"ami-00000000000000000"}}, wantCode: "InvalidAMIID.NotFound"},
		{name: "malformed", in: &ec2.DescribeImagesInput{ImageIds: []string{"image-1"}}, wantCode: "InvalidAMIID.Malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := v.ec2.DescribeImages(ctx, tc.in)
			if code := errorCode(err); code != tc.wantCode || (err != nil && tc.wantCode == "") {
				t.Fatalf("error %v, want code %q", err, tc.wantCode)
			}
			if err != nil {
				return
			}
			var got []string
			for _, img := range out.Images {
				got = append(got, aws.ToString(img.ImageId)+" "+aws.ToString(img.Name)+" "+string(img.Architecture))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("images (-want, +got):\n%s", diff)
			}
		})
	}
}
