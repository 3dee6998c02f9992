package emulator

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"time"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// pool is one (launch template, instance type, subnet) a fleet may launch into.
type pool struct {
	order        int
	lt           *launchTemplate
	echo         ltAndOverridesXML
	instanceType string
	subnet       *subnetState
	imageID      string
	override     fleetOverride
}

// resolvePools turns the request's launch template configurations into pools, checking that
// the launch templates, versions and subnets exist. Callers hold e.mu.
func (e *Emulator) resolvePools(req *fleetRequest) ([]*pool, *apiError) {
	var pools []*pool
	for _, config := range req.configs {
		lt, apiErr := e.findLaunchTemplate(config.spec.LaunchTemplateID, config.spec.LaunchTemplateName)
		if apiErr != nil {
			return nil, apiErr
		}
		if apiErr := checkVersion(lt, config.spec.Version); apiErr != nil {
			return nil, apiErr
		}
		overrides := config.overrides
		if len(overrides) == 0 {
			// Without overrides the fleet launches the template's own type.
			overrides = []fleetOverride{{}}
		}
		for _, o := range overrides {
			pl := &pool{order: len(pools), lt: lt, override: o,
				echo: ltAndOverridesXML{LaunchTemplateSpecification: config.spec, Overrides: o.echo}}
			pl.instanceType = orDefault(o.echo.InstanceType, lt.InstanceType)
			if pl.instanceType == "" {
				return nil, errMissing("InstanceType (in the overrides or the launch template " + lt.Name + ")")
			}
			pl.imageID = orDefault(o.echo.ImageID, lt.ImageID)
			switch {
			case o.echo.SubnetID != "":
				if pl.subnet = e.state.subnet(o.echo.SubnetID); pl.subnet == nil {
					return nil, errCode("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", o.echo.SubnetID)
				}
				if z := o.echo.AvailabilityZone; z != "" && z != pl.subnet.Zone {
					return nil, errCombination("The subnet %s is in %s, not in the override's availability zone %s", pl.subnet.ID, pl.subnet.Zone, z)
				}
			case o.echo.AvailabilityZone != "":
				if pl.subnet = e.state.zoneSubnet(o.echo.AvailabilityZone); pl.subnet == nil {
					return nil, errInvalidValue("There is no subnet in %s", o.echo.AvailabilityZone)
				}
			default:
				if len(e.state.subnets) == 0 {
					return nil, errInvalidValue("There is no subnet to launch into")
				}
				pl.subnet = e.state.subnets[0]
			}
			pools = append(pools, pl)
		}
	}
	return pools, nil
}

// launchFleet launches the request's on-demand units, then its spot units, each into the best
// pool by the allocation strategy that has not failed yet. A pool that cannot launch adds an
// error entry and is not tried again. Callers hold e.mu.
func (e *Emulator) launchFleet(req *fleetRequest, pools []*pool) *createFleetResponse {
	now := e.now()
	resp := &createFleetResponse{FleetID: "fleet-" + e.uuid(), Errors: items[fleetErrorXML]{}, Instances: items[fleetInstancesXML]{}}
	reservationID := e.newID("r-")
	groups := map[[2]int]int{} // (pool, capacity type) -> index in resp.Instances
	for ctIndex, ct := range []string{CapacityTypeOnDemand, CapacityTypeSpot} {
		units, strategy := req.onDemandUnits, req.onDemandStrategy
		if ct == CapacityTypeSpot {
			units, strategy = req.spotUnits, req.spotStrategy
		}
		failed := map[int]bool{}
		for range units {
			launched := false
			for !launched {
				pl := e.choosePool(pools, failed, ct, strategy)
				if pl == nil {
					break
				}
				if code, msg := e.checkPool(pl, ct, now); code != "" {
					failed[pl.order] = true
					resp.Errors = append(resp.Errors, fleetErrorXML{LaunchTemplateAndOverrides: pl.echo, Lifecycle: ct, ErrorCode: code, ErrorMessage: msg})
					continue
				}
				inst, err := e.launch(pl, ct, req, resp.FleetID, reservationID, now)
				if err != nil {
					failed[pl.order] = true
					resp.Errors = append(resp.Errors, fleetErrorXML{LaunchTemplateAndOverrides: pl.echo, Lifecycle: ct,
						ErrorCode: "InsufficientFreeAddressesInSubnet", ErrorMessage: err.Error()})
					continue
				}
				launched = true
				key := [2]int{pl.order, ctIndex}
				g, ok := groups[key]
				if !ok {
					g = len(resp.Instances)
					groups[key] = g
					resp.Instances = append(resp.Instances, fleetInstancesXML{LaunchTemplateAndOverrides: pl.echo, Lifecycle: ct,
						InstanceIDs: items[string]{}, InstanceType: pl.instanceType, AvailabilityZone: pl.subnet.Zone,
						AvailabilityZoneID: zoneID(pl.subnet.Zone), SubnetID: pl.subnet.ID})
				}
				resp.Instances[g].InstanceIDs = append(resp.Instances[g].InstanceIDs, inst.ID)
			}
			if !launched {
				break
			}
		}
	}
	return resp
}

