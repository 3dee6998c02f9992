package emulator

import (
	"regexp"
	"strconv"
	"strings"
)

// idPattern matches EC2 resource IDs of the 8- and 17-digit forms.
func idPattern(prefix string) *regexp.Regexp {
	return regexp.MustCompile("^" + prefix + "-([0-9a-f]{8}|[0-9a-f]{17})$")
}

var (
	subnetIDPattern   = idPattern("subnet")
	groupIDPattern    = idPattern("sg")
	imageIDPattern    = idPattern("ami")
	instanceIDPattern = idPattern("i")
	ltIDPattern       = idPattern("lt")
)

type describeSubnetsResponse struct {
	responseMeta
	Subnets   items[subnetXML] `xml:"subnetSet"`
	NextToken string           `xml:"nextToken,omitempty"`
}

type subnetXML struct {
	SubnetID                string        `xml:"subnetId"`
	SubnetArn               string        `xml:"subnetArn"`
	State                   string        `xml:"state"`
	VpcID                   string        `xml:"vpcId"`
	OwnerID                 string        `xml:"ownerId"`
	CidrBlock               string        `xml:"cidrBlock"`
	AvailableIPAddressCount int           `xml:"availableIpAddressCount"`
	AvailabilityZone        string        `xml:"availabilityZone"`
	AvailabilityZoneID      string        `xml:"availabilityZoneId"`
	DefaultForAz            bool          `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool          `xml:"mapPublicIpOnLaunch"`
	TagSet                  items[tagXML] `xml:"tagSet"`
}

func (e *Emulator) describeSubnets(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("tag:", "tag-key", "tag-value", "subnet-id", "availability-zone", "availability-zone-id",
		"vpc-id", "state", "cidr-block", "default-for-az", "owner-id")
	if apiErr != nil {
		return nil, apiErr
	}
	ids := p.list("SubnetId")
	for _, id := range ids {
		if !subnetIDPattern.MatchString(id) {
			return nil, errCode("InvalidSubnetID.Malformed", "Invalid id: \"%s\"", id)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, id := range ids {
		if e.state.subnet(id) == nil {
			return nil, errCode("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
	}
	var matched []subnetXML
	for _, sn := range e.state.subnets {
		if len(ids) > 0 && !contains(ids, sn.ID) {
			continue
		}
		values := map[string]string{"subnet-id": sn.ID, "availability-zone": sn.Zone, "availability-zone-id": zoneID(sn.Zone),
			"vpc-id": e.state.vpcID, "state": "available", "cidr-block": sn.CIDR, "default-for-az": "false", "owner-id": AccountID}
		if !matchFilters(filters, resourceValues(values, sn.Tags)) {
			continue
		}
		matched = append(matched, subnetXML{
			SubnetID:                sn.ID,
			SubnetArn:               "arn:aws:ec2:" + Region + ":" + AccountID + ":subnet/" + sn.ID,
			State:                   "available",
			VpcID:                   e.state.vpcID,
			OwnerID:                 AccountID,
			CidrBlock:               sn.CIDR,
			AvailableIPAddressCount: e.state.freeIPs(sn, now, e.opts),
			AvailabilityZone:        sn.Zone,
			AvailabilityZoneID:      zoneID(sn.Zone),
			TagSet:                  tagSet(sn.Tags),
		})
	}
	page, next, apiErr := paginate(p, "DescribeSubnets", matched, 5, 1000, 0)
	if apiErr != nil {
		return nil, apiErr
	}
	return &describeSubnetsResponse{Subnets: page, NextToken: next}, nil
}

// resourceValues answers filters from a resource's fixed values and its tags.
func resourceValues(values map[string]string, tags map[string]string) func(string) []string {
	return func(name string) []string {
		if v, ok := tagValues(name, tags); ok {
			return v
		}
		if v, ok := values[name]; ok {
			return []string{v}
		}
		return nil
	}
}

type describeSecurityGroupsResponse struct {
	responseMeta
	SecurityGroups items[securityGroupXML] `xml:"securityGroupInfo"`
	NextToken      string                  `xml:"nextToken,omitempty"`
}

type securityGroupXML struct {
	OwnerID             string          `xml:"ownerId"`
	GroupID             string          `xml:"groupId"`
	GroupName           string          `xml:"groupName"`
	GroupDescription    string          `xml:"groupDescription"`
	VpcID               string          `xml:"vpcId"`
	SecurityGroupArn    string          `xml:"securityGroupArn"`
	IPPermissions       items[struct{}] `xml:"ipPermissions"`
	IPPermissionsEgress items[struct{}] `xml:"ipPermissionsEgress"`
	TagSet              items[tagXML]   `xml:"tagSet"`
}

func (e *Emulator) describeSecurityGroups(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("tag:", "tag-key", "tag-value", "group-id", "group-name", "vpc-id", "description", "owner-id")
	if apiErr != nil {
		return nil, apiErr
	}
	ids, names := p.list("GroupId"), p.list("GroupName")
	for _, id := range ids {
		if !groupIDPattern.MatchString(id) {
			return nil, errCode("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
	}
	if (len(ids) > 0 || len(names) > 0) && p.has("MaxResults") {
		return nil, errCombination("The parameter groupIdSet cannot be used with the parameter maxResults")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if e.state.securityGroup(id) == nil {
			return nil, errCode("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
	}
	for _, name := range names {
		found := false
		for _, sg := range e.state.securityGroups {
			found = found || sg.Name == name
		}
		if !found {
			return nil, errCode("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", name, e.state.vpcID)
		}
	}
	var matched []securityGroupXML
	for _, sg := range e.state.securityGroups {
		if len(ids) > 0 && !contains(ids, sg.ID) || len(names) > 0 && !contains(names, sg.Name) {
			continue
		}
		values := map[string]string{"group-id": sg.ID, "group-name": sg.Name, "vpc-id": e.state.vpcID,
			"description": sg.Description, "owner-id": AccountID}
		if !matchFilters(filters, resourceValues(values, sg.Tags)) {
			continue
		}
		matched = append(matched, securityGroupXML{
			OwnerID:             AccountID,
			GroupID:             sg.ID,
			GroupName:           sg.Name,
			GroupDescription:    sg.Description,
			VpcID:               e.state.vpcID,
			SecurityGroupArn:    "arn:aws:ec2:" + Region + ":" + AccountID + ":security-group/" + sg.ID,
			IPPermissions:       items[struct{}]{},
			IPPermissionsEgress: items[struct{}]{},
			TagSet:              tagSet(sg.Tags),
		})
	}
	page, next, apiErr := paginate(p, "DescribeSecurityGroups", matched, 5, 1000, 0)
	if apiErr != nil {
		return nil, apiErr
	}
	return &describeSecurityGroupsResponse{SecurityGroups: page, NextToken: next}, nil
}

type describeImagesResponse struct {
	responseMeta
	Images    items[imageXML] `xml:"imagesSet"`
	NextToken string          `xml:"nextToken,omitempty"`
}

type imageXML struct {
	ImageID            string                `xml:"imageId"`
	ImageLocation      string                `xml:"imageLocation"`
	ImageState         string                `xml:"imageState"`
	ImageOwnerID       string                `xml:"imageOwnerId"`
	ImageOwnerAlias    string                `xml:"imageOwnerAlias,omitempty"`
	CreationDate       string                `xml:"creationDate"`
	IsPublic           bool                  `xml:"isPublic"`
	Architecture       string                `xml:"architecture"`
	ImageType          string                `xml:"imageType"`
	Name               string                `xml:"name"`
	Description        string                `xml:"description,omitempty"`
	RootDeviceType     string                `xml:"rootDeviceType"`
	RootDeviceName     string                `xml:"rootDeviceName"`
	BlockDeviceMapping items[blockDeviceXML] `xml:"blockDeviceMapping"`
	VirtualizationType string                `xml:"virtualizationType"`
	Hypervisor         string                `xml:"hypervisor"`
	EnaSupport         bool                  `xml:"enaSupport"`
	PlatformDetails    string                `xml:"platformDetails"`
	UsageOperation     string                `xml:"usageOperation"`
	BootMode           string                `xml:"bootMode,omitempty"`
	TagSet             items[tagXML]         `xml:"tagSet,omitempty"`
	DeprecationTime    string                `xml:"deprecationTime,omitempty"`
}

type blockDeviceXML struct {
	DeviceName string    `xml:"deviceName"`
	EBS        ebsXMLOut `xml:"ebs"`
}

type ebsXMLOut struct {
	SnapshotID          string `xml:"snapshotId,omitempty"`
	VolumeSize          int    `xml:"volumeSize"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	VolumeType          string `xml:"volumeType"`
	Encrypted           bool   `xml:"encrypted"`
}

