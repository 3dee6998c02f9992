package migrate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata with the current output")

// TestMigrateGolden migrates each testdata/NAME.yaml and compares the objects written with
// testdata/NAME.out.yaml and the warnings with testdata/NAME.warnings.
func TestMigrateGolden(t *testing.T) {
	tests := []struct {
		name         string
		wantWarnings bool
	}{
		{name: "v1alpha5-provisioner"},
		{name: "v1-nodepool"},
		{name: "unsupported", wantWarnings: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := filepath.Join("testdata", tc.name+".yaml")
			data, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			result, err := Migrate(Input{Name: filepath.Base(input), Data: data})
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			var out, warnings bytes.Buffer
			if err := result.WriteYAML(&out); err != nil {
				t.Fatal(err)
			}
			for _, w := range result.Warnings {
				warnings.WriteString(w.String() + "\n")
			}
			if got := len(result.Warnings) > 0; got != tc.wantWarnings {
				t.Errorf("warnings:\n%s\nwant any: %v", warnings.String(), tc.wantWarnings)
			}
			golden(t, filepath.Join("testdata", tc.name+".out.yaml"), out.Bytes())
			golden(t, filepath.Join("testdata", tc.name+".warnings"), warnings.Bytes())
			decodeStrictly(t, out.Bytes())
		})
	}
}

// golden compares got with the file at path, or writes it there with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/migrate -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want, +got):\n%s", path, diff)
	}
}

// decodeStrictly checks that every document of out is a nodewright object with no field its
// Go type lacks.
func decodeStrictly(t *testing.T, out []byte) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	docs := bytes.Split(out, []byte("\n---\n"))
	for _, doc := range docs {
		jsonDoc, err := utilyaml.ToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := decoder.Decode(jsonDoc, nil, nil); err != nil {
			t.Errorf("decoding the output strictly: %v\n%s", err, doc)
		}
	}
}

func TestMigrateErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{
			name:    "not YAML",
			input:   "apiVersion: [",
			wantErr: "reading in.yaml",
		},
		{
			name:    "not an object",
			input:   "- a\n- b\n",
			wantErr: "a document is not an object",
		},
		{
			name: "two EC2NodeClasses of one name",
			input: `
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata: {name: default}
spec:
  provider: {subnetSelector: {a: b}, securityGroupSelector: {a: b}, instanceProfile: p}
---
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata: {name: default}
spec: {subnetSelector: {a: b}, securityGroupSelector: {a: b}, instanceProfile: p}
`,
			wantErr: "EC2NodeClass/default would be made twice: from Provisioner/default in in.yaml and from AWSNodeTemplate/default in in.yaml",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Migrate(Input{Name: "in.yaml", Data: []byte(tc.input)})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Migrate error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMapLabelKey(t *testing.T) {
	tests := []struct {
		key     string
		want    string
		wantErr string
	}{
		{key: "karpenter.sh/capacity-type", want: "nodewright.dev/capacity-type"},
		{key: "karpenter.k8s.aws/instance-family", want: "nodewright.dev/instance-family"},
		{key: "karpenter.k8s.aws/instance-size", want: "nodewright.dev/instance-size"},
		{key: "karpenter.k8s.aws/instance-cpu", want: "nodewright.dev/instance-cpu"},
		{key: "karpenter.k8s.aws/instance-memory", want: "nodewright.dev/instance-memory"},
		{key: "karpenter.k8s.aws/instance-gpu-count", want: "nodewright.dev/instance-gpu-count"},
		{key: "karpenter.k8s.aws/instance-gpu-name", want: "nodewright.dev/instance-gpu-name"},
		{key: "karpenter.k8s.aws/instance-category", want: "nodewright.dev/instance-category"},
		{key: "karpenter.k8s.aws/instance-generation", want: "nodewright.dev/instance-generation"},
		{key: "karpenter.k8s.aws/instance-hypervisor", want: "nodewright.dev/instance-hypervisor"},
		{key: "karpenter.k8s.aws/instance-network-bandwidth", want: "nodewright.dev/instance-network-bandwidth"},
		{key: "karpenter.k8s.aws/instance-local-nvme", want: "nodewright.dev/instance-local-nvme"},
		{key: "node.kubernetes.io/instance-type", want: "node.kubernetes.io/instance-type"},
		{key: "beta.kubernetes.io/instance-type", want: "node.kubernetes.io/instance-type"},
		{key: "failure-domain.beta.kubernetes.io/zone", want: "topology.kubernetes.io/zone"},
		{key: "beta.kubernetes.io/arch", want: "kubernetes.io/arch"},
		{key: "topology.kubernetes.io/zone", want: "topology.kubernetes.io/zone"},
		{key: "example.com/team", want: "example.com/team"},
		{key: "team", want: "team"},
		{key: "karpenter.sh/nodepool", wantErr: "is set by Karpenter on its nodes"},
		{key: "karpenter.sh/provisioner-name", wantErr: "is set by Karpenter on its nodes"},
		{key: "karpenter.k8s.aws/instance-cpu-manufacturer", wantErr: "has no nodewright equivalent"},
		{key: "karpenter.k8s.aws/instance-ebs-bandwidth", wantErr: "has no nodewright equivalent"},
		{key: "kubernetes.io/hostname", wantErr: "is restricted"},
		{key: "nodewright.dev/nodeclaim", wantErr: "is restricted"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			got, err := mapLabelKey(tc.key)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("mapLabelKey(%q) = %q, %v; want an error containing %q", tc.key, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("mapLabelKey(%q) = %q, %v; want %q", tc.key, got, err, tc.want)
			}
		})
	}
}
