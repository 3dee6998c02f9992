package aws

import (
	"slices"
	"strings"
	"testing"
	"unicode"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/catalog"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
)

// generation returns the generation of a family as its name spells it: the digits after the
// leading letters ("c6gd": 6), -1 for none. The tests compute it this way, not with the
// provider's familyScheme, so that a wrong expression is caught.
func generation(family string) int {
	rest := strings.TrimLeftFunc(family, unicode.IsLetter)
	// u-6tb1: the memory, 6 TB, comes before the generation.
	if memory, ok := strings.CutPrefix(rest, "-"); ok {
		if _, after, found := strings.Cut(memory, "tb"); found {
			rest = after
		}
	}
	n := -1
	for _, r := range rest {
		if !unicode.IsDigit(r) {
			break
		}
		n = max(n, 0)*10 + int(r-'0')
	}
	return n
}

// storageLetter reports whether a family's attributes, the letters after its generation,
// say it has local instance storage ("d": c5d, m5ad, r6idn). The i (storage optimised) and
// d (dense storage) families, the GPU and accelerator families with disks and z1d say so
// in other ways.
func storageLetter(family string) bool {
	attrs := strings.TrimLeftFunc(strings.TrimLeftFunc(family, unicode.IsLetter), unicode.IsDigit)
	return strings.Contains(attrs, "d")
}

// TestRequirementsOnInstanceFacts checks that a requirement on each of the labels Karpenter
// users select instance types by (instance-category, -generation, -hypervisor,
// -network-bandwidth, -local-nvme) lets through exactly the instance types whose catalog
// facts say so: the types' labels, as InstanceTypes gives them to the plan, through the
// filter a launch applies to its CreateFleet overrides (allows).
func TestRequirementsOnInstanceFacts(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	types, err := env.provider.InstanceTypes(ctx, testNodeClass(), nil)
	if err != nil {
		t.Fatalf("InstanceTypes: %v", err)
	}
	const (
		in = corev1.NodeSelectorOpIn
		gt = corev1.NodeSelectorOpGt
		lt = corev1.NodeSelectorOpLt
	)
	tests := []struct {
		name string
		reqs []v1alpha1.NodeSelectorRequirement
		want func(catalog.InstanceType) bool
		// some are types the requirements let through, none some they do not.
		some, none []string
	}{
		{
			name: "category c",
			reqs: []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceCategory, in, "c")},
			want: func(it catalog.InstanceType) bool { return it.Family[0] == 'c' && unicode.IsDigit(rune(it.Family[1])) },
			some: []string{"c5.large", "c6gd.metal", "c7i-flex.large"},
			none: []string{"m5.large", "t3a.2xlarge"},
		},
		{
			name: "category c, generation above 6",
			reqs: []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceCategory, in, "c"), req(v1alpha1.LabelInstanceGeneration, gt, "6")},
			want: func(it catalog.InstanceType) bool { return it.Family[0] == 'c' && generation(it.Family) > 6 },
			some: []string{"c7g.large", "c8g.large"},
			none: []string{"c5.large", "c6i.large", "c6gd.metal", "m7g.large"},
		},
		{
			name: "generation below 4",
			reqs: []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceGeneration, lt, "4")},
			want: func(it catalog.InstanceType) bool { return generation(it.Family) >= 0 && generation(it.Family) < 4 },
			// u-6tb1: the memory size is no generation.
			some: []string{"t3a.2xlarge", "c3.large", "u-6tb1.56xlarge"},
			none: []string{"m5.large"},
		},
		{
			name: "hypervisor nitro: neither xen nor bare metal",
			reqs: []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceHypervisor, in, "nitro")},
			want: func(it catalog.InstanceType) bool { return it.Hypervisor == "nitro" },
			some: []string{"m5.large", "c6gd.large"},
			none: []string{"m4.large", "c5.metal", "c6gd.metal"},
		},
		{
			name: "hypervisor empty: bare metal",
			reqs: []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceHypervisor, in, "")},
			want: func(it catalog.InstanceType) bool { return it.BareMetal },
			some: []string{"c5.metal", "c6gd.metal"},
			none: []string{"m4.large", "m5.large"},
		},
		{
			name: "network bandwidth above 20 Gbit/s",
			reqs: []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceNetworkBandwidth, gt, "20000")},
			want: func(it catalog.InstanceType) bool { return it.NetworkBandwidthMbps > 20000 },
			some: []string{"c5n.18xlarge", "c5.metal"},
			// m4.large: no baseline known, no label, Gt fails.
			none: []string{"c5ad.16xlarge", "m5.large", "m4.large"},
		},
		{
			name: "local NVMe in c, m and r: the families with a d",
			reqs: []v1alpha1.NodeSelectorRequirement{
				req(v1alpha1.LabelInstanceCategory, in, "c", "m", "r"), req(v1alpha1.LabelInstanceLocalNVMe, gt, "0"),
			},
			want: func(it catalog.InstanceType) bool {
				return strings.ContainsRune("cmr", rune(it.Family[0])) && storageLetter(it.Family)
			},
			some: []string{"c5d.large", "m5ad.large", "r6idn.large", "c6gd.metal"},
			none: []string{"c5.large", "m5.large"},
		},
		{
			name: "local NVMe above 1.8 TiB",
			reqs: []v1alpha1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceLocalNVMe, gt, "1800")},
			want: func(it catalog.InstanceType) bool { return it.LocalNVMeGiB > 1800 },
			some: []string{"i3.4xlarge", "d3.xlarge", "c5d.24xlarge"},
			none: []string{"c5d.18xlarge", "i3.large", "m5.large"},
		},
		{
			name: "no local NVMe",
			reqs: []v1alpha1.NodeSelectorRequirement{{Key: v1alpha1.LabelInstanceLocalNVMe, Operator: corev1.NodeSelectorOpDoesNotExist}},
			want: func(it catalog.InstanceType) bool { return it.LocalNVMeGiB == 0 },
			// d2: hard disks without NVMe.
			some: []string{"m5.large", "d2.xlarge"},
			none: []string{"m5d.large", "d3.xlarge"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want, got []string
			for _, it := range types {
				if c, _ := catalog.Get(it.Name); tc.want(c) {
					want = append(want, it.Name)
				}
				if allows(tc.reqs, it.Labels) {
					got = append(got, it.Name)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("instance types allowed (-want, +got):\n%s", diff)
			}
			for _, name := range tc.some {
				if !slices.Contains(got, name) {
					t.Errorf("%s is not allowed", name)
				}
			}
			for _, name := range tc.none {
				if slices.Contains(got, name) {
					t.Errorf("%s is allowed", name)
				}
			}
		})
	}
}

