package emulator

import (
	"math"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// noSpotPrefixes are the family prefixes (see familyGeneration) that EC2 does not sell as
// spot, so the emulator has no spot pool for them:
//   - mac, mac-m (Mac): "Mac instances are available only as On-Demand Instances. They are
//     not available as Spot Instances or Reserved Instances" (Amazon EC2 User Guide, "Amazon
//     EC2 Mac instances", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-mac-instances.html);
//   - u-, u (High Memory: u-*tb1, u7i, u7in, u7inh): On-Demand and Savings Plans only (Amazon
//     EC2 FAQs, "What instance types are available for High Memory instances?",
//     https://aws.amazon.com/ec2/faqs/);
//   - hpc (hpc6a, hpc6id, hpc7a, hpc7g): Savings Plans, On-Demand and Reserved Instances only
//     (Amazon EC2 FAQs, "Which pricing models do Hpc7g instances support?", and the same
//     question for Hpc7a, Hpc6id and Hpc6a, https://aws.amazon.com/ec2/faqs/).
//
// The Spot Instance Advisor's data (spot-advisor-data.json, see spotBands) agrees: it lists
// no u*, mac* or hpc* type in any region, while it does list bare metal types of the
// general-purpose, compute, memory, storage and GPU families, which therefore keep their
// spot pools.
var noSpotPrefixes = map[string]bool{"mac": true, "mac-m": true, "u": true, "u-": true, "hpc": true}

// spotBand is how much a family group's spot price saves off its on-demand price: between
// minSavings and maxSavings, as fractions of on-demand.
type spotBand struct {
	group                  string
	minSavings, maxSavings float64
}

// spotBands holds the band of each family group, keyed by family prefix. Source of every
// band: the AWS Spot Instance Advisor's "savings over On-Demand" per instance type
// (https://aws.amazon.com/ec2/spot/instance-advisor/, its data file
// https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json, as snapshotted in
// github.com/alexei-led/spotinfo at commit 05e9331 of 2025-07-28,
// internal/spot/data/spot-advisor-data.json), us-east-1 Linux: the band runs from the 10th to
// the 90th percentile (nearest rank) of the savings of the group's types there, rounded
// outward to 5 %. Types, 10th and 90th percentile:
//
//	burstable     t                    28 types  56 %  73 %  ->  55-75 %
//	general       m                   217 types  52 %  74 %  ->  50-75 %
//	compute       c                   201 types  54 %  75 %  ->  50-75 %
//	memory        r, x, z             270 types  53 %  77 %  ->  50-80 %
//	storage       i, d, h, im, is      97 types  56 %  80 %  ->  55-80 %
//	gpu           g, gr, p             55 types  53 %  78 %  ->  50-80 %
//	accelerator   inf, trn, dl, f, vt  20 types  60 %  79 %  ->  60-80 %
//	a1            a                     6 types   0 %   0 %  ->   0-5 %
//
// a1 is its own group because the Advisor shows no saving at all for it. Families newer than
// the snapshot (c8i, m8a, g7e, ...) take their group's band. A prefix not listed here takes
// defaultSpotBand.
var spotBands = func() map[string]spotBand {
	bands := map[string]spotBand{}
	for _, g := range []struct {
		band     spotBand
		prefixes []string
	}{
		{spotBand{"burstable", 0.55, 0.75}, []string{"t"}},
		{spotBand{"general", 0.50, 0.75}, []string{"m"}},
		{spotBand{"compute", 0.50, 0.75}, []string{"c"}},
		{spotBand{"memory", 0.50, 0.80}, []string{"r", "x", "z"}},
		{spotBand{"storage", 0.55, 0.80}, []string{"i", "d", "h", "im", "is"}},
		{spotBand{"gpu", 0.50, 0.80}, []string{"g", "gr", "p"}},
		{spotBand{"accelerator", 0.60, 0.80}, []string{"inf", "trn", "dl", "f", "vt"}},
		{spotBand{"a1", 0, 0.05}, []string{"a"}},
	} {
		for _, p := range g.prefixes {
			bands[p] = g.band
		}
	}
	return bands
}()

// defaultSpotBand is the band of a family prefix spotBands does not name (none in today's
// catalog): no source gives a figure for it, so it takes the general-purpose band, which
// overlaps every group's band but a1's.
var defaultSpotBand = spotBand{"default", 0.50, 0.75}

// spotBandOf returns the spot band of a catalog type, and false if EC2 does not sell the type
// as spot: its family is in noSpotPrefixes, or it has no on-demand price (the mac*.metal
// types, which launch only on dedicated hosts).
func spotBandOf(it catalog.InstanceType) (spotBand, bool) {
	prefix, _ := familyGeneration(it.Family)
	if it.OnDemandPriceUSD == 0 || noSpotPrefixes[prefix] {
		return spotBand{}, false
	}
	if b, ok := spotBands[prefix]; ok {
		return b, true
	}
	return defaultSpotBand, true
}

// ModelSpotPrice returns the spot price of instanceType in zone in USD per hour by the
// emulator's model, before any override set with SetSpotPrice, and whether the pool exists:
//
//	savings = band.min + (band.max - band.min) * (FNV-1a 64-bit hash of "spot/<type>/<zone>" mod 1e6) / 1e6
//	price   = on-demand price * (1 - savings), rounded to 4 decimals, at least 0.0001
//
// where band is the type's family group's (spotBands), so every price saves between its
// band's bounds and differs per zone. A pool exists where the zone offers the type and EC2
// sells the type as spot (spotBandOf).
func ModelSpotPrice(instanceType, zone string) (float64, bool) {
	it, ok := catalog.Get(instanceType)
	if !ok || !Offered(instanceType, zone) {
		return 0, false
	}
	band, ok := spotBandOf(it)
	if !ok {
		return 0, false
	}
	u := float64(hash64("spot/"+instanceType+"/"+zone)%1_000_000) / 1_000_000
	savings := band.minSavings + (band.maxSavings-band.minSavings)*u
	return math.Max(0.0001, math.Round(it.OnDemandPriceUSD*(1-savings)*1e4)/1e4), true
}

// capacityScore is the emulated depth of a spot pool in [0, 1): higher means more spare
// capacity. capacity-optimized allocation prefers the deepest pools.
func capacityScore(instanceType, zone string) float64 {
	return float64(hash64("capacity/"+instanceType+"/"+zone)%1_000_000) / 1_000_000
}
