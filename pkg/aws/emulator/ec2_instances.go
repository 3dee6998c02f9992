package emulator

import (
	"maps"
	"strconv"
	"strings"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

type describeInstancesResponse struct {
	responseMeta
	Reservations items[reservationXML] `xml:"reservationSet"`
	NextToken    string                `xml:"nextToken,omitempty"`
}

type reservationXML struct {
	ReservationID string             `xml:"reservationId"`
	OwnerID       string             `xml:"ownerId"`
	RequesterID   string             `xml:"requesterId"`
	GroupSet      items[groupXML]    `xml:"groupSet"`
	Instances     items[instanceXML] `xml:"instancesSet"`
}

type groupXML struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type instanceStateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type placementXML struct {
	AvailabilityZone   string `xml:"availabilityZone"`
	AvailabilityZoneID string `xml:"availabilityZoneId"`
	Tenancy            string `xml:"tenancy"`
}

type stateReasonXML struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type metadataOptionsXML struct {
	State                   string `xml:"state"`
	HTTPTokens              string `xml:"httpTokens"`
	HTTPPutResponseHopLimit int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint            string `xml:"httpEndpoint"`
	HTTPProtocolIPv6        string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags"`
}

type instanceXML struct {
	InstanceID            string             `xml:"instanceId"`
	ImageID               string             `xml:"imageId"`
	InstanceState         instanceStateXML   `xml:"instanceState"`
	PrivateDNSName        string             `xml:"privateDnsName"`
	DNSName               string             `xml:"dnsName"`
	Reason                string             `xml:"reason"`
	AMILaunchIndex        int                `xml:"amiLaunchIndex"`
	InstanceType          string             `xml:"instanceType"`
	LaunchTime            string             `xml:"launchTime"`
	Placement             placementXML       `xml:"placement"`
	SubnetID              string             `xml:"subnetId"`
	VpcID                 string             `xml:"vpcId"`
	PrivateIPAddress      string             `xml:"privateIpAddress"`
	GroupSet              items[groupXML]    `xml:"groupSet"`
	StateReason           *stateReasonXML    `xml:"stateReason,omitempty"`
	Architecture          string             `xml:"architecture"`
	RootDeviceType        string             `xml:"rootDeviceType"`
	RootDeviceName        string             `xml:"rootDeviceName"`
	InstanceLifecycle     string             `xml:"instanceLifecycle,omitempty"`
	SpotInstanceRequestID string             `xml:"spotInstanceRequestId,omitempty"`
	ClientToken           string             `xml:"clientToken"`
	TagSet                items[tagXML]      `xml:"tagSet"`
	VirtualizationType    string             `xml:"virtualizationType"`
	Hypervisor            string             `xml:"hypervisor"`
	MetadataOptions       metadataOptionsXML `xml:"metadataOptions"`
	PlatformDetails       string             `xml:"platformDetails"`
	UsageOperation        string             `xml:"usageOperation"`
}

// instanceXMLFor renders an instance as DescribeInstances does. Callers hold e.mu.
func (e *Emulator) instanceXMLFor(inst *instance, st string) instanceXML {
	it, _ := catalog.Get(inst.InstanceType)
	mo := inst.MetadataOptions
	out := instanceXML{
		InstanceID:       inst.ID,
		ImageID:          inst.ImageID,
		InstanceState:    instanceStateXML{Code: stateCodes[st], Name: st},
		PrivateDNSName:   inst.PrivateDNSName,
		InstanceType:     inst.InstanceType,
		LaunchTime:       ec2Time(inst.LaunchTime),
		Placement:        placementXML{AvailabilityZone: inst.Zone, AvailabilityZoneID: zoneID(inst.Zone), Tenancy: "default"},
		SubnetID:         inst.SubnetID,
		VpcID:            e.state.vpcID,
		PrivateIPAddress: inst.PrivateIP,
		GroupSet:         items[groupXML]{},
		Architecture:     ec2Architecture(it.Architecture),
		RootDeviceType:   "ebs",
		RootDeviceName:   "/dev/xvda",
		ClientToken:      inst.ClientToken,
		TagSet:           tagSet(inst.Tags),
		// EC2 reports "xen" for Nitro instances too, for compatibility.
		VirtualizationType: "hvm",
		Hypervisor:         "xen",
		MetadataOptions: metadataOptionsXML{
			State:                   "applied",
			HTTPTokens:              orDefault(mo.HTTPTokens, "optional"),
			HTTPPutResponseHopLimit: max(mo.HTTPPutResponseHopLimit, 1),
			HTTPEndpoint:            orDefault(mo.HTTPEndpoint, "enabled"),
			HTTPProtocolIPv6:        orDefault(mo.HTTPProtocolIPv6, "disabled"),
			InstanceMetadataTags:    orDefault(mo.InstanceMetadataTags, "disabled"),
		},
		PlatformDetails: "Linux/UNIX",
		UsageOperation:  "RunInstances",
	}
	if st == StatePending {
		out.MetadataOptions.State = "pending"
	}
	if st == StateShuttingDown || st == StateTerminated {
		out.StateReason = &stateReasonXML{Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown"}
		if inst.interrupted {
			out.StateReason = &stateReasonXML{Code: "Server.SpotInstanceTermination", Message: "Server.SpotInstanceTermination: Spot instance termination"}
		}
		out.Reason = inst.stateReason
	}
	if st == StateTerminated {
		out.PrivateDNSName, out.PrivateIPAddress = "", ""
	}
	if inst.CapacityType == CapacityTypeSpot {
		out.InstanceLifecycle = "spot"
		out.SpotInstanceRequestID = "sir-" + strings.TrimPrefix(inst.ID, "i-")[:8]
	}
	for _, id := range inst.SecurityGroupIDs {
		g := groupXML{GroupID: id}
		if sg := e.state.securityGroup(id); sg != nil {
			g.GroupName = sg.Name
		}
		out.GroupSet = append(out.GroupSet, g)
	}
	return out
}

func (e *Emulator) describeInstances(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("tag:", "tag-key", "tag-value", "instance-id", "instance-state-name", "instance-state-code",
		"instance-type", "availability-zone", "subnet-id", "vpc-id", "image-id", "private-dns-name", "private-ip-address",
		"instance-lifecycle", "client-token", "reservation-id", "instance.group-id")
	if apiErr != nil {
		return nil, apiErr
	}
	ids := p.list("InstanceId")
	if len(ids) > 0 && p.has("MaxResults") {
		return nil, errCombination("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	if apiErr := checkInstanceIDs(ids); apiErr != nil {
		return nil, apiErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	visible := e.state.visibleInstances(now, e.opts)
	if apiErr := e.checkInstancesExist(ids); apiErr != nil {
		return nil, apiErr
	}
	var matched []*instance
	for _, inst := range visible {
		if len(ids) > 0 && !contains(ids, inst.ID) {
			continue
		}
		st := inst.state(now, e.opts)
		lifecycle := ""
		if inst.CapacityType == CapacityTypeSpot {
			lifecycle = "spot"
		}
		values := map[string]string{"instance-id": inst.ID, "instance-state-name": st, "instance-state-code": strconv.Itoa(stateCodes[st]),
			"instance-type": inst.InstanceType, "availability-zone": inst.Zone, "subnet-id": inst.SubnetID, "vpc-id": e.state.vpcID,
			"image-id": inst.ImageID, "private-dns-name": inst.PrivateDNSName, "private-ip-address": inst.PrivateIP,
			"instance-lifecycle": lifecycle, "client-token": inst.ClientToken, "reservation-id": inst.reservationID}
		fv := resourceValues(values, inst.Tags)
		if !matchFilters(filters, func(name string) []string {
			if name == "instance.group-id" {
				return inst.SecurityGroupIDs
			}
			return fv(name)
		}) {
			continue
		}
		matched = append(matched, inst)
	}
	page, next, apiErr := paginate(p, "DescribeInstances", matched, 5, 1000, 0)
	if apiErr != nil {
		return nil, apiErr
	}
	resp := &describeInstancesResponse{Reservations: items[reservationXML]{}, NextToken: next}
	index := map[string]int{}
	for _, inst := range page {
		i, ok := index[inst.reservationID]
		if !ok {
			i = len(resp.Reservations)
			index[inst.reservationID] = i
			resp.Reservations = append(resp.Reservations, reservationXML{ReservationID: inst.reservationID, OwnerID: AccountID,
				RequesterID: "226008221399", GroupSet: items[groupXML]{}, Instances: items[instanceXML]{}})
		}
		resp.Reservations[i].Instances = append(resp.Reservations[i].Instances, e.instanceXMLFor(inst, inst.state(now, e.opts)))
	}
	return resp, nil
}

// checkInstancesExist answers InvalidInstanceID.NotFound, naming every unknown ID, when any
// instance is unknown. Callers hold e.mu.
func (e *Emulator) checkInstancesExist(ids []string) *apiError {
	var missing []string
	for _, id := range ids {
		if _, ok := e.state.instances[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 1 {
		return errCode("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	}
	if len(missing) > 1 {
		return errCode("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
	return nil
}

type terminateInstancesResponse struct {
	responseMeta
	Instances items[stateChangeXML] `xml:"instancesSet"`
}

type stateChangeXML struct {
	InstanceID    string           `xml:"instanceId"`
	CurrentState  instanceStateXML `xml:"currentState"`
	PreviousState instanceStateXML `xml:"previousState"`
}

func (e *Emulator) terminateInstances(p params) (ec2Response, *apiError) {
	ids := p.list("InstanceId")
	if len(ids) == 0 {
		return nil, errMissing("InstanceId")
	}
	if len(ids) > 1000 {
		return nil, errInvalidValue("You can terminate at most 1000 instances per request")
	}
	if apiErr := checkInstanceIDs(ids); apiErr != nil {
		return nil, apiErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.state.visibleInstances(now, e.opts)
	if apiErr := e.checkInstancesExist(ids); apiErr != nil {
		return nil, apiErr
	}
	resp := &terminateInstancesResponse{Instances: items[stateChangeXML]{}}
	for _, id := range ids {
		inst := e.state.instances[id]
		prev := inst.state(now, e.opts)
		inst.terminate(now, "User initiated ("+ec2Time(now)+")")
		cur := inst.state(now, e.opts)
		resp.Instances = append(resp.Instances, stateChangeXML{InstanceID: id,
			CurrentState: instanceStateXML{Code: stateCodes[cur], Name: cur}, PreviousState: instanceStateXML{Code: stateCodes[prev], Name: prev}})
	}
	return resp, nil
}

type createTagsResponse struct {
	responseMeta
	Return bool `xml:"return"`
}

// createTags tags instances, launch templates, subnets, security groups and images.
func (e *Emulator) createTags(p params) (ec2Response, *apiError) {
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return nil, errMissing("ResourceId")
	}
	if !p.has("Tag") {
		return nil, errMissing("Tag")
	}
	tags, apiErr := parseTags(p, "Tag")
	if apiErr != nil {
		return nil, apiErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.visibleInstances(e.now(), e.opts)
	var targets []*map[string]string
	for _, id := range ids {
		target, apiErr := e.taggable(id)
		if apiErr != nil {
			return nil, apiErr
		}
		targets = append(targets, target)
	}
	for _, t := range targets {
		merged := maps.Clone(*t)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, tags)
		userTags := 0
		for k := range merged {
			if !strings.HasPrefix(k, "aws:") {
				userTags++
			}
		}
		if userTags > 50 {
			return nil, errCode("TagLimitExceeded", "The maximum number of tags per resource is 50")
		}
	}
	for _, t := range targets {
		if *t == nil {
			*t = map[string]string{}
		}
		maps.Copy(*t, tags)
	}
	return &createTagsResponse{Return: true}, nil
}

// checkInstanceIDs answers InvalidInstanceID.Malformed for the first malformed ID, as EC2
// does before it looks any instance up.
func checkInstanceIDs(ids []string) *apiError {
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			return errCode("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
	}
	return nil
}

// taggable returns the tags of the resource with the given ID. Callers hold e.mu.
func (e *Emulator) taggable(id string) (*map[string]string, *apiError) {
	switch {
	case instanceIDPattern.MatchString(id):
		if inst, ok := e.state.instances[id]; ok {
			return &inst.Tags, nil
		}
		return nil, errCode("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	case ltIDPattern.MatchString(id):
		if lt, ok := e.state.launchTemplates[id]; ok {
			return &lt.Tags, nil
		}
		return nil, errCode("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
	case subnetIDPattern.MatchString(id):
		if sn := e.state.subnet(id); sn != nil {
			return &sn.Tags, nil
		}
		return nil, errCode("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
	case groupIDPattern.MatchString(id):
		if sg := e.state.securityGroup(id); sg != nil {
			return &sg.Tags, nil
		}
		return nil, errCode("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	case imageIDPattern.MatchString(id):
		if img, ok := e.state.images[id]; ok {
			return &img.Tags, nil
		}
		return nil, errCode("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	}
	return nil, errCode("InvalidID", "The ID '%s' is not valid", id)
}
