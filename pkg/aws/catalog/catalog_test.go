package catalog

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAllCount(t *testing.T) {
	all := All()
	if got, want := len(all), 1108; got != want {
		t.Errorf("len(All()) = %d, want %d", got, want)
	}
	// All hands out a copy: changing it must not change the catalog.
	all[0].VCPU = -1
	if All()[0].VCPU == -1 {
		t.Error("All() returned the catalog's own slice")
	}
}

func TestGet(t *testing.T) {
	tests := []struct {
		name   string
		want   InstanceType
		wantOK bool
	}{
		{
			name: "t3a.2xlarge",
			want: InstanceType{
				Name: "t3a.2xlarge", Family: "t3a", Size: "2xlarge", VCPU: 8, MemoryMiB: 32768,
				Architecture: ArchitectureAMD64, OnDemandPriceUSD: 0.3008,
				// 4 ENIs * (15 - 1) + 2 = 58
				MaxENI: 4, IPv4PerENI: 15, MaxPods: 58,
				Hypervisor: "nitro", Burstable: true, NetworkBandwidthMbps: 2048,
			},
			wantOK: true,
		},
		{
			name: "g4dn.xlarge",
			want: InstanceType{
				Name: "g4dn.xlarge", Family: "g4dn", Size: "xlarge", VCPU: 4, MemoryMiB: 16384,
				GPU: 1, GPUType: "t4", GPUManufacturer: "nvidia",
				Architecture: ArchitectureAMD64, OnDemandPriceUSD: 0.526,
				// 3 * (10 - 1) + 2 = 29
				MaxENI: 3, IPv4PerENI: 10, MaxPods: 29,
				Hypervisor: "nitro", NetworkBandwidthMbps: 5000,
			},
			wantOK: true,
		},
		{name: "m5.huge"},
		{name: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Get(tc.name)
			if ok != tc.wantOK {
				t.Fatalf("Get(%q) ok = %v, want %v", tc.name, ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Get(%q) (-want, +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestInvariants(t *testing.T) {
	for _, it := range All() {
		if it.Architecture != ArchitectureAMD64 && it.Architecture != ArchitectureARM64 {
			t.Errorf("%s: architecture %q", it.Name, it.Architecture)
		}
		if it.VCPU <= 0 || it.MemoryMiB <= 0 || it.MaxPods <= 0 {
			t.Errorf("%s: vcpu %d, memoryMiB %d, maxPods %d must be positive", it.Name, it.VCPU, it.MemoryMiB, it.MaxPods)
		}
		if got, ok := Get(it.Name); !ok || got != it {
			t.Errorf("Get(%q) = %+v, %v; want the entry of All()", it.Name, got, ok)
		}
	}
}

// TestEmbeddedIsGenerated checks that the committed copy is what hack/update-catalog.sh
// writes from the shared data set next to the repository, when that directory exists.
func TestEmbeddedIsGenerated(t *testing.T) {
	src := filepath.Join("..", "..", "..", "..", "shared", "data", "ec2-instance-types.json")
	data, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("no shared data set at %s", src)
	}
	if err != nil {
		t.Fatal(err)
	}
	generated, err := Generate(data)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if !bytes.Equal(generated, embedded) {
		t.Errorf("pkg/aws/catalog/instance-types.json is stale: run hack/update-catalog.sh\n(-want, +got):\n%s",
			cmp.Diff(string(generated), string(embedded)))
	}
}

func TestGenerateRejectsBadData(t *testing.T) {
	tests := []struct {
		name string
		src  string
	}{
		{name: "empty", src: `[]`},
		{name: "unknown field", src: `[{"name":"m5.large","family":"m5","size":"large","vcpu":2,"memoryMiB":8192,"architecture":"amd64","maxENI":3,"ipv4PerENI":10,"maxPods":29,"color":"red"}]`},
		{name: "family mismatch", src: `[{"name":"m5.large","family":"m6","size":"large","vcpu":2,"memoryMiB":8192,"architecture":"amd64","maxENI":3,"ipv4PerENI":10,"maxPods":29}]`},
		{name: "architecture", src: `[{"name":"m5.large","family":"m5","size":"large","vcpu":2,"memoryMiB":8192,"architecture":"x86_64","maxENI":3,"ipv4PerENI":10,"maxPods":29}]`},
		{name: "duplicate", src: `[{"name":"m5.large","family":"m5","size":"large","vcpu":2,"memoryMiB":8192,"architecture":"amd64","maxENI":3,"ipv4PerENI":10,"maxPods":29},
{"name":"m5.large","family":"m5","size":"large","vcpu":2,"memoryMiB":8192,"architecture":"amd64","maxENI":3,"ipv4PerENI":10,"maxPods":29}]`},
		{name: "zero vcpu", src: `[{"name":"m5.large","family":"m5","size":"large","vcpu":0,"memoryMiB":8192,"architecture":"amd64","maxENI":3,"ipv4PerENI":10,"maxPods":29}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Generate([]byte(tc.src)); err == nil {
				t.Error("Generate succeeded, want an error")
			}
		})
	}
}