// poolPrice is a pool's price for the capacity type, +Inf where it has none.
func (e *Emulator) poolPrice(pl *pool, ct string) float64 {
	if ct == CapacityTypeSpot {
		if price, _, ok := e.spotPrice(pl.instanceType, pl.subnet.Zone); ok {
			return price
		}
		return math.Inf(1)
	}
	if it, ok := catalog.Get(pl.instanceType); ok && it.OnDemandPriceUSD > 0 {
		return it.OnDemandPriceUSD
	}
	return math.Inf(1)
}

// choosePool picks the next pool to try by the allocation strategy, documented in the
// package doc; ties go to the pool listed first. It returns nil when every pool has failed.
func (e *Emulator) choosePool(pools []*pool, failed map[int]bool, ct, strategy string) *pool {
	var candidates []*pool
	for _, pl := range pools {
		if !failed[pl.order] {
			candidates = append(candidates, pl)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	priority := func(pl *pool) float64 {
		if pl.override.hasPriority {
			return pl.override.priority
		}
		return math.Inf(1)
	}
	capacity := func(pl *pool) float64 {
		if math.IsInf(e.poolPrice(pl, ct), 1) {
			return -1
		}
		return capacityScore(pl.instanceType, pl.subnet.Zone)
	}
	// best returns the first candidate with the smallest key.
	best := func(pls []*pool, key func(*pool) [2]float64) *pool {
		var out *pool
		var outKey [2]float64
		for _, pl := range pls {
			k := key(pl)
			if out == nil || k[0] < outKey[0] || k[0] == outKey[0] && k[1] < outKey[1] {
				out, outKey = pl, k
			}
		}
		return out
	}
	price := func(pl *pool) [2]float64 { return [2]float64{e.poolPrice(pl, ct), 0} }
	switch {
	case ct == CapacityTypeOnDemand && strategy == "prioritized":
		return best(candidates, func(pl *pool) [2]float64 { return [2]float64{priority(pl), e.poolPrice(pl, ct)} })
	case ct == CapacityTypeOnDemand:
		return best(candidates, price)
	case strategy == "capacity-optimized":
		return best(candidates, func(pl *pool) [2]float64 { return [2]float64{-capacity(pl), 0} })
	case strategy == "capacity-optimized-prioritized":
		return best(candidates, func(pl *pool) [2]float64 { return [2]float64{priority(pl), -capacity(pl)} })
	case strategy == "price-capacity-optimized":
		cheapest := e.poolPrice(best(candidates, price), ct)
		if math.IsInf(cheapest, 1) {
			return candidates[0]
		}
		var affordable []*pool
		for _, pl := range candidates {
			if e.poolPrice(pl, ct) <= cheapest*1.2 {
				affordable = append(affordable, pl)
			}
		}
		return best(affordable, func(pl *pool) [2]float64 { return [2]float64{-capacity(pl), e.poolPrice(pl, ct)} })
	}
	// lowest-price and diversified (one pool at a time is the cheapest).
	return best(candidates, price)
}

// checkPool says why a pool cannot launch an instance of the capacity type now, as an EC2
// fleet error code and message, or returns "" when it can. Callers hold e.mu.
func (e *Emulator) checkPool(pl *pool, ct string, now time.Time) (code, message string) {
	zone := pl.subnet.Zone
	if !Offered(pl.instanceType, zone) {
		return "Unsupported", fmt.Sprintf("Your requested instance type (%s) is not supported in your requested Availability Zone (%s). Please retry your request by not specifying an Availability Zone or choosing %s.",
			pl.instanceType, zone, strings.Join(offeredZones(pl.instanceType), ", "))
	}
	price := e.poolPrice(pl, ct)
	switch {
	case math.IsInf(price, 1) && ct == CapacityTypeSpot:
		return "Unsupported", fmt.Sprintf("The instance type %s is not supported for Spot Instances.", pl.instanceType)
	case math.IsInf(price, 1):
		return "Unsupported", fmt.Sprintf("The instance type %s can only be launched on a Dedicated Host.", pl.instanceType)
	case ct == CapacityTypeSpot && pl.override.maxPrice > 0 && price > pl.override.maxPrice:
		return "SpotMaxPriceTooLow", fmt.Sprintf("Your Spot request price of %g is lower than the minimum required Spot request fulfillment price of %g.", pl.override.maxPrice, price)
	case e.state.faults.insufficientCapacity(pl.instanceType, zone, ct):
		return "InsufficientInstanceCapacity", fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity. You can currently get %s capacity by not specifying an Availability Zone in your request or choosing other Availability Zones.",
			pl.instanceType, zone, pl.instanceType)
	}
	if pl.imageID == "" {
		return "MissingParameter", "The request must contain the parameter ImageId"
	}
	img, ok := e.state.images[pl.imageID]
	if !ok {
		return "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", pl.imageID)
	}
	it, _ := catalog.Get(pl.instanceType)
	if arch := ec2Architecture(it.Architecture); arch != img.Architecture {
		return "InvalidParameterValue", fmt.Sprintf("The architecture '%s' of the specified instance type does not match the architecture '%s' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.", arch, img.Architecture)
	}
	for _, id := range pl.lt.SecurityGroupIDs {
		if e.state.securityGroup(id) == nil {
			return "InvalidGroup.NotFound", fmt.Sprintf("The security group '%s' does not exist", id)
		}
	}
	if e.state.freeIPs(pl.subnet, now, e.opts) == 0 {
		return "InsufficientFreeAddressesInSubnet", fmt.Sprintf("There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", pl.subnet.ID)
	}
	return "", ""
}

