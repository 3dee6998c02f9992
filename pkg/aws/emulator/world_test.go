package emulator

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// TestOfferingRule pins the documented zone rule: a, b and c offer all 1108 types, d and e
// about nine in ten, f the older general-purpose families.
func TestOfferingRule(t *testing.T) {
	got := map[string]int{}
	for _, z := range Zones {
		for _, it := range catalog.All() {
			if Offered(it.Name, z) {
				got[z]++
			}
		}
	}
	want := map[string]int{"us-east-1a": 1108, "us-east-1b": 1108, "us-east-1c": 1108, "us-east-1d": 1001, "us-east-1e": 1015, "us-east-1f": 506}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("types offered per zone (-want, +got):\n%s", diff)
	}
	for _, tc := range []struct {
		instanceType, zone string
		want               bool
	}{
		{"t3a.2xlarge", "us-east-1f", true},
		{"m5.large", "us-east-1f", true},
		{"m5.large", "us-east-1d", false}, // hash("m5.large@us-east-1d") % 10 == 0
		{"m7i.large", "us-east-1f", false},
		{"g4dn.xlarge", "us-east-1f", false},
		{"m5.metal", "us-east-1f", false},
		{"m5.large", "us-east-1g", false},
		{"m5.huge", "us-east-1a", false},
	} {
		if got := Offered(tc.instanceType, tc.zone); got != tc.want {
			t.Errorf("Offered(%s, %s) = %v, want %v", tc.instanceType, tc.zone, got, tc.want)
		}
	}
}
