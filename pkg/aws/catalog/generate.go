package catalog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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
// sorted by name, one object per line, with the local NVMe storage of localNVMe (a file as
// WriteLocalNVMe writes it; types it does not name have none). It checks what the catalog
// relies on (unique names, family and size derived from the name, a known architecture,
// positive sizes) so that bad source data fails here and not at run time.
func Generate(src, localNVMe []byte) ([]byte, error) {
	nvme, err := ParseLocalNVMe(localNVMe)
	if err != nil {
		return nil, err
	}
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
		it.LocalNVMeGiB = nvme[it.Name]
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

// localNVMeLabel is the label whose value Karpenter's instance-type reference gives as the
// GiB of local NVMe instance storage (EC2's InstanceStorageInfo.TotalSizeInGB).
const localNVMeLabel = "karpenter.k8s.aws/instance-local-nvme"

// LocalNVMeFromDocs reads the local NVMe storage of every instance type listed in Karpenter's
// instance-type reference (website/content/en/.../reference/instance-types.md of
// aws/karpenter-provider-aws): a "### `name`" heading per type, then a table of its labels.
// Given several versions of the reference, newest first, a type is taken from the first that
// lists it; a type listed without the label has no local NVMe and is left out of the result.
func LocalNVMeFromDocs(docs ...[]byte) (map[string]int, error) {
	seen := map[string]bool{}
	out := map[string]int{}
	for _, doc := range docs {
		listed := map[string]bool{}
		current := ""
		sc := bufio.NewScanner(bytes.NewReader(doc))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if name, ok := strings.CutPrefix(line, "### `"); ok {
				current = strings.TrimSuffix(name, "`")
				listed[current] = true
				continue
			}
			value, ok := strings.CutPrefix(line, "|"+localNVMeLabel+"|")
			if !ok || current == "" || seen[current] {
				continue
			}
			gib, err := strconv.Atoi(strings.TrimSuffix(value, "|"))
			if err != nil || gib <= 0 {
				return nil, fmt.Errorf("instance type %q: %s %q is not a positive integer", current, localNVMeLabel, value)
			}
			out[current] = gib
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading the instance-type reference: %w", err)
		}
		if len(listed) == 0 {
			return nil, fmt.Errorf("an instance-type reference lists no instance types")
		}
		for name := range listed {
			seen[name] = true
		}
	}
	return out, nil
}

// WriteLocalNVMe writes local NVMe storage as ParseLocalNVMe reads it: the header's lines as
// "# " comments, then "name GiB" per instance type, sorted by name.
func WriteLocalNVMe(header []string, gib map[string]int) []byte {
	var buf bytes.Buffer
	for _, h := range header {
		buf.WriteString(strings.TrimRight("# "+h, " ") + "\n")
	}
	names := make([]string, 0, len(gib))
	for name := range gib {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&buf, "%s %d\n", name, gib[name])
	}
	return buf.Bytes()
}

// ParseLocalNVMe reads a file WriteLocalNVMe wrote: the GiB of local NVMe storage by instance
// type. Comment lines start with "#".
func ParseLocalNVMe(data []byte) (map[string]int, error) {
	out := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		gib, err := strconv.Atoi(value)
		if !ok || err != nil || gib <= 0 {
			return nil, fmt.Errorf("local NVMe line %d %q: want an instance type and a positive number of GiB", i+1, line)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("local NVMe line %d: instance type %q appears twice", i+1, name)
		}
		out[name] = gib
	}
	return out, nil
}