// jitter draws a duration in [0, width). It draws nothing when width is 0, so that the jitter
// options shift the seeded IDs and addresses only when they are set. Callers hold e.mu.
func (e *Emulator) jitter(width time.Duration) time.Duration {
	if width <= 0 {
		return 0
	}
	return time.Duration(e.rand.Int64N(int64(width)))
}

// launch creates an instance in the pool. Callers hold e.mu.
func (e *Emulator) launch(pl *pool, ct string, req *fleetRequest, fleetID, reservationID string, now time.Time) (*instance, error) {
	ip, err := e.allocateIP(pl.subnet, now)
	if err != nil {
		return nil, err
	}
	tags := maps.Clone(pl.lt.InstanceTags)
	if tags == nil {
		tags = map[string]string{}
	}
	maps.Copy(tags, req.instanceTags)
	tags["aws:ec2:fleet-id"] = fleetID
	tags["aws:ec2launchtemplate:id"] = pl.lt.ID
	tags["aws:ec2launchtemplate:version"] = "1"
	groups := pl.lt.SecurityGroupIDs
	if len(groups) == 0 {
		for _, sg := range e.state.securityGroups {
			if sg.Name == "default" {
				groups = []string{sg.ID}
			}
		}
	}
	inst := &instance{
		Instance: Instance{
			ID:                 e.newID("i-"),
			InstanceType:       pl.instanceType,
			Zone:               pl.subnet.Zone,
			SubnetID:           pl.subnet.ID,
			ImageID:            pl.imageID,
			CapacityType:       ct,
			PrivateIP:          ip,
			PrivateDNSName:     privateDNSName(ip),
			LaunchTime:         now,
			Tags:               tags,
			SecurityGroupIDs:   groups,
			LaunchTemplateID:   pl.lt.ID,
			LaunchTemplateName: pl.lt.Name,
			UserData:           pl.lt.UserData,
			MetadataOptions:    pl.lt.MetadataOptions,
			FleetID:            fleetID,
			ClientToken:        req.token,
		},
		reservationID:  reservationID,
		launchTemplate: pl.lt,
		runningAt:      now.Add(e.opts.LaunchLatency + e.jitter(e.opts.LaunchLatencyJitter)),
		joinDelay:      e.opts.JoinDelay + e.jitter(e.opts.JoinDelayJitter),
	}
	if e.state.faults.neverJoinNext > 0 {
		e.state.faults.neverJoinNext--
		inst.NeverJoin = true
	}
	e.state.instances[inst.ID] = inst
	e.state.instanceOrder = append(e.state.instanceOrder, inst.ID)
	e.log.V(4).Info("Launched instance", "instance", inst.ID, "instanceType", inst.InstanceType, "zone", inst.Zone, "capacityType", ct)
	return inst, nil
}
