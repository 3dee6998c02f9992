package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// source is one object of the shared data set (../shared/data/ec2-instance-types.json).
// Every field it has is listed so that a change of its schema fails the generator.
type source struct {
	Name                 string   `json:"name"`
	Family               string   `json:"family"`
	Size                 string   `json:"size"`
	VCPU                 int      `json:"vcpu"`
	MemoryMiB            int64    `json:"memoryMiB"`
	GPU                  int      `json:"gpu"`
	GPUType              string   `json:"gpuType"`
	GPUManufacturer      string   `json:"gpuManufacturer"`
	Architecture         string   `json:"architecture"`
	OnDemandPriceUSD     *float64 `json:"onDemandPriceUSD"`
	MaxENI               int      `json:"maxENI"`
	MaxENIDefaultCard    int      `json:"maxENIDefaultCard"`
	IPv4PerENI           int      `json:"ipv4PerENI"`
	MaxPods              int      `json:"maxPods"`
	Hypervisor           string   `json:"hypervisor"`
	BareMetal            bool     `json:"bareMetal"`
	NetworkBandwidthMbps int      `json:"networkBandwidthMbps"`
	Burstable            bool     `json:"burstable"`
}

// Generate turns the shared data set into the catalog file: the fields InstanceType holds,
// sorted by name, one object per line. It checks what the catalog relies on (unique names,
// family and size derived from the name, a known architecture, positive sizes) so that bad
// source data fails here and not at run time.
func Generate(src []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	var in []source
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("decoding the source data: %w", err)
	}
	if len(in) == 0 {
		return nil, fmt.Errorf("the source data holds no instance types")
	}
	out := make([]InstanceType, 0, len(in))
	for _, s := range in {
		it, err := convert(s)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b InstanceType) int { return strings.Compare(a.Name, b.Name) })
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i, it := range out {
		if i > 0 && out[i-1].Name == it.Name {
			return nil, fmt.Errorf("instance type %q appears twice", it.Name)
		}
		line, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", it.Name, err)
		}
		buf.Write(line)
		if i < len(out)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]\n")
	return buf.Bytes(), nil
}

func convert(s source) (InstanceType, error) {
	family, size, ok := strings.Cut(s.Name, ".")
	if !ok || family != s.Family || size != s.Size {
		return InstanceType{}, fmt.Errorf("instance type %q: family %q and size %q do not match its name", s.Name, s.Family, s.Size)
	}
	if s.Architecture != ArchitectureAMD64 && s.Architecture != ArchitectureARM64 {
		return InstanceType{}, fmt.Errorf("instance type %q: unknown architecture %q", s.Name, s.Architecture)
	}
	if s.VCPU <= 0 || s.MemoryMiB <= 0 || s.MaxENI <= 0 || s.IPv4PerENI <= 0 || s.MaxPods <= 0 {
		return InstanceType{}, fmt.Errorf("instance type %q: vcpu, memoryMiB, maxENI, ipv4PerENI and maxPods must be positive", s.Name)
	}
	it := InstanceType{
		Name:                 s.Name,
		Family:               s.Family,
		Size:                 s.Size,
		VCPU:                 s.VCPU,
		MemoryMiB:            s.MemoryMiB,
		GPU:                  s.GPU,
		GPUType:              s.GPUType,
		GPUManufacturer:      s.GPUManufacturer,
		Architecture:         s.Architecture,
		MaxENI:               s.MaxENI,
		IPv4PerENI:           s.IPv4PerENI,
		MaxPods:              s.MaxPods,
		Hypervisor:           s.Hypervisor,
		BareMetal:            s.BareMetal,
		Burstable:            s.Burstable,
		NetworkBandwidthMbps: s.NetworkBandwidthMbps,
	}
	if s.OnDemandPriceUSD != nil {
		if *s.OnDemandPriceUSD <= 0 {
			return InstanceType{}, fmt.Errorf("instance type %q: on-demand price %v is not positive", s.Name, *s.OnDemandPriceUSD)
		}
		it.OnDemandPriceUSD = *s.OnDemandPriceUSD
	}
	return it, nil
}