// TestCreateOverridesFollowInstanceFacts launches for requirements on the new labels and
// checks that every CreateFleet override is of a type they allow.
func TestCreateOverridesFollowInstanceFacts(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	claim := testNodeClaim("claim-nvme", "1",
		req(v1alpha1.LabelInstanceCategory, corev1.NodeSelectorOpIn, "r"),
		req(v1alpha1.LabelInstanceGeneration, corev1.NodeSelectorOpGt, "6"),
		req(v1alpha1.LabelInstanceHypervisor, corev1.NodeSelectorOpIn, "nitro"),
		req(v1alpha1.LabelInstanceLocalNVMe, corev1.NodeSelectorOpGt, "0"))
	if _, err := env.provider.Create(ctx, claim, testNodeClass(), nil); err != nil {
		t.Fatalf("Create: %v", err)
	}
	fleets := env.emulator.CallsOf("CreateFleet")
	if len(fleets) != 1 {
		t.Fatalf("%d CreateFleet calls, want 1", len(fleets))
	}
	overrides := fleetOverrides(t, fleets[0])
	if len(overrides) == 0 {
		t.Fatal("CreateFleet without overrides")
	}
	for _, o := range overrides {
		name, _, _ := strings.Cut(o, "/")
		it, _ := catalog.Get(name)
		if it.Family[0] != 'r' || generation(it.Family) <= 6 || it.Hypervisor != "nitro" || it.LocalNVMeGiB == 0 {
			t.Errorf("override %s: family %s, hypervisor %q, %d GiB of local NVMe; want r, generation above 6, nitro, some NVMe",
				o, it.Family, it.Hypervisor, it.LocalNVMeGiB)
		}
	}
}

