package aws

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/catalog"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// typeInfo is what the provider keeps of an EC2 instance type: the facts DescribeInstanceTypes
// gives and the zones DescribeInstanceTypeOfferings says offer it.
type typeInfo struct {
	name       string
	arch       string // Kubernetes' name: amd64 or arm64
	vcpu       int64
	memoryMiB  int64
	gpuCount   int64
	gpuName    string // lower case, e.g. "t4"
	gpuMaker   string // lower case, e.g. "nvidia"
	enis       int    // network interfaces of the default network card
	ipv4PerENI int
	spot       bool   // supports the spot usage class
	hypervisor string // "nitro", "xen", "" for bare metal
	nvmeGiB    int64  // local NVMe storage, 0 for none
	bandwidth  int    // baseline network bandwidth in Mbit/s, 0 if not known
	burstable  bool   // earns and spends CPU credits (t2, t3, t3a, t4g)
	zones      map[string]bool
}

// familyScheme splits an instance type's name as Karpenter does for its labels
// karpenter.k8s.aws/instance-category and -generation: the category's letters, the memory of
// the u- types ("-6tb"), the generation's digits. A name it does not match (mac-m4.metal)
// gets neither label.
var familyScheme = regexp.MustCompile(`^([a-z]+)(-[0-9]+tb)?([0-9]+).*\.`)

// instanceTypeCache holds the region's instance types for a TTL.
type instanceTypeCache struct {
	ec2   EC2API
	clock clock.PassiveClock
	ttl   time.Duration

	mu      sync.Mutex
	types   []typeInfo
	fetched time.Time
}

func newInstanceTypeCache(api EC2API, c clock.PassiveClock, ttl time.Duration) *instanceTypeCache {
	return &instanceTypeCache{ec2: api, clock: c, ttl: ttl}
}

// get returns the cached instance types, describing them again once the TTL has passed.
func (c *instanceTypeCache) get(ctx context.Context) ([]typeInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.types != nil && c.clock.Since(c.fetched) < c.ttl {
		return c.types, nil
	}
	types, err := describeInstanceTypes(ctx, c.ec2)
	if err != nil {
		return nil, err
	}
	if len(types) != len(c.types) {
		klog.FromContext(ctx).V(2).Info("Discovered instance types", "count", len(types))
	}
	c.types, c.fetched = types, c.clock.Now()
	return types, nil
}

