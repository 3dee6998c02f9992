// Package gang holds the integration tests of gangs (PodGroups): its control plane runs with
// the Workload feature gates on (sandbox.Options.Workloads), in a test binary of its own, so
// that the other packages' tests keep the gates' defaults.
package gang

import (
	"testing"

	"github.com/nodewright/nodewright/pkg/sandbox"
	"github.com/nodewright/nodewright/test/integration/framework"
)

func TestMain(m *testing.M) {
	framework.MainWith(m, sandbox.Options{Workloads: true})
}