func (e *Emulator) describeImages(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("tag:", "tag-key", "tag-value", "image-id", "name", "architecture", "owner-id", "owner-alias",
		"state", "is-public", "image-type", "root-device-type", "virtualization-type", "description", "hypervisor")
	if apiErr != nil {
		return nil, apiErr
	}
	for _, key := range []string{"IncludeDeprecated", "IncludeDisabled"} {
		if _, _, apiErr := p.boolean(key); apiErr != nil {
			return nil, apiErr
		}
	}
	ids, owners := p.list("ImageId"), p.list("Owner")
	for _, id := range ids {
		if !imageIDPattern.MatchString(id) {
			return nil, errCode("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", id)
		}
	}
	if len(ids) > 0 && p.has("MaxResults") {
		return nil, errCombination("The parameter imageIdSet cannot be used with the parameter maxResults")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if _, ok := e.state.images[id]; !ok {
			return nil, errCode("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
	}
	var matched []imageXML
	for _, id := range e.state.imageOrder {
		img := e.state.images[id]
		if len(ids) > 0 && !contains(ids, img.ID) {
			continue
		}
		if len(owners) > 0 && !contains(owners, img.OwnerID) && !(img.OwnerAlias != "" && contains(owners, img.OwnerAlias)) &&
			!(contains(owners, "self") && img.OwnerID == AccountID) {
			continue
		}
		values := map[string]string{"image-id": img.ID, "name": img.Name, "architecture": img.Architecture,
			"owner-id": img.OwnerID, "owner-alias": img.OwnerAlias, "state": "available", "is-public": strconv.FormatBool(img.Public),
			"image-type": "machine", "root-device-type": "ebs", "virtualization-type": "hvm", "description": img.Description,
			"hypervisor": "xen"}
		if !matchFilters(filters, resourceValues(values, img.Tags)) {
			continue
		}
		matched = append(matched, imageXMLFor(img))
	}
	page, next, apiErr := paginate(p, "DescribeImages", matched, 5, 1000, 0)
	if apiErr != nil {
		return nil, apiErr
	}
	return &describeImagesResponse{Images: page, NextToken: next}, nil
}

func imageXMLFor(img *Image) imageXML {
	bootMode := "uefi-preferred"
	if img.Architecture == "arm64" {
		bootMode = "uefi"
	}
	out := imageXML{
		ImageID:            img.ID,
		ImageLocation:      img.OwnerID + "/" + img.Name,
		ImageState:         "available",
		ImageOwnerID:       img.OwnerID,
		ImageOwnerAlias:    img.OwnerAlias,
		CreationDate:       ec2Time(img.CreationDate),
		IsPublic:           img.Public,
		Architecture:       img.Architecture,
		ImageType:          "machine",
		Name:               img.Name,
		Description:        img.Description,
		RootDeviceType:     "ebs",
		RootDeviceName:     "/dev/xvda",
		VirtualizationType: "hvm",
		Hypervisor:         "xen",
		EnaSupport:         true,
		PlatformDetails:    "Linux/UNIX",
		UsageOperation:     "RunInstances",
		BootMode:           bootMode,
		BlockDeviceMapping: items[blockDeviceXML]{{
			DeviceName: "/dev/xvda",
			EBS: ebsXMLOut{SnapshotID: deterministicID("snap-", "snap/"+img.ID), VolumeSize: 20,
				DeleteOnTermination: true, VolumeType: "gp3"},
		}},
	}
	if strings.HasPrefix(img.Name, "bottlerocket") {
		// Bottlerocket boots from a small OS volume and keeps containers on a data volume.
		out.BlockDeviceMapping = append(out.BlockDeviceMapping, blockDeviceXML{
			DeviceName: "/dev/xvdb",
			EBS: ebsXMLOut{SnapshotID: deterministicID("snap-", "snap/data/"+img.ID), VolumeSize: 20,
				DeleteOnTermination: true, VolumeType: "gp3"},
		})
	}
	if len(img.Tags) > 0 {
		out.TagSet = tagSet(img.Tags)
	}
	return out
}
