package emulator

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

type describeInstanceTypesResponse struct {
	responseMeta
	InstanceTypes items[instanceTypeInfoXML] `xml:"instanceTypeSet"`
	NextToken     string                     `xml:"nextToken,omitempty"`
}

type instanceTypeInfoXML struct {
	InstanceType                  string        `xml:"instanceType"`
	CurrentGeneration             bool          `xml:"currentGeneration"`
	FreeTierEligible              bool          `xml:"freeTierEligible"`
	SupportedUsageClasses         items[string] `xml:"supportedUsageClasses"`
	SupportedRootDeviceTypes      items[string] `xml:"supportedRootDeviceTypes"`
	SupportedVirtualizationTypes  items[string] `xml:"supportedVirtualizationTypes"`
	BareMetal                     bool          `xml:"bareMetal"`
	Hypervisor                    string        `xml:"hypervisor,omitempty"`
	ProcessorInfo                 processorXML  `xml:"processorInfo"`
	VCPUInfo                      vcpuXML       `xml:"vCpuInfo"`
	MemoryInfo                    memoryXML     `xml:"memoryInfo"`
	InstanceStorageSupported      bool          `xml:"instanceStorageSupported"`
	InstanceStorageInfo           *storageXML   `xml:"instanceStorageInfo,omitempty"`
	EBSInfo                       ebsInfoXML    `xml:"ebsInfo"`
	NetworkInfo                   networkXML    `xml:"networkInfo"`
	GPUInfo                       *gpuInfoXML   `xml:"gpuInfo,omitempty"`
	BurstablePerformanceSupported bool          `xml:"burstablePerformanceSupported"`
	HibernationSupported          bool          `xml:"hibernationSupported"`
	DedicatedHostsSupported       bool          `xml:"dedicatedHostsSupported"`
	AutoRecoverySupported         bool          `xml:"autoRecoverySupported"`
	SupportedBootModes            items[string] `xml:"supportedBootModes"`
}

type processorXML struct {
	SupportedArchitectures items[string] `xml:"supportedArchitectures"`
}

type vcpuXML struct {
	DefaultVCpus int `xml:"defaultVCpus"`
}

type memoryXML struct {
	SizeInMiB int64 `xml:"sizeInMiB"`
}

type storageXML struct {
	TotalSizeInGB     int            `xml:"totalSizeInGB"`
	Disks             items[diskXML] `xml:"disks"`
	NVMeSupport       string         `xml:"nvmeSupport"`
	EncryptionSupport string         `xml:"encryptionSupport"`
}

type diskXML struct {
	SizeInGB int    `xml:"sizeInGB"`
	Count    int    `xml:"count"`
	Type     string `xml:"type"`
}

type ebsInfoXML struct {
	EBSOptimizedSupport string `xml:"ebsOptimizedSupport"`
	EncryptionSupport   string `xml:"encryptionSupport"`
	NVMeSupport         string `xml:"nvmeSupport"`
}

type networkXML struct {
	NetworkPerformance        string                `xml:"networkPerformance"`
	MaximumNetworkInterfaces  int                   `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards       int                   `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex   int                   `xml:"defaultNetworkCardIndex"`
	NetworkCards              items[networkCardXML] `xml:"networkCards"`
	IPv4AddressesPerInterface int                   `xml:"ipv4AddressesPerInterface"`
	IPv6AddressesPerInterface int                   `xml:"ipv6AddressesPerInterface"`
	IPv6Supported             bool                  `xml:"ipv6Supported"`
	ENASupport                string                `xml:"enaSupport"`
	EFASupported              bool                  `xml:"efaSupported"`
}

type networkCardXML struct {
	NetworkCardIndex         int     `xml:"networkCardIndex"`
	NetworkPerformance       string  `xml:"networkPerformance"`
	MaximumNetworkInterfaces int     `xml:"maximumNetworkInterfaces"`
	BaselineBandwidthInGbps  float64 `xml:"baselineBandwidthInGbps,omitempty"`
	PeakBandwidthInGbps      float64 `xml:"peakBandwidthInGbps,omitempty"`
}

type gpuInfoXML struct {
	GPUs                items[gpuXML] `xml:"gpus"`
	TotalGPUMemoryInMiB int64         `xml:"totalGpuMemoryInMiB,omitempty"`
}

type gpuXML struct {
	Name         string `xml:"name"`
	Manufacturer string `xml:"manufacturer"`
	Count        int    `xml:"count"`
}

// gpuManufacturers spells the catalog's manufacturers as EC2 does.
var gpuManufacturers = map[string]string{"nvidia": "NVIDIA", "amd": "AMD", "habana": "Habana"}

