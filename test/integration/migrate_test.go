package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/migrate"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestMigrateOutputApplies migrates the Karpenter objects of pkg/migrate/testdata (the seed's
// v1alpha5 Provisioner, a v1 NodePool with its EC2NodeClass, and objects with fields that
// cannot be carried over) and creates the result on the apiserver: what migrate writes is
// valid, warnings or not.
func TestMigrateOutputApplies(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, name := range []string{"v1alpha5-provisioner.yaml", "v1-nodepool.yaml", "unsupported.yaml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(framework.RepoRoot(t), "pkg", "migrate", "testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			result, err := migrate.Migrate(migrate.Input{Name: name, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := result.WriteYAML(&out); err != nil {
				t.Fatal(err)
			}
			objects := decodeManifests(t, out.Bytes())
			if want := len(result.NodeClasses) + len(result.Provisioners); len(objects) != want || want == 0 {
				t.Fatalf("%d objects in the output, want %d (and some)", len(objects), want)
			}
			for _, created := range createObjects(ctx, t, objects) {
				t.Logf("created %s %s", created.GetKind(), created.GetName())
			}
		})
	}
}
