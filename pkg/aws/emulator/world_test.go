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

// TestSpotPriceModel checks that every spot price lies in 30..70% of on-demand and that pools
// exist exactly where the type is offered and has a price.
func TestSpotPriceModel(t *testing.T) {
	pools := 0
	for _, it := range catalog.All() {
		for _, z := range Zones {
			price, ok := ModelSpotPrice(it.Name, z)
			if want := Offered(it.Name, z) && it.OnDemandPriceUSD > 0; ok != want {
				t.Errorf("%s in %s: pool %v, want %v", it.Name, z, ok, want)
			}
			if !ok {
				continue
			}
			pools++
			// Rounding to 4 decimals may move a price by 0.00005.
			if low, high := 0.3*it.OnDemandPriceUSD-0.00005, 0.7*it.OnDemandPriceUSD+0.00005; price < low && price != 0.0001 || price > high {
				t.Errorf("%s in %s: spot %v outside [%v, %v]", it.Name, z, price, low, high)
			}
		}
	}
	if pools == 0 {
		t.Fatal("no spot pools")
	}
	a, _ := ModelSpotPrice("t3a.2xlarge", "us-east-1a")
	b, _ := ModelSpotPrice("t3a.2xlarge", "us-east-1b")
	if a == b {
		t.Errorf("t3a.2xlarge costs %v in both a and b; the model should differ per zone", a)
	}
}
