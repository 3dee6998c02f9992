package integration

import (
	"testing"

	"github.com/nodewright/nodewright/test/integration/framework"
)

func TestMain(m *testing.M) {
	framework.Main(m)
}