// describeInstanceTypes pages through DescribeInstanceTypes and DescribeInstanceTypeOfferings
// (by availability zone) and returns the types offered in at least one zone, sorted by name.
func describeInstanceTypes(ctx context.Context, api EC2API) ([]typeInfo, error) {
	zones := map[string]map[string]bool{}
	offerings := ec2.NewDescribeInstanceTypeOfferingsPaginator(api, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
	})
	for offerings.HasMorePages() {
		page, err := offerings.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing instance type offerings: %w", err)
		}
		for _, o := range page.InstanceTypeOfferings {
			name := string(o.InstanceType)
			if zones[name] == nil {
				zones[name] = map[string]bool{}
			}
			zones[name][awssdk.ToString(o.Location)] = true
		}
	}
	var out []typeInfo
	pages := ec2.NewDescribeInstanceTypesPaginator(api, &ec2.DescribeInstanceTypesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing instance types: %w", err)
		}
		for _, it := range page.InstanceTypes {
			info, ok := toTypeInfo(it)
			if !ok || len(zones[info.name]) == 0 {
				continue
			}
			info.zones = zones[info.name]
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// toTypeInfo converts DescribeInstanceTypes' answer; ok is false for types nodes cannot run on
// (no 64-bit x86 or Arm architecture).
func toTypeInfo(it ec2types.InstanceTypeInfo) (typeInfo, bool) {
	info := typeInfo{name: string(it.InstanceType)}
	if it.ProcessorInfo != nil {
		archs := it.ProcessorInfo.SupportedArchitectures
		switch {
		case slices.Contains(archs, ec2types.ArchitectureTypeX8664):
			info.arch = "amd64"
		case slices.Contains(archs, ec2types.ArchitectureTypeArm64):
			info.arch = "arm64"
		}
	}
	if info.arch == "" || it.VCpuInfo == nil || it.MemoryInfo == nil {
		return info, false
	}
	info.vcpu = int64(awssdk.ToInt32(it.VCpuInfo.DefaultVCpus))
	info.memoryMiB = awssdk.ToInt64(it.MemoryInfo.SizeInMiB)
	if it.GpuInfo != nil {
		for _, g := range it.GpuInfo.Gpus {
			info.gpuCount += int64(awssdk.ToInt32(g.Count))
			if info.gpuName == "" {
				info.gpuName = strings.ToLower(awssdk.ToString(g.Name))
				info.gpuMaker = strings.ToLower(awssdk.ToString(g.Manufacturer))
			}
		}
	}
	if n := it.NetworkInfo; n != nil {
		info.enis = int(awssdk.ToInt32(n.MaximumNetworkInterfaces))
		defaultCard := awssdk.ToInt32(n.DefaultNetworkCardIndex)
		for _, card := range n.NetworkCards {
			if awssdk.ToInt32(card.NetworkCardIndex) == defaultCard {
				info.enis = int(awssdk.ToInt32(card.MaximumNetworkInterfaces))
			}
		}
		info.ipv4PerENI = int(awssdk.ToInt32(n.Ipv4AddressesPerInterface))
	}
	info.spot = slices.Contains(it.SupportedUsageClasses, ec2types.UsageClassTypeSpot)
	info.hypervisor = string(it.Hypervisor)
	info.burstable = awssdk.ToBool(it.BurstablePerformanceSupported)
	// Instance storage without NVMe (d2, h1) is not local NVMe, as Karpenter counts it.
	if s := it.InstanceStorageInfo; s != nil && s.NvmeSupport != ec2types.EphemeralNvmeSupportUnsupported {
		info.nvmeGiB = awssdk.ToInt64(s.TotalSizeInGB)
	}
	// DescribeInstanceTypes gives the older types only a level ("Moderate"). The catalog has
	// the baseline in Mbit/s where AWS documents one: Karpenter's table, which its label
	// karpenter.k8s.aws/instance-network-bandwidth is read from too.
	if c, ok := catalog.Get(info.name); ok {
		info.bandwidth = c.NetworkBandwidthMbps
	}
	return info, true
}

// labels are the well-known labels of a node of this type, whatever its offering.
func (t typeInfo) labels(region string) map[string]string {
	family, size, _ := strings.Cut(t.name, ".")
	l := map[string]string{
		corev1.LabelInstanceTypeStable: t.name,
		corev1.LabelArchStable:         t.arch,
		corev1.LabelOSStable:           string(corev1.Linux),
		corev1.LabelTopologyRegion:     region,
		v1alpha1.LabelInstanceFamily:   family,
		v1alpha1.LabelInstanceSize:     size,
		v1alpha1.LabelInstanceCPU:      strconv.FormatInt(t.vcpu, 10),
		v1alpha1.LabelInstanceMemory:   strconv.FormatInt(t.memoryMiB, 10),
		v1alpha1.LabelInstanceGPUCount: strconv.FormatInt(t.gpuCount, 10),
		v1alpha1.LabelInstanceGPUName:  t.gpuName,
	}
	if t.gpuName == "" {
		delete(l, v1alpha1.LabelInstanceGPUName)
	}
	if m := familyScheme.FindStringSubmatch(t.name); m != nil {
		l[v1alpha1.LabelInstanceCategory] = m[1]
		l[v1alpha1.LabelInstanceGeneration] = m[3]
	}
	l[v1alpha1.LabelInstanceHypervisor] = t.hypervisor
	if t.bandwidth > 0 {
		l[v1alpha1.LabelInstanceNetworkBandwidth] = strconv.Itoa(t.bandwidth)
	}
	if t.nvmeGiB > 0 {
		l[v1alpha1.LabelInstanceLocalNVMe] = strconv.FormatInt(t.nvmeGiB, 10)
	}
	return l
}

// capacity is what a node of this type reports (see overhead.go for the formula).
func (t typeInfo) capacity(kubelet *v1alpha1.KubeletConfiguration) corev1.ResourceList {
	c := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(t.vcpu, resource.DecimalSI),
		corev1.ResourceMemory: mebibytes(capacityMemoryMiB(t.memoryMiB)),
		corev1.ResourcePods:   *resource.NewQuantity(maxPods(eniMaxPods(t.enis, t.ipv4PerENI), t.vcpu, kubelet), resource.DecimalSI),
	}
	if t.gpuCount > 0 {
		name, ok := cloud.GPUResourceByMaker[t.gpuMaker]
		if !ok {
			name = gpuResourceDefaultName
		}
		c[name] = *resource.NewQuantity(t.gpuCount, resource.DecimalSI)
	}
	return c
}

