package emulator

import (
	"fmt"
	"net/netip"
	"time"
)

// Subnet is an emulated VPC subnet.
type Subnet struct {
	// ID such as "subnet-0123456789abcdef0".
	ID string
	// Zone is the availability zone, one of Zones.
	Zone string
	// CIDR is the IPv4 block instances take their private addresses from, e.g. "10.0.16.0/20".
	CIDR string
	// Tags of the subnet.
	Tags map[string]string
	// FreeIPs is the number of free addresses before any instance is launched; each live
	// instance takes one. Zero means the CIDR's size minus the 5 addresses AWS reserves.
	FreeIPs int
}

// SecurityGroup is an emulated security group of the VPC.
type SecurityGroup struct {
	// ID such as "sg-0123456789abcdef0".
	ID string
	// Name and Description of the group.
	Name        string
	Description string
	// Tags of the group.
	Tags map[string]string
}

// Image is an emulated AMI.
type Image struct {
	// ID such as "ami-0123456789abcdef0".
	ID string
	// Name of the image.
	Name string
	// Architecture is EC2's name: "x86_64" or "arm64".
	Architecture string
	// OwnerID is the owning account; OwnerAlias "amazon" for public AMIs.
	OwnerID    string
	OwnerAlias string
	// Description of the image.
	Description string
	// CreationDate of the image.
	CreationDate time.Time
	// Public is true for the AMIs behind the public SSM parameters.
	Public bool
	// Tags of the image.
	Tags map[string]string
}

// VPCID is the ID of the one VPC every subnet and security group belongs to.
func VPCID(clusterName string) string {
	return deterministicID("vpc-", "vpc/"+clusterName)
}

// DefaultSubnets returns the subnets an emulator has unless Options.Subnets says otherwise:
// one per zone, the i-th zone's at 10.0.(16*i).0/20 (4091 free addresses), with a
// deterministic ID and the tags Name=<cluster>-private-<zone>, DiscoveryTagKey=<cluster> and
// kubernetes.io/role/internal-elb=1.
func DefaultSubnets(clusterName string) []Subnet {
	subnets := make([]Subnet, 0, len(Zones))
	for i, zone := range Zones {
		subnets = append(subnets, Subnet{
			ID:   deterministicID("subnet-", "subnet/"+clusterName+"/"+zone),
			Zone: zone,
			CIDR: fmt.Sprintf("10.0.%d.0/20", 16*i),
			Tags: map[string]string{
				"Name":                            clusterName + "-private-" + zone,
				DiscoveryTagKey:                   clusterName,
				"kubernetes.io/role/internal-elb": "1",
			},
		})
	}
	return subnets
}

// DefaultSecurityGroups returns the security groups an emulator has unless
// Options.SecurityGroups says otherwise: the VPC's untagged "default" group and
// "<cluster>-node" tagged Name=<cluster>-node and DiscoveryTagKey=<cluster>.
func DefaultSecurityGroups(clusterName string) []SecurityGroup {
	return []SecurityGroup{
		{
			ID:          deterministicID("sg-", "sg/"+clusterName+"/default"),
			Name:        "default",
			Description: "default VPC security group",
		},
		{
			ID:          deterministicID("sg-", "sg/"+clusterName+"/node"),
			Name:        clusterName + "-node",
			Description: "Nodes of " + clusterName,
			Tags:        map[string]string{"Name": clusterName + "-node", DiscoveryTagKey: clusterName},
		},
	}
}

// subnetState is a subnet with its address bookkeeping.
type subnetState struct {
	Subnet
	prefix netip.Prefix
}

func newSubnetState(s Subnet) (*subnetState, error) {
	prefix, err := netip.ParsePrefix(s.CIDR)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() > 28 {
		return nil, fmt.Errorf("subnet %s: CIDR %q is not an IPv4 block of /28 or larger", s.ID, s.CIDR)
	}
	if !validZone(s.Zone) {
		return nil, fmt.Errorf("subnet %s: unknown zone %q", s.ID, s.Zone)
	}
	if s.FreeIPs == 0 {
		s.FreeIPs = 1<<(32-prefix.Bits()) - 5
	}
	return &subnetState{Subnet: s, prefix: prefix.Masked()}, nil
}

// addressCount is the number of addresses in the subnet's block.
func (s *subnetState) addressCount() int {
	return 1 << (32 - s.prefix.Bits())
}

// address returns the n-th address of the block.
func (s *subnetState) address(n int) netip.Addr {
	a := s.prefix.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
