package emulator

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// spotBounds is the range a modelled spot price of it may take: its band's, widened by the
// 0.00005 that rounding to 4 decimals may move a price, and never below the 0.0001 floor.
func spotBounds(it catalog.InstanceType) (low, high float64) {
	band, _ := spotBandOf(it)
	low = max(0.0001, it.OnDemandPriceUSD*(1-band.maxSavings)-0.00005)
	high = it.OnDemandPriceUSD*(1-band.minSavings) + 0.00005
	return low, high
}

// TestSpotPriceModel checks that pools exist exactly where the zone offers the type and EC2
// sells it as spot, that every price lies in its family group's band, that the model gives
// the same price twice, and that it differs per zone.
func TestSpotPriceModel(t *testing.T) {
	pools := 0
	for _, it := range catalog.All() {
		_, sold := spotBandOf(it)
		for _, z := range Zones {
			price, ok := ModelSpotPrice(it.Name, z)
			if want := Offered(it.Name, z) && sold; ok != want {
				t.Errorf("%s in %s: pool %v, want %v", it.Name, z, ok, want)
			}
			if !ok {
				continue
			}
			pools++
			if low, high := spotBounds(it); price < low || price > high {
				t.Errorf("%s in %s: spot %v outside its band [%v, %v]", it.Name, z, price, low, high)
			}
			if again, _ := ModelSpotPrice(it.Name, z); again != price {
				t.Errorf("%s in %s: spot %v, then %v", it.Name, z, price, again)
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

// TestSpotBands pins which band a type of each family group takes, and the bands themselves
// as the package doc and docs/design.md state them.
func TestSpotBands(t *testing.T) {
	documented := map[string][2]float64{
		"burstable":   {0.55, 0.75},
		"general":     {0.50, 0.75},
		"compute":     {0.50, 0.75},
		"memory":      {0.50, 0.80},
		"storage":     {0.55, 0.80},
		"gpu":         {0.50, 0.80},
		"accelerator": {0.60, 0.80},
		"a1":          {0, 0.05},
	}
	tests := []struct {
		instanceType string
		group        string // "" for no spot pool
	}{
		{"t3a.2xlarge", "burstable"},
		{"t4g.micro", "burstable"},
		{"m5.large", "general"},
		{"m7i-flex.large", "general"},
		{"m5.metal", "general"}, // bare metal is sold as spot
		{"c6i.large", "compute"},
		{"r5.large", "memory"},
		{"x2iedn.xlarge", "memory"},
		{"z1d.large", "memory"},
		{"i3.large", "storage"},
		{"im4gn.large", "storage"},
		{"d3.xlarge", "storage"},
		{"g4dn.xlarge", "gpu"},
		{"p6-b200.48xlarge", "gpu"},
		{"inf2.xlarge", "accelerator"},
		{"vt1.3xlarge", "accelerator"},
		{"a1.large", "a1"},
		{"u-6tb1.56xlarge", ""},
		{"u7i-12tb.224xlarge", ""},
		{"u7in-32tb.224xlarge", ""},
		{"hpc7g.16xlarge", ""},
		{"mac2.metal", ""},
		{"mac-m4.metal", ""},
	}
	for _, tc := range tests {
		t.Run(tc.instanceType, func(t *testing.T) {
			it, ok := catalog.Get(tc.instanceType)
			if !ok {
				t.Fatalf("%s is not in the catalog", tc.instanceType)
			}
			band, sold := spotBandOf(it)
			if band.group != tc.group || sold != (tc.group != "") {
				t.Errorf("spotBandOf(%s) = %q, %v; want %q", tc.instanceType, band.group, sold, tc.group)
			}
			if want := documented[tc.group]; sold && [2]float64{band.minSavings, band.maxSavings} != want {
				t.Errorf("%s band saves %v-%v, documented %v-%v", tc.group, band.minSavings, band.maxSavings, want[0], want[1])
			}
		})
	}
}

// TestSpotBandsCoverCatalog checks that every family prefix of the catalog was decided: it
// has a band in spotBands or is in noSpotPrefixes, not both, so that a family added to the
// catalog does not take defaultSpotBand unnoticed; and that a prefix in neither table takes
// defaultSpotBand.
func TestSpotBandsCoverCatalog(t *testing.T) {
	for _, it := range catalog.All() {
		prefix, _ := familyGeneration(it.Family)
		_, banded := spotBands[prefix]
		if banded == noSpotPrefixes[prefix] {
			t.Errorf("%s: family prefix %q in spotBands %v, in noSpotPrefixes %v; want exactly one", it.Name, prefix, banded, noSpotPrefixes[prefix])
		}
	}
	unknown := catalog.InstanceType{Name: "zz9.large", Family: "zz9", Size: "large", OnDemandPriceUSD: 1}
	if band, sold := spotBandOf(unknown); !sold || band != defaultSpotBand {
		t.Errorf("spotBandOf(%s) = %+v, %v; want %+v, true", unknown.Name, band, sold, defaultSpotBand)
	}
}

// TestNoSpotFamilies checks through the SDK that high-memory, HPC and Mac types are not sold
// as spot: DescribeInstanceTypes does not list the spot usage class and
// DescribeSpotPriceHistory has no pool, while a bare metal type of a general-purpose family
// keeps both.
func TestNoSpotFamilies(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	tests := []struct {
		instanceType string
		spot         bool
	}{
		{"u-6tb1.56xlarge", false},
		{"u7i-12tb.224xlarge", false},
		{"u7in-16tb.224xlarge", false},
		{"hpc7g.16xlarge", false},
		{"mac2.metal", false},
		{"m5.metal", true},
	}
	for _, tc := range tests {
		t.Run(tc.instanceType, func(t *testing.T) {
			types, err := v.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(tc.instanceType)}})
			if err != nil {
				t.Fatal(err)
			}
			if len(types.InstanceTypes) != 1 {
				t.Fatalf("%d instance types, want 1", len(types.InstanceTypes))
			}
			if got := slices.Contains(types.InstanceTypes[0].SupportedUsageClasses, ec2types.UsageClassTypeSpot); got != tc.spot {
				t.Errorf("usage classes %v: spot %v, want %v", types.InstanceTypes[0].SupportedUsageClasses, got, tc.spot)
			}
			history, err := v.ec2.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{
				StartTime: aws.Time(testStart),
				Filters:   []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{tc.instanceType}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(history.SpotPriceHistory) > 0; got != tc.spot {
				t.Errorf("%d spot price rows, want spot %v", len(history.SpotPriceHistory), tc.spot)
			}
		})
	}
}
