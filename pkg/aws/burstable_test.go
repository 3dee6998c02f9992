package aws

import (
	"math"
	"testing"
)

// TestBaselineCPU: the cores each burstable size sustains, from the per-vCPU baseline.
func TestBaselineCPU(t *testing.T) {
	for _, tc := range []struct {
		name      string
		vcpu      int64
		want      float64
		burstable bool
	}{
		{"t3.nano", 2, 0.1, true}, {"t3a.2xlarge", 8, 3.2, true}, {"t4g.medium", 2, 0.4, true},
		{"t2.xlarge", 4, 0.9, true}, {"t2.2xlarge", 8, 1.36, true}, {"m5.large", 2, 0, false},
	} {
		got, ok := baselineCPU(tc.name, tc.vcpu)
		if ok != tc.burstable || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %v cores (burstable %v), want %v (%v)", tc.name, got, ok, tc.want, tc.burstable)
		}
	}
}
