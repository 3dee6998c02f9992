package emulator

import (
	"strconv"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// Limits of CreateFleet the emulator enforces.
const (
	maxLaunchTemplateConfigs = 50
	// maxOverrides is the most overrides per launch template config nodewright may send.
	maxOverrides = 60
	// maxFleetCapacity bounds an instant fleet's TotalTargetCapacity.
	maxFleetCapacity = 1000
)

var (
	spotStrategies = []string{"lowest-price", "diversified", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized"}
	odStrategies   = []string{"lowest-price", "prioritized"}
)

type createFleetResponse struct {
	responseMeta
	FleetID   string                   `xml:"fleetId"`
	Errors    items[fleetErrorXML]     `xml:"errorSet"`
	Instances items[fleetInstancesXML] `xml:"fleetInstanceSet"`
}

type fleetErrorXML struct {
	LaunchTemplateAndOverrides ltAndOverridesXML `xml:"launchTemplateAndOverrides"`
	Lifecycle                  string            `xml:"lifecycle"`
	ErrorCode                  string            `xml:"errorCode"`
	ErrorMessage               string            `xml:"errorMessage"`
}

type fleetInstancesXML struct {
	LaunchTemplateAndOverrides ltAndOverridesXML `xml:"launchTemplateAndOverrides"`
	Lifecycle                  string            `xml:"lifecycle"`
	InstanceIDs                items[string]     `xml:"instanceIds"`
	InstanceType               string            `xml:"instanceType"`
	AvailabilityZone           string            `xml:"availabilityZone"`
	AvailabilityZoneID         string            `xml:"availabilityZoneId"`
	SubnetID                   string            `xml:"subnetId"`
}

type ltAndOverridesXML struct {
	LaunchTemplateSpecification ltSpecXML    `xml:"launchTemplateSpecification"`
	Overrides                   overridesXML `xml:"overrides"`
}

type ltSpecXML struct {
	LaunchTemplateID   string `xml:"launchTemplateId,omitempty"`
	LaunchTemplateName string `xml:"launchTemplateName,omitempty"`
	Version            string `xml:"version"`
}

type overridesXML struct {
	InstanceType     string `xml:"instanceType,omitempty"`
	SubnetID         string `xml:"subnetId,omitempty"`
	AvailabilityZone string `xml:"availabilityZone,omitempty"`
	Priority         string `xml:"priority,omitempty"`
	MaxPrice         string `xml:"maxPrice,omitempty"`
	WeightedCapacity string `xml:"weightedCapacity,omitempty"`
	ImageID          string `xml:"imageId,omitempty"`
}

// fleetRecord is a CreateFleet answer kept for its client token.
type fleetRecord struct {
	fingerprint uint64
	response    createFleetResponse
}

// fleetRequest is a validated CreateFleet request.
type fleetRequest struct {
	configs          []fleetConfig
	onDemandUnits    int
	spotUnits        int
	spotStrategy     string
	onDemandStrategy string
	instanceTags     map[string]string
	token            string
}

type fleetConfig struct {
	spec      ltSpecXML
	overrides []fleetOverride
}

type fleetOverride struct {
	echo        overridesXML
	priority    float64
	hasPriority bool
	maxPrice    float64
}

// parseFleetRequest checks a CreateFleet request as EC2 does before looking at any resource.
func parseFleetRequest(p params) (*fleetRequest, *apiError) {
	fleetType, apiErr := p.enum("Type", "request", "maintain", "instant")
	if apiErr != nil {
		return nil, apiErr
	}
	if fleetType != "instant" {
		return nil, errUnsupported("The emulator implements only instant fleets (Type=instant); got %q", orDefault(fleetType, "maintain"))
	}
	req := &fleetRequest{token: p["ClientToken"]}
	if len(req.token) > 64 {
		return nil, errInvalidValue("The client token must be at most 64 characters")
	}
	configs := p.structs("LaunchTemplateConfigs")
	if len(configs) == 0 {
		return nil, errMissing("LaunchTemplateConfigs")
	}
	if len(configs) > maxLaunchTemplateConfigs {
		return nil, errInvalidValue("You can specify at most %d launch template configurations", maxLaunchTemplateConfigs)
	}
	for i, c := range configs {
		config, apiErr := parseFleetConfig(c, i+1)
		if apiErr != nil {
			return nil, apiErr
		}
		req.configs = append(req.configs, config)
	}
	if apiErr := req.parseCapacity(p); apiErr != nil {
		return nil, apiErr
	}
	if req.spotStrategy, apiErr = p.enum("SpotOptions.AllocationStrategy", spotStrategies...); apiErr != nil {
		return nil, apiErr
	}
	if req.onDemandStrategy, apiErr = p.enum("OnDemandOptions.AllocationStrategy", odStrategies...); apiErr != nil {
		return nil, apiErr
	}
	req.spotStrategy = orDefault(req.spotStrategy, "lowest-price")
	req.onDemandStrategy = orDefault(req.onDemandStrategy, "lowest-price")
	for _, unsupported := range []string{"SpotOptions.SingleInstanceType", "SpotOptions.SingleAvailabilityZone",
		"SpotOptions.MinTargetCapacity", "SpotOptions.MaxTotalPrice", "OnDemandOptions.SingleInstanceType",
		"OnDemandOptions.SingleAvailabilityZone", "OnDemandOptions.MinTargetCapacity", "OnDemandOptions.MaxTotalPrice",
		"OnDemandOptions.CapacityReservationOptions"} {
		if p.has(unsupported) {
			return nil, errUnsupported("The emulator does not implement %s", unsupported)
		}
	}
	if _, apiErr := p.enum("SpotOptions.InstanceInterruptionBehavior", "terminate", "stop", "hibernate"); apiErr != nil {
		return nil, apiErr
	}
	tags, apiErr := tagSpecifications(p, "TagSpecification", "fleet", "instance", "volume", "network-interface")
	if apiErr != nil {
		return nil, apiErr
	}
	req.instanceTags = tags["instance"]
	return req, nil
}

func parseFleetConfig(c params, n int) (fleetConfig, *apiError) {
	prefix := "LaunchTemplateConfigs." + strconv.Itoa(n)
	spec := c.sub("LaunchTemplateSpecification")
	config := fleetConfig{spec: ltSpecXML{LaunchTemplateID: spec["LaunchTemplateId"], LaunchTemplateName: spec["LaunchTemplateName"], Version: spec["Version"]}}
	switch {
	case config.spec.LaunchTemplateID == "" && config.spec.LaunchTemplateName == "":
		return config, errMissing(prefix + ".LaunchTemplateSpecification.LaunchTemplateId or LaunchTemplateName")
	case config.spec.LaunchTemplateID != "" && config.spec.LaunchTemplateName != "":
		return config, errCombination("Specify the launch template of %s by ID or by name, not both", prefix)
	case config.spec.Version == "":
		return config, errMissing(prefix + ".LaunchTemplateSpecification.Version")
	}
	overrides := c.structs("Overrides")
	if len(overrides) > maxOverrides {
		return config, errInvalidValue("%s has %d overrides; a launch template configuration takes at most %d", prefix, len(overrides), maxOverrides)
	}
	for _, o := range overrides {
		override, apiErr := parseOverride(o)
		if apiErr != nil {
			return config, apiErr
		}
		config.overrides = append(config.overrides, override)
	}
	return config, nil
}

func parseOverride(o params) (fleetOverride, *apiError) {
	if o.has("InstanceRequirements") {
		return fleetOverride{}, errUnsupported("The emulator does not implement attribute-based instance type selection (InstanceRequirements)")
	}
	out := fleetOverride{echo: overridesXML{
		InstanceType:     o["InstanceType"],
		SubnetID:         o["SubnetId"],
		AvailabilityZone: o["AvailabilityZone"],
		Priority:         o["Priority"],
		MaxPrice:         o["MaxPrice"],
		WeightedCapacity: o["WeightedCapacity"],
		ImageID:          o["ImageId"],
	}}
	if t := out.echo.InstanceType; t != "" {
		if _, ok := catalog.Get(t); !ok {
			return out, errInvalidValue("The instance type '%s' does not exist", t)
		}
	}
	if z := out.echo.AvailabilityZone; z != "" && !validZone(z) {
		return out, errInvalidValue("Invalid availability zone: [%s]", z)
	}
	if id := out.echo.SubnetID; id != "" && !subnetIDPattern.MatchString(id) {
		return out, errCode("InvalidSubnetID.Malformed", "Invalid id: \"%s\"", id)
	}
	if id := out.echo.ImageID; id != "" && !imageIDPattern.MatchString(id) {
		return out, errCode("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", id)
	}
	if w := out.echo.WeightedCapacity; w != "" {
		if f, err := strconv.ParseFloat(w, 64); err != nil || f != 1 {
			return out, errUnsupported("The emulator supports only a WeightedCapacity of 1; got %q", w)
		}
	}
	if s := out.echo.Priority; s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			return out, errInvalidValue("Invalid value '%s' for Priority", s)
		}
		out.priority, out.hasPriority = f, true
	}
	if s := out.echo.MaxPrice; s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 {
			return out, errInvalidValue("Invalid value '%s' for MaxPrice", s)
		}
		out.maxPrice = f
	}
	return out, nil
}

