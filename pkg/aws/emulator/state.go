package emulator

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// state is everything the emulator holds. Every field is guarded by Emulator.mu.
type state struct {
	vpcID          string
	subnets        []*subnetState
	securityGroups []*SecurityGroup
	images         map[string]*Image
	imageOrder     []string
	ssm            map[string]string

	instances     map[string]*instance
	instanceOrder []string
	usedIPs       map[string]bool

	launchTemplates map[string]*launchTemplate // by ID
	ltOrder         []string

	fleets map[string]*fleetRecord // by client token

	queues     map[string]*queue // by name
	queueOrder []string

	faults faults
	calls  []Call
	// callBase is the number of calls ResetCalls forgot: calls[i] is call number callBase+i.
	callBase int
	// invalid holds an Options error, answered to every API call.
	invalid error
}

func newState(o Options) *state {
	s := &state{
		vpcID:           VPCID(o.ClusterName),
		images:          map[string]*Image{},
		ssm:             map[string]string{},
		instances:       map[string]*instance{},
		usedIPs:         map[string]bool{},
		launchTemplates: map[string]*launchTemplate{},
		fleets:          map[string]*fleetRecord{},
		queues:          map[string]*queue{},
		faults:          newFaults(),
	}
	for _, sn := range o.Subnets {
		st, err := newSubnetState(sn)
		if err != nil {
			s.invalid = err
			continue
		}
		st.Tags = maps.Clone(sn.Tags)
		s.subnets = append(s.subnets, st)
	}
	for _, sg := range o.SecurityGroups {
		sg.Tags = maps.Clone(sg.Tags)
		s.securityGroups = append(s.securityGroups, &sg)
	}
	for _, ami := range publicAMIs() {
		img := ami.image
		s.addImage(&img)
		s.ssm[ami.parameter] = img.ID
	}
	for _, img := range o.Images {
		img.Tags = maps.Clone(img.Tags)
		if img.CreationDate.IsZero() {
			img.CreationDate = amiCreationDate
		}
		if img.OwnerID == "" {
			img.OwnerID = AccountID
		}
		s.addImage(&img)
	}
	maps.Copy(s.ssm, o.SSMParameters)
	for _, name := range o.Queues {
		if _, ok := s.queues[name]; ok {
			s.invalid = fmt.Errorf("queue %q named twice", name)
			continue
		}
		s.queues[name] = &queue{name: name}
		s.queueOrder = append(s.queueOrder, name)
	}
	return s
}

func (s *state) addImage(img *Image) {
	if _, ok := s.images[img.ID]; !ok {
		s.imageOrder = append(s.imageOrder, img.ID)
	}
	s.images[img.ID] = img
}

func (s *state) subnet(id string) *subnetState {
	for _, sn := range s.subnets {
		if sn.ID == id {
			return sn
		}
	}
	return nil
}

// zoneSubnet returns the first subnet of zone, the one a launch without a subnet uses.
func (s *state) zoneSubnet(zone string) *subnetState {
	for _, sn := range s.subnets {
		if sn.Zone == zone {
			return sn
		}
	}
	return nil
}

func (s *state) securityGroup(id string) *SecurityGroup {
	for _, sg := range s.securityGroups {
		if sg.ID == id {
			return sg
		}
	}
	return nil
}

// launchTemplateByName returns the launch template with the given name, or nil.
func (s *state) launchTemplateByName(name string) *launchTemplate {
	for _, id := range s.ltOrder {
		if lt := s.launchTemplates[id]; lt.Name == name {
			return lt
		}
	}
	return nil
}

// liveInstances counts the instances of a subnet that hold an address (not yet terminated).
func (s *state) liveInstances(subnetID string, now time.Time, o Options) int {
	n := 0
	for _, inst := range s.instances {
		if inst.SubnetID == subnetID && inst.state(now, o) != StateTerminated {
			n++
		}
	}
	return n
}

// freeIPs is the subnet's AvailableIpAddressCount now.
func (s *state) freeIPs(sn *subnetState, now time.Time, o Options) int {
	return max(0, sn.FreeIPs-s.liveInstances(sn.ID, now, o))
}

// visibleInstances returns the instances DescribeInstances shows now, in launch order, and
// forgets the terminated ones past their retention.
func (s *state) visibleInstances(now time.Time, o Options) []*instance {
	var out []*instance
	kept := s.instanceOrder[:0]
	for _, id := range s.instanceOrder {
		inst := s.instances[id]
		if inst.gone(now, o) {
			// The address stays in usedIPs: a new instance must not take the name of a
			// Node that may still exist.
			delete(s.instances, id)
			continue
		}
		kept = append(kept, id)
		out = append(out, inst)
	}
	s.instanceOrder = slices.Clip(kept)
	return out
}