// instanceTypeInfo renders a catalog entry as DescribeInstanceTypes does. Facts the catalog
// lacks are derived: the network cards from maxENI and maxPods (the default card has
// (maxPods-2)/(ipv4PerENI-1) interfaces, every card as many), the GPU's name as the catalog's
// model in upper case (so that lower-casing it gives the catalog's gpuType back), current
// generation as "not Xen", the local NVMe storage as one SSD of the catalog's size (the
// instance storage the catalog does not count, d2's and h1's, is left out).
func instanceTypeInfo(it catalog.InstanceType) instanceTypeInfoXML {
	perCard := (it.MaxPods - 2) / (it.IPv4PerENI - 1)
	cards := max(1, it.MaxENI/max(1, perCard))
	performance := "Moderate"
	gbps := float64(it.NetworkBandwidthMbps) / 1000
	if it.NetworkBandwidthMbps > 0 {
		performance = strconv.FormatFloat(gbps, 'f', -1, 64) + " Gigabit"
	}
	info := instanceTypeInfoXML{
		InstanceType:                 it.Name,
		CurrentGeneration:            it.Hypervisor != "xen",
		FreeTierEligible:             it.Name == "t2.micro" || it.Name == "t3.micro",
		SupportedUsageClasses:        items[string]{"on-demand"},
		SupportedRootDeviceTypes:     items[string]{"ebs"},
		SupportedVirtualizationTypes: items[string]{"hvm"},
		BareMetal:                    it.BareMetal,
		Hypervisor:                   it.Hypervisor,
		ProcessorInfo:                processorXML{SupportedArchitectures: items[string]{ec2Architecture(it.Architecture)}},
		VCPUInfo:                     vcpuXML{DefaultVCpus: it.VCPU},
		MemoryInfo:                   memoryXML{SizeInMiB: it.MemoryMiB},
		EBSInfo:                      ebsInfoXML{EBSOptimizedSupport: "default", EncryptionSupport: "supported", NVMeSupport: "unsupported"},
		NetworkInfo: networkXML{
			NetworkPerformance:        performance,
			MaximumNetworkInterfaces:  it.MaxENI,
			MaximumNetworkCards:       cards,
			IPv4AddressesPerInterface: it.IPv4PerENI,
			IPv6AddressesPerInterface: it.IPv4PerENI,
			IPv6Supported:             true,
			ENASupport:                "supported",
		},
		BurstablePerformanceSupported: it.Burstable,
		DedicatedHostsSupported:       true,
		AutoRecoverySupported:         !it.BareMetal,
		SupportedBootModes:            items[string]{"legacy-bios", "uefi"},
	}
	if it.LocalNVMeGiB > 0 {
		info.InstanceStorageSupported = true
		info.InstanceStorageInfo = &storageXML{
			TotalSizeInGB:     it.LocalNVMeGiB,
			Disks:             items[diskXML]{{SizeInGB: it.LocalNVMeGiB, Count: 1, Type: "ssd"}},
			NVMeSupport:       "required",
			EncryptionSupport: "required",
		}
	}
	if _, spot := spotBandOf(it); spot {
		info.SupportedUsageClasses = append(info.SupportedUsageClasses, "spot")
	}
	if it.Hypervisor == "nitro" || it.BareMetal {
		info.EBSInfo.NVMeSupport = "required"
		info.NetworkInfo.ENASupport = "required"
	}
	if it.Architecture == catalog.ArchitectureARM64 {
		info.SupportedBootModes = items[string]{"uefi"}
	}
	for i := range cards {
		info.NetworkInfo.NetworkCards = append(info.NetworkInfo.NetworkCards, networkCardXML{
			NetworkCardIndex:         i,
			NetworkPerformance:       performance,
			MaximumNetworkInterfaces: min(perCard, it.MaxENI),
			BaselineBandwidthInGbps:  gbps / float64(cards),
			PeakBandwidthInGbps:      gbps / float64(cards),
		})
	}
	// Fractional-GPU types (g6f, gr6f) have a GPU model and a count of 0.
	if it.GPUType != "" {
		info.GPUInfo = &gpuInfoXML{GPUs: items[gpuXML]{{
			Name:         strings.ToUpper(it.GPUType),
			Manufacturer: gpuManufacturers[it.GPUManufacturer],
			Count:        it.GPU,
		}}}
	}
	return info
}