// parseCapacity reads TargetCapacitySpecification into the on-demand and spot unit counts.
// DefaultTargetCapacityType defaults to on-demand.
func (req *fleetRequest) parseCapacity(p params) *apiError {
	if !p.has("TargetCapacitySpecification") {
		return errMissing("TargetCapacitySpecification")
	}
	tc := p.sub("TargetCapacitySpecification")
	if _, ok := tc["TotalTargetCapacity"]; !ok {
		return errMissing("TargetCapacitySpecification.TotalTargetCapacity")
	}
	total, _, apiErr := tc.integer("TotalTargetCapacity", 1, maxFleetCapacity)
	if apiErr != nil {
		return apiErr
	}
	onDemand, _, apiErr := tc.integer("OnDemandTargetCapacity", 0, maxFleetCapacity)
	if apiErr != nil {
		return apiErr
	}
	spot, _, apiErr := tc.integer("SpotTargetCapacity", 0, maxFleetCapacity)
	if apiErr != nil {
		return apiErr
	}
	if onDemand+spot > total {
		return errInvalidValue("OnDemandTargetCapacity (%d) plus SpotTargetCapacity (%d) exceed TotalTargetCapacity (%d)", onDemand, spot, total)
	}
	defaultType, apiErr := tc.enum("DefaultTargetCapacityType", CapacityTypeSpot, CapacityTypeOnDemand, "capacity-block")
	if apiErr != nil {
		return apiErr
	}
	if defaultType == "capacity-block" {
		return errUnsupported("The emulator does not implement capacity blocks")
	}
	if unit, ok := tc["TargetCapacityUnitType"]; ok && unit != "units" {
		return errUnsupported("The emulator supports only TargetCapacityUnitType=units; got %q", unit)
	}
	if defaultType == CapacityTypeSpot {
		spot = total - onDemand
	} else {
		onDemand = total - spot
	}
	req.onDemandUnits, req.spotUnits = onDemand, spot
	return nil
}

func (e *Emulator) createFleet(p params) (ec2Response, *apiError) {
	req, apiErr := parseFleetRequest(p)
	if apiErr != nil {
		return nil, apiErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fingerprint := requestFingerprint(withoutKey(p, "ClientToken"))
	if req.token != "" {
		if rec, ok := e.state.fleets[req.token]; ok {
			if rec.fingerprint != fingerprint {
				return nil, errCode("IdempotentParameterMismatch", "The client token %s was used with different parameters", req.token)
			}
			resp := rec.response
			return &resp, nil
		}
	}
	pools, apiErr := e.resolvePools(req)
	if apiErr != nil {
		return nil, apiErr
	}
	resp := e.launchFleet(req, pools)
	if req.token != "" {
		e.state.fleets[req.token] = &fleetRecord{fingerprint: fingerprint, response: *resp}
	}
	return resp, nil
}
