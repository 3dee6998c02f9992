package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Architectures as the catalog writes them: Kubernetes' names, not EC2's (x86_64 is amd64).
const (
	ArchitectureAMD64 = "amd64"
	ArchitectureARM64 = "arm64"
)

// InstanceType holds the facts nodewright uses about one EC2 instance type.
type InstanceType struct {
	// Name is the instance type, e.g. "m5.large".
	Name string `json:"name"`
	// Family and Size are the parts of Name before and after the first ".".
	Family string `json:"family"`
	Size   string `json:"size"`
	// VCPU is the number of vCPUs.
	VCPU int `json:"vcpu"`
	// MemoryMiB is the memory in MiB.
	MemoryMiB int64 `json:"memoryMiB"`
	// GPU is the number of GPUs; fractional-GPU types (g6f, gr6f) count 0.
	GPU int `json:"gpu"`
	// GPUType is the GPU model in lower case ("t4", "a10g", "h100"); empty when unknown.
	GPUType string `json:"gpuType,omitempty"`
	// GPUManufacturer is "nvidia", "amd" or "habana"; set only when GPUType is.
	GPUManufacturer string `json:"gpuManufacturer,omitempty"`
	// Architecture is ArchitectureAMD64 or ArchitectureARM64.
	Architecture string `json:"architecture"`
	// OnDemandPriceUSD is the us-east-1 Linux on-demand price in USD per hour; 0 when the
	// sources do not know it (the mac*.metal types, which run only on dedicated hosts).
	OnDemandPriceUSD float64 `json:"onDemandPriceUSD,omitempty"`
	// MaxENI is the most network interfaces the instance can have, over all network cards.
	MaxENI int `json:"maxENI"`
	// IPv4PerENI is the number of IPv4 addresses per network interface.
	IPv4PerENI int `json:"ipv4PerENI"`
	// MaxPods is the EKS VPC-CNI max pods without prefix delegation:
	// ENIs on the default card * (IPv4PerENI - 1) + 2.
	MaxPods int `json:"maxPods"`
	// Hypervisor is "nitro" or "xen"; empty for bare-metal types.
	Hypervisor string `json:"hypervisor,omitempty"`
	// BareMetal is true for *.metal types.
	BareMetal bool `json:"bareMetal"`
	// Burstable is true for the t2, t3, t3a and t4g families.
	Burstable bool `json:"burstable"`
	// NetworkBandwidthMbps is the baseline network bandwidth in Mbit/s; 0 for the older types
	// where AWS gives only a level such as "Moderate".
	NetworkBandwidthMbps int `json:"networkBandwidthMbps,omitempty"`
	// LocalNVMeGiB is the size of the instance storage EC2 exposes over NVMe, in GiB, all
	// disks together (d3's hard disks count); 0 for types without it: EBS only, or instance
	// storage without NVMe (d2, h1).
	LocalNVMeGiB int `json:"localNVMeGiB,omitempty"`
}

//go:embed instance-types.json
var embedded []byte

type index struct {
	all    []InstanceType
	byName map[string]int
}

// load parses the embedded file once. The file is generated and tested, so a parse error
// is a build defect, not a runtime condition: it panics.
var load = sync.OnceValue(func() index {
	all, err := parse(embedded)
	if err != nil {
		panic(fmt.Sprintf("catalog: parsing the embedded instance-types.json: %v", err))
	}
	byName := make(map[string]int, len(all))
	for i, it := range all {
		byName[it.Name] = i
	}
	return index{all: all, byName: byName}
})

// All returns every instance type of the catalog, sorted by name. The slice is the caller's
// to keep or modify.
func All() []InstanceType {
	return slices.Clone(load().all)
}

// Get returns the instance type with the given name, and whether the catalog knows it.
func Get(name string) (InstanceType, bool) {
	idx := load()
	i, ok := idx.byName[name]
	if !ok {
		return InstanceType{}, false
	}
	return idx.all[i], true
}

// parse decodes a catalog file strictly (unknown fields are errors) and checks that it is
// sorted by name without duplicates.
func parse(data []byte) ([]InstanceType, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var all []InstanceType
	if err := dec.Decode(&all); err != nil {
		return nil, fmt.Errorf("decoding instance types: %w", err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			return nil, fmt.Errorf("instance types not sorted by name: %q before %q", all[i-1].Name, all[i].Name)
		}
	}
	return all, nil
}
