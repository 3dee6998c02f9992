package emulator

import (
	"hash/fnv"
	"strings"
	"unicode"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// Zones are the availability zones of the emulated region, in order.
var Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}

// zoneID maps a zone name to its zone ID. Real mappings differ per account; the emulator
// numbers them in order.
func zoneID(zone string) string {
	for i, z := range Zones {
		if z == zone {
			return "use1-az" + string(rune('1'+i))
		}
	}
	return ""
}

func validZone(zone string) bool {
	return zoneID(zone) != ""
}

// acceleratedPrefixes are the family prefixes (the letters before the generation digit) of
// GPU, machine-learning, FPGA, video, Mac, HPC and high-memory instances, which zone f lacks.
var acceleratedPrefixes = map[string]bool{
	"p": true, "g": true, "gr": true, "inf": true, "trn": true, "dl": true, "f": true, "vt": true,
	"mac": true, "mac-m": true, "u": true, "u-": true, "hpc": true,
}

// Offered reports whether zone offers instanceType. The rule, deterministic and documented in
// the package doc:
//   - us-east-1a, 1b and 1c offer every catalog type;
//   - us-east-1d and 1e offer every type except those whose FNV-1a 32-bit hash of
//     "<type>@<zone>" is 0 modulo 10 (about one type in ten, a different tenth in each zone);
//   - us-east-1f offers only generations 1 to 6 of the general-purpose, compute, memory,
//     storage and burstable families: no bare metal, no GPU or accelerator, Mac, HPC or
//     high-memory family (p, g, gr, inf, trn, dl, f, vt, mac, hpc, u), and nothing of
//     generation 7 or later.
//
// Types not in the catalog are offered nowhere.
func Offered(instanceType, zone string) bool {
	it, ok := catalog.Get(instanceType)
	if !ok || !validZone(zone) {
		return false
	}
	switch zone {
	case "us-east-1a", "us-east-1b", "us-east-1c":
		return true
	case "us-east-1d", "us-east-1e":
		return hash32(instanceType+"@"+zone)%10 != 0
	}
	prefix, generation := familyGeneration(it.Family)
	return !it.BareMetal && it.GPU == 0 && !acceleratedPrefixes[prefix] && generation <= 6
}

// familyGeneration splits a family such as "m5a" or "u-6tb1" into its leading letters
// ("m", "u-") and its generation (5, 6).
func familyGeneration(family string) (string, int) {
	i := strings.IndexFunc(family, unicode.IsDigit)
	if i < 0 {
		return family, 0
	}
	return family[:i], int(family[i] - '0')
}

// offeredZones lists the zones that offer instanceType, in order.
func offeredZones(instanceType string) []string {
	var zones []string
	for _, z := range Zones {
		if Offered(instanceType, z) {
			zones = append(zones, z)
		}
	}
	return zones
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// deterministicID returns prefix + "0" + 16 hex digits derived from seed: the 17-digit form
// of EC2 resource IDs, stable across runs.
func deterministicID(prefix, seed string) string {
	const hexDigits = "0123456789abcdef"
	h := hash64(seed)
	b := make([]byte, 17)
	b[0] = '0'
	for i := 16; i >= 1; i-- {
		b[i] = hexDigits[h&0xf]
		h >>= 4
	}
	return prefix + string(b)
}

// ec2Architecture maps the catalog's architecture to EC2's name for it.
func ec2Architecture(arch string) string {
	if arch == catalog.ArchitectureAMD64 {
		return "x86_64"
	}
	return arch
}
