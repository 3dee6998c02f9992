package aws

import "strings"

// The CPU credits of burstable instances (t2, t3, t3a, t4g): a node of such a type sustains
// its baseline, a fraction of each vCPU, and in unlimited mode, EC2's default for t3, t3a
// and t4g, pays for what it uses above it, "surplus credits", at surplusCPUPrice per vCPU
// hour (Linux; Amazon EC2 User Guide, "Unlimited mode for burstable performance instances",
// and https://aws.amazon.com/ec2/pricing/on-demand/#T2.2FT3.2FT4g_Unlimited_Mode_Pricing).
// The planner counts the cpu its pods request above the baseline at that price: a 1-CPU pod
// costs a t3.nano (5 % of 2 vCPUs) 0.045 USD an hour of surplus credits on top of its
// 0.0052, which makes it no bargain.
const surplusCPUPrice = 0.05

// burstBaseline is the baseline utilization per vCPU of the burstable types by size, from
// the Amazon EC2 User Guide's table "Key concepts and definitions for burstable performance
// instances" (t3, t3a and t4g share it; t2 differs from xlarge up).
var burstBaseline = map[string]map[string]float64{
	"t3": {"nano": 0.05, "micro": 0.10, "small": 0.20, "medium": 0.20, "large": 0.30, "xlarge": 0.40, "2xlarge": 0.40},
	"t2": {"nano": 0.05, "micro": 0.10, "small": 0.20, "medium": 0.20, "large": 0.30, "xlarge": 0.225, "2xlarge": 0.17},
}

// baselineCPU returns the cores a node of the named type sustains without surplus credits,
// and false if the type is not burstable.
func baselineCPU(name string, vcpu int64) (float64, bool) {
	family, size, _ := strings.Cut(name, ".")
	table := burstBaseline[family]
	switch family {
	case "t3a", "t4g":
		table = burstBaseline["t3"]
	}
	per, ok := table[size]
	if !ok {
		return 0, false
	}
	return per * float64(vcpu), true
}