// InstanceTypes implements cloud.Provider.
func (p *Provider) InstanceTypes(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass, kubelet *v1alpha1.KubeletConfiguration) ([]*cloud.InstanceType, error) {
	resolved, err := p.nodeClasses.resolve(ctx, nodeClass)
	if err != nil {
		return nil, err
	}
	return p.instanceTypes(ctx, resolved, kubelet, nil)
}

// InstanceType implements cloud.Provider.
func (p *Provider) InstanceType(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass, kubelet *v1alpha1.KubeletConfiguration, name string) (*cloud.InstanceType, error) {
	resolved, err := p.nodeClasses.resolve(ctx, nodeClass)
	if err != nil {
		return nil, err
	}
	types, err := p.instanceTypes(ctx, resolved, kubelet, sets.New(name))
	if err != nil || len(types) == 0 {
		return nil, err
	}
	return types[0], nil
}

// instanceTypes builds the instance types a resolved node class can launch: those of an
// architecture it has an AMI for, with offerings in its subnets' zones; only those named in
// only, when it is not nil (a launch builds the few types its NodeClaim allows, not the
// catalog's hundreds).
func (p *Provider) instanceTypes(ctx context.Context, resolved *resolvedNodeClass, kubelet *v1alpha1.KubeletConfiguration, only sets.Set[string]) ([]*cloud.InstanceType, error) {
	infos, err := p.typeCache.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.pricing.ensure(ctx); err != nil {
		return nil, err
	}
	var out []*cloud.InstanceType
	volumes := volumesCost(blockDeviceMappings(amiFamily(resolved.nodeClass), resolved.nodeClass.Spec.BlockDeviceMappings))
	for _, info := range infos {
		if (only != nil && !only.Has(info.name)) || resolved.ami(info) == nil {
			continue
		}
		capacity := info.capacity(kubelet)
		o, err := overhead(capacity, kubelet)
		if err != nil {
			return nil, err
		}
		it := &cloud.InstanceType{Name: info.name, Labels: info.labels(p.region), Capacity: capacity, Overhead: o, NodeCost: volumes}
		if baseline, ok := baselineCPU(info.name, info.vcpu); ok && info.burstable {
			it.BaselineCPU, it.SurplusCPUPrice = baseline, surplusCPUPrice
		}
		for _, zone := range resolved.zones() {
			if !info.zones[zone] {
				continue
			}
			for _, ct := range []string{v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand} {
				if ct == v1alpha1.CapacityTypeSpot && !info.spot {
					continue
				}
				price, ok := p.pricing.Price(info.name, zone, ct)
				if !ok {
					continue
				}
				it.Offerings = append(it.Offerings, cloud.Offering{Zone: zone, CapacityType: ct, Price: price,
					Available: !p.unavailable.IsUnavailable(info.name, zone, ct)})
			}
		}
		if len(it.Offerings) > 0 {
			out = append(out, it)
		}
	}
	return out, nil
}
