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
				Hypervisor: "nitro", NetworkBandwidthMbps: 5000, LocalNVMeGiB: 125,
			},
			wantOK: true,
		},
		{
			name: "c6id.metal",
			want: InstanceType{
				Name: "c6id.metal", Family: "c6id", Size: "metal", VCPU: 128, MemoryMiB: 262144,
				Architecture: ArchitectureAMD64, OnDemandPriceUSD: 6.4512,
				// 15 * (50 - 1) + 2 = 737
				MaxENI: 15, IPv4PerENI: 50, MaxPods: 737,
				// Bare metal: no hypervisor. 4 disks of 1900 GiB.
				BareMetal: true, NetworkBandwidthMbps: 50000, LocalNVMeGiB: 7600,
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
// writes from the shared data set next to the repository, when that directory exists, and
// the local NVMe extract.
func TestEmbeddedIsGenerated(t *testing.T) {
	src := filepath.Join("..", "..", "..", "..", "shared", "data", "ec2-instance-types.json")
	data, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("no shared data set at %s", src)
	}
	if err != nil {
		t.Fatal(err)
	}
	nvme, err := os.ReadFile("local-nvme.txt")
	if err != nil {
		t.Fatal(err)
	}
	generated, err := Generate(data, nvme)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if !bytes.Equal(generated, embedded) {
		t.Errorf("pkg/aws/catalog/instance-types.json is stale: run hack/update-catalog.sh\n(-want, +got):\n%s",
			cmp.Diff(string(generated), string(embedded)))
	}
}

// TestGenerateLocalNVMe checks that the local NVMe extract lands on the types it names, that
// types it does not name have none, and that names the shared data lacks are ignored.
func TestGenerateLocalNVMe(t *testing.T) {
	src := `[{"name":"m5d.large","family":"m5d","size":"large","vcpu":2,"memoryMiB":8192,"architecture":"amd64","maxENI":3,"ipv4PerENI":10,"maxPods":29},
{"name":"m5.large","family":"m5","size":"large","vcpu":2,"memoryMiB":8192,"architecture":"amd64","maxENI":3,"ipv4PerENI":10,"maxPods":29}]`
	nvme := WriteLocalNVMe([]string{"a header"}, map[string]int{"m5d.large": 75, "m9d.large": 80})
	out, err := Generate([]byte(src), nvme)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	got, err := parse(out)
	if err != nil {
		t.Fatalf("parsing the generated catalog: %v", err)
	}
	nvmeOf := map[string]int{}
	for _, it := range got {
		nvmeOf[it.Name] = it.LocalNVMeGiB
	}
	if diff := cmp.Diff(map[string]int{"m5.large": 0, "m5d.large": 75}, nvmeOf); diff != "" {
		t.Errorf("local NVMe GiB (-want, +got):\n%s", diff)
	}
}

// TestLocalNVMeFromDocs reads a reference shaped as Karpenter's: the newest copy that lists a
// type decides, and a type listed without the label has no local NVMe.
func TestLocalNVMeFromDocs(t *testing.T) {
	newest := []byte("## m5d Family\n### `m5d.large`\n#### Labels\n | Label | Value |\n |--|--|\n" +
		" |karpenter.k8s.aws/instance-local-nvme|75|\n |karpenter.k8s.aws/instance-memory|8192|\n" +
		"### `m5.large`\n#### Labels\n |karpenter.k8s.aws/instance-memory|8192|\n")
	older := []byte("### `m5.large`\n |karpenter.k8s.aws/instance-local-nvme|99|\n" +
		"### `f1.2xlarge`\n |karpenter.k8s.aws/instance-local-nvme|470|\n")
	got, err := LocalNVMeFromDocs(newest, older)
	if err != nil {
		t.Fatalf("LocalNVMeFromDocs: %v", err)
	}
	want := map[string]int{"m5d.large": 75, "f1.2xlarge": 470}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LocalNVMeFromDocs (-want, +got):\n%s", diff)
	}
	// What WriteLocalNVMe writes, ParseLocalNVMe reads back.
	back, err := ParseLocalNVMe(WriteLocalNVMe([]string{"source: a test", ""}, got))
	if err != nil {
		t.Fatalf("ParseLocalNVMe: %v", err)
	}
	if diff := cmp.Diff(want, back); diff != "" {
		t.Errorf("round trip (-want, +got):\n%s", diff)
	}
	for name, doc := range map[string]string{
		"no types":     "# nothing here\n",
		"not a number": "### `m5d.large`\n |karpenter.k8s.aws/instance-local-nvme|lots|\n",
	} {
		if _, err := LocalNVMeFromDocs([]byte(doc)); err == nil {
			t.Errorf("%s: LocalNVMeFromDocs succeeded, want an error", name)
		}
	}
	for name, extract := range map[string]string{
		"no size":   "m5d.large\n",
		"zero":      "m5d.large 0\n",
		"duplicate": "m5d.large 75\nm5d.large 75\n",
	} {
		if _, err := ParseLocalNVMe([]byte(extract)); err == nil {
			t.Errorf("%s: ParseLocalNVMe succeeded, want an error", name)
		}
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
			if _, err := Generate([]byte(tc.src), nil); err == nil {
				t.Error("Generate succeeded, want an error")
			}
		})
	}
}