// instanceTypeFilterValues answers DescribeInstanceTypes' filters for one type.
func instanceTypeFilterValues(it catalog.InstanceType, info instanceTypeInfoXML) func(string) []string {
	return func(name string) []string {
		switch name {
		case "instance-type":
			return []string{it.Name}
		case "processor-info.supported-architecture":
			return info.ProcessorInfo.SupportedArchitectures
		case "supported-virtualization-type":
			return info.SupportedVirtualizationTypes
		case "supported-usage-class":
			return info.SupportedUsageClasses
		case "current-generation":
			return []string{strconv.FormatBool(info.CurrentGeneration)}
		case "bare-metal":
			return []string{strconv.FormatBool(it.BareMetal)}
		case "burstable-performance-supported":
			return []string{strconv.FormatBool(it.Burstable)}
		case "hypervisor":
			return []string{it.Hypervisor}
		case "vcpu-info.default-vcpus":
			return []string{strconv.Itoa(it.VCPU)}
		case "memory-info.size-in-mib":
			return []string{strconv.FormatInt(it.MemoryMiB, 10)}
		}
		return nil
	}
}

func (e *Emulator) describeInstanceTypes(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("instance-type", "processor-info.supported-architecture", "supported-virtualization-type",
		"supported-usage-class", "current-generation", "bare-metal", "burstable-performance-supported", "hypervisor",
		"vcpu-info.default-vcpus", "memory-info.size-in-mib")
	if apiErr != nil {
		return nil, apiErr
	}
	if _, _, apiErr := p.boolean("IncludeUnsupportedInRegion"); apiErr != nil {
		return nil, apiErr
	}
	var types []catalog.InstanceType
	if names := p.list("InstanceType"); len(names) > 0 {
		var unknown []string
		for _, name := range names {
			it, ok := catalog.Get(name)
			if !ok {
				unknown = append(unknown, name)
				continue
			}
			types = append(types, it)
		}
		if len(unknown) > 0 {
			return nil, errCode("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(unknown, ", "))
		}
	} else {
		types = catalog.All()
	}
	var matched []instanceTypeInfoXML
	for _, it := range types {
		info := instanceTypeInfo(it)
		if matchFilters(filters, instanceTypeFilterValues(it, info)) {
			matched = append(matched, info)
		}
	}
	page, next, apiErr := paginate(p, "DescribeInstanceTypes", matched, 5, 100, 100)
	if apiErr != nil {
		return nil, apiErr
	}
	return &describeInstanceTypesResponse{InstanceTypes: page, NextToken: next}, nil
}

type describeInstanceTypeOfferingsResponse struct {
	responseMeta
	Offerings items[offeringXML] `xml:"instanceTypeOfferingSet"`
	NextToken string             `xml:"nextToken,omitempty"`
}

type offeringXML struct {
	InstanceType string `xml:"instanceType"`
	LocationType string `xml:"locationType"`
	Location     string `xml:"location"`
}

func (e *Emulator) describeInstanceTypeOfferings(p params) (ec2Response, *apiError) {
	locationType, apiErr := p.enum("LocationType", "region", "availability-zone", "availability-zone-id", "outpost")
	if apiErr != nil {
		return nil, apiErr
	}
	if locationType == "" {
		locationType = "region"
	}
	if locationType == "outpost" {
		return nil, errUnsupported("The emulator has no outposts")
	}
	filters, apiErr := p.filters("location", "instance-type")
	if apiErr != nil {
		return nil, apiErr
	}
	var matched []offeringXML
	for _, it := range catalog.All() {
		var locations []string
		switch locationType {
		case "region":
			if len(offeredZones(it.Name)) > 0 {
				locations = []string{Region}
			}
		case "availability-zone":
			locations = offeredZones(it.Name)
		case "availability-zone-id":
			for _, z := range offeredZones(it.Name) {
				locations = append(locations, zoneID(z))
			}
		}
		for _, loc := range locations {
			o := offeringXML{InstanceType: it.Name, LocationType: locationType, Location: loc}
			if matchFilters(filters, func(name string) []string {
				if name == "location" {
					return []string{loc}
				}
				return []string{it.Name}
			}) {
				matched = append(matched, o)
			}
		}
	}
	page, next, apiErr := paginate(p, "DescribeInstanceTypeOfferings", matched, 5, 1000, 1000)
	if apiErr != nil {
		return nil, apiErr
	}
	return &describeInstanceTypeOfferingsResponse{Offerings: page, NextToken: next}, nil
}

type describeAvailabilityZonesResponse struct {
	responseMeta
	Zones items[zoneXML] `xml:"availabilityZoneInfo"`
}

type zoneXML struct {
	ZoneName           string `xml:"zoneName"`
	ZoneID             string `xml:"zoneId"`
	ZoneState          string `xml:"zoneState"`
	OptInStatus        string `xml:"optInStatus"`
	RegionName         string `xml:"regionName"`
	ZoneType           string `xml:"zoneType"`
	GroupName          string `xml:"groupName"`
	NetworkBorderGroup string `xml:"networkBorderGroup"`
}

func (e *Emulator) describeAvailabilityZones(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("zone-name", "zone-id", "state", "region-name", "zone-type", "opt-in-status", "group-name")
	if apiErr != nil {
		return nil, apiErr
	}
	if _, _, apiErr := p.boolean("AllAvailabilityZones"); apiErr != nil {
		return nil, apiErr
	}
	names, ids := p.list("ZoneName"), p.list("ZoneId")
	for _, n := range names {
		if !validZone(n) {
			return nil, errInvalidValue("The zone '%s' does not exist in region %s", n, Region)
		}
	}
	resp := &describeAvailabilityZonesResponse{Zones: items[zoneXML]{}}
	for _, z := range Zones {
		zx := zoneXML{ZoneName: z, ZoneID: zoneID(z), ZoneState: "available", OptInStatus: "opt-in-not-required",
			RegionName: Region, ZoneType: "availability-zone", GroupName: Region, NetworkBorderGroup: Region}
		if (len(names) > 0 || len(ids) > 0) && !contains(names, z) && !contains(ids, zx.ZoneID) {
			continue
		}
		if !matchFilters(filters, func(name string) []string {
			return []string{map[string]string{"zone-name": z, "zone-id": zx.ZoneID, "state": "available", "region-name": Region,
				"zone-type": zx.ZoneType, "opt-in-status": zx.OptInStatus, "group-name": zx.GroupName}[name]}
		}) {
			continue
		}
		resp.Zones = append(resp.Zones, zx)
	}
	for _, id := range ids {
		if !contains(Zones, zoneName(id)) {
			return nil, errInvalidValue("The zone ID '%s' does not exist in region %s", id, Region)
		}
	}
	return resp, nil
}

func zoneName(id string) string {
	for _, z := range Zones {
		if zoneID(z) == id {
			return z
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type describeSpotPriceHistoryResponse struct {
	responseMeta
	Prices    items[spotPriceXML] `xml:"spotPriceHistorySet"`
	NextToken string              `xml:"nextToken"`
}

type spotPriceXML struct {
	AvailabilityZone   string `xml:"availabilityZone"`
	AvailabilityZoneID string `xml:"availabilityZoneId"`
	InstanceType       string `xml:"instanceType"`
	ProductDescription string `xml:"productDescription"`
	SpotPrice          string `xml:"spotPrice"`
	Timestamp          string `xml:"timestamp"`
}

// spotProducts are the product descriptions the emulator prices: Linux only.
var spotProducts = []string{"Linux/UNIX"}

func (e *Emulator) describeSpotPriceHistory(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("instance-type", "product-description", "availability-zone", "spot-price", "timestamp")
	if apiErr != nil {
		return nil, apiErr
	}
	start, hasStart, apiErr := p.timestamp("StartTime")
	if apiErr != nil {
		return nil, apiErr
	}
	end, hasEnd, apiErr := p.timestamp("EndTime")
	if apiErr != nil {
		return nil, apiErr
	}
	if hasStart && hasEnd && end.Before(start) {
		return nil, errInvalidValue("The end time %s is before the start time %s", ec2Time(end), ec2Time(start))
	}
	types, products, zone := p.list("InstanceType"), p.list("ProductDescription"), p["AvailabilityZone"]
	for _, t := range types {
		if _, ok := catalog.Get(t); !ok {
			return nil, errInvalidValue("Invalid value '%s' for InstanceType", t)
		}
	}
	if zone != "" && !validZone(zone) {
		return nil, errInvalidValue("Invalid availability zone: [%s]", zone)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var matched []spotPriceXML
	for _, it := range catalog.All() {
		if len(types) > 0 && !contains(types, it.Name) {
			continue
		}
		for _, z := range Zones {
			if zone != "" && z != zone {
				continue
			}
			price, since, ok := e.spotPrice(it.Name, z)
			if !ok {
				continue
			}
			for _, product := range spotProducts {
				if len(products) > 0 && !contains(products, product) {
					continue
				}
				row := spotPriceXML{AvailabilityZone: z, AvailabilityZoneID: zoneID(z), InstanceType: it.Name,
					ProductDescription: product, SpotPrice: fmt.Sprintf("%.6f", price), Timestamp: ec2Time(since)}
				if matchFilters(filters, func(name string) []string {
					return []string{map[string]string{"instance-type": it.Name, "product-description": product,
						"availability-zone": z, "spot-price": row.SpotPrice, "timestamp": row.Timestamp}[name]}
				}) {
					matched = append(matched, row)
				}
			}
		}
	}
	page, next, apiErr := paginate(p, "DescribeSpotPriceHistory", matched, 5, 1000, 1000)
	if apiErr != nil {
		return nil, apiErr
	}
	return &describeSpotPriceHistoryResponse{Prices: page, NextToken: next}, nil
}
