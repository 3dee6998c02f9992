package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/nodewright/nodewright/"

// rules are the import rules of docs/design.md, "Components": for each package, the
// packages (import path prefixes, ours relative to the module) none of its dependencies,
// direct or not, may be.
var rules = map[string][]string{
	// apis is at the bottom: it imports no package of ours.
	"pkg/apis/...": {module},
	// The planner knows the scheduler framework, apis and cloud only.
	"pkg/plan/...": {module + "pkg/plugins", module + "pkg/lifecycle", module + "pkg/aws", module + "pkg/sandbox",
		module + "pkg/migrate", module + "cmd", "github.com/aws/"},
	"pkg/cloud/...": {module + "pkg/plan", module + "pkg/plugins", module + "pkg/lifecycle", module + "pkg/aws", "github.com/aws/"},
	// The plugin decides and the lifecycle acts, through pkg/cloud: neither knows AWS.
	"pkg/plugins/...":   {module + "pkg/aws", module + "pkg/sandbox", "github.com/aws/"},
	"pkg/lifecycle/...": {module + "pkg/plugins", module + "pkg/aws", module + "pkg/sandbox", "github.com/aws/"},
	// Disruption decides with the planner, as the plugin does, and knows no cloud either.
	"pkg/disruption/...": {module + "pkg/plugins", module + "pkg/aws", module + "pkg/sandbox", "github.com/aws/"},
	// pkg/aws never imports the scheduler.
	"pkg/aws/...": {module + "pkg/plugins", module + "pkg/plan", module + "pkg/lifecycle", "k8s.io/kubernetes/pkg/scheduler"},
}

// TestImportRules fails when a package imports, directly or not, what its layer must not.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("lists the module's dependencies with the go command")
	}
	for pattern, forbidden := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+pattern).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pattern, err, out)
		}
		own := strings.TrimSuffix(module+pattern, "...")
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, own) {
				continue
			}
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s, which its layer must not import (docs/design.md)", pattern, dep)
				}
			}
		}
	}
}