// TestInstanceFactLabels checks the new labels of types DescribeInstanceTypes describes as
// EC2 does, where the emulator has no example: instance storage without NVMe, a bare-metal
// type, the u- and mac- names.
func TestInstanceFactLabels(t *testing.T) {
	keys := []string{v1alpha1.LabelInstanceCategory, v1alpha1.LabelInstanceGeneration, v1alpha1.LabelInstanceHypervisor,
		v1alpha1.LabelInstanceNetworkBandwidth, v1alpha1.LabelInstanceLocalNVMe}
	amd64 := &ec2types.ProcessorInfo{SupportedArchitectures: []ec2types.ArchitectureType{ec2types.ArchitectureTypeX8664}}
	tests := []struct {
		info ec2types.InstanceTypeInfo
		want map[string]string
	}{
		{
			// Hard disks without NVMe: no local NVMe. Bandwidth "Up to 10 Gigabit" only.
			info: ec2types.InstanceTypeInfo{InstanceType: "d2.xlarge", Hypervisor: ec2types.InstanceTypeHypervisorXen,
				InstanceStorageInfo: &ec2types.InstanceStorageInfo{TotalSizeInGB: awssdk.Int64(6000), NvmeSupport: ec2types.EphemeralNvmeSupportUnsupported}},
			want: map[string]string{v1alpha1.LabelInstanceCategory: "d", v1alpha1.LabelInstanceGeneration: "2", v1alpha1.LabelInstanceHypervisor: "xen"},
		},
		{
			// Bare metal: the hypervisor label is empty. 4 disks of 1900 GiB.
			info: ec2types.InstanceTypeInfo{InstanceType: "c6id.metal", BareMetal: awssdk.Bool(true),
				InstanceStorageInfo: &ec2types.InstanceStorageInfo{TotalSizeInGB: awssdk.Int64(7600), NvmeSupport: ec2types.EphemeralNvmeSupportRequired}},
			want: map[string]string{v1alpha1.LabelInstanceCategory: "c", v1alpha1.LabelInstanceGeneration: "6", v1alpha1.LabelInstanceHypervisor: "",
				v1alpha1.LabelInstanceNetworkBandwidth: "50000", v1alpha1.LabelInstanceLocalNVMe: "7600"},
		},
		{
			// The memory, 6 TB, is not the generation.
			info: ec2types.InstanceTypeInfo{InstanceType: "u-6tb1.56xlarge", Hypervisor: ec2types.InstanceTypeHypervisorNitro},
			want: map[string]string{v1alpha1.LabelInstanceCategory: "u", v1alpha1.LabelInstanceGeneration: "1", v1alpha1.LabelInstanceHypervisor: "nitro",
				v1alpha1.LabelInstanceNetworkBandwidth: "100000"},
		},
		{
			// No generation number: neither category nor generation, as in Karpenter.
			info: ec2types.InstanceTypeInfo{InstanceType: "mac-m4.metal", BareMetal: awssdk.Bool(true)},
			want: map[string]string{v1alpha1.LabelInstanceHypervisor: "", v1alpha1.LabelInstanceNetworkBandwidth: "10000"},
		},
	}
	for _, tc := range tests {
		t.Run(string(tc.info.InstanceType), func(t *testing.T) {
			tc.info.ProcessorInfo = amd64
			tc.info.VCpuInfo = &ec2types.VCpuInfo{DefaultVCpus: awssdk.Int32(4)}
			tc.info.MemoryInfo = &ec2types.MemoryInfo{SizeInMiB: awssdk.Int64(8192)}
			info, ok := toTypeInfo(tc.info)
			if !ok {
				t.Fatal("toTypeInfo refused the type")
			}
			labels := info.labels("us-east-1")
			got := map[string]string{}
			for _, key := range keys {
				if value, ok := labels[key]; ok {
					got[key] = value
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("labels (-want, +got):\n%s", diff)
			}
		})
	}
}
