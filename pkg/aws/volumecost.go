package aws

import (
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EBS's prices in us-east-1, per month of 730 hours, from https://aws.amazon.com/ebs/pricing/
// (December 2026): storage per GiB-month by volume type; for gp3, IOPS above the 3,000
// included per IOPS-month and throughput above the 125 MiB/s included per MiB/s-month; for
// io1 and io2, every provisioned IOPS per IOPS-month (io2's first tier, up to 32,000). Other
// regions price EBS within a few percent of these; the planner compares nodes of one node
// class, whose volumes are alike, so the figure weighs a node against pods, not against
// another region.
var (
	ebsPerGiBMonth = map[ec2types.VolumeType]float64{
		ec2types.VolumeTypeGp3: 0.08, ec2types.VolumeTypeGp2: 0.10, ec2types.VolumeTypeIo1: 0.125,
		ec2types.VolumeTypeIo2: 0.125, ec2types.VolumeTypeSt1: 0.045, ec2types.VolumeTypeSc1: 0.015,
		ec2types.VolumeTypeStandard: 0.05,
	}
	ebsPerIOPSMonth = map[ec2types.VolumeType]float64{
		ec2types.VolumeTypeGp3: 0.005, ec2types.VolumeTypeIo1: 0.065, ec2types.VolumeTypeIo2: 0.065,
	}
)

const (
	hoursPerMonth = 730
	// gp3IncludedIOPS and gp3IncludedThroughput (MiB/s) come with every gp3 volume;
	// gp3PerThroughputMonth is the price of each MiB/s above.
	gp3IncludedIOPS       = 3000
	gp3IncludedThroughput = 125
	gp3PerThroughputMonth = 0.04
)

// volumesCost is the hourly price of the EBS volumes of mappings, as launch templates give
// them to every node. A volume without a type is gp2, EC2's default for a block device
// mapping; one without a size (its snapshot's) is priced at nothing, as its size is not
// known here; instance store devices cost nothing beyond the instance.
func volumesCost(mappings []ec2types.LaunchTemplateBlockDeviceMappingRequest) float64 {
	var month float64
	for _, m := range mappings {
		ebs := m.Ebs
		if ebs == nil {
			continue
		}
		kind := ebs.VolumeType
		if kind == "" {
			kind = ec2types.VolumeTypeGp2
		}
		if ebs.VolumeSize != nil {
			month += float64(*ebs.VolumeSize) * ebsPerGiBMonth[kind]
		}
		if ebs.Iops != nil {
			iops := float64(*ebs.Iops)
			if kind == ec2types.VolumeTypeGp3 {
				iops = max(0, iops-gp3IncludedIOPS)
			}
			month += iops * ebsPerIOPSMonth[kind]
		}
		if ebs.Throughput != nil && kind == ec2types.VolumeTypeGp3 {
			month += max(0, float64(*ebs.Throughput)-gp3IncludedThroughput) * gp3PerThroughputMonth
		}
	}
	return month / hoursPerMonth
}
