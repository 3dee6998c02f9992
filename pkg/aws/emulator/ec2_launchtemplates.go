package emulator

import (
	"encoding/base64"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// MetadataOptions are a launch template's instance metadata (IMDS) options; empty fields were
// not set.
type MetadataOptions struct {
	// HTTPTokens is "required" (IMDSv2 only) or "optional".
	HTTPTokens string
	// HTTPEndpoint is "enabled" or "disabled".
	HTTPEndpoint string
	// HTTPPutResponseHopLimit is 1 to 64; 0 when not set.
	HTTPPutResponseHopLimit int
	// HTTPProtocolIPv6 and InstanceMetadataTags are "enabled" or "disabled".
	HTTPProtocolIPv6     string
	InstanceMetadataTags string
}

// BlockDeviceMapping is an EBS volume of a launch template.
type BlockDeviceMapping struct {
	DeviceName          string
	VolumeSizeGiB       int
	VolumeType          string
	IOPS                int
	Throughput          int
	Encrypted           bool
	KMSKeyID            string
	DeleteOnTermination bool
	SnapshotID          string
}

// LaunchTemplate is a snapshot of an emulated launch template, as LaunchTemplates returns it,
// so that tests can read back what the provider wrote.
type LaunchTemplate struct {
	ID         string
	Name       string
	CreateTime time.Time
	// Tags of the launch template itself.
	Tags map[string]string
	// ImageID and InstanceType from the launch template data; empty when not set.
	ImageID      string
	InstanceType string
	// UserData is the decoded user data.
	UserData            string
	MetadataOptions     MetadataOptions
	SecurityGroupIDs    []string
	BlockDeviceMappings []BlockDeviceMapping
	// IAMInstanceProfile is the instance profile's name or ARN.
	IAMInstanceProfile string
	// InstanceTags and VolumeTags come from the data's TagSpecifications.
	InstanceTags map[string]string
	VolumeTags   map[string]string
	// Data holds every LaunchTemplateData parameter as sent, without the
	// "LaunchTemplateData." prefix, e.g. "MetadataOptions.HttpTokens" -> "required".
	Data map[string]string
}

type launchTemplate struct {
	LaunchTemplate
	clientToken string
	fingerprint uint64
}

func (lt *launchTemplate) snapshot() LaunchTemplate {
	out := lt.LaunchTemplate
	out.Tags = maps.Clone(lt.Tags)
	out.InstanceTags = maps.Clone(lt.InstanceTags)
	out.VolumeTags = maps.Clone(lt.VolumeTags)
	out.SecurityGroupIDs = slices.Clone(lt.SecurityGroupIDs)
	out.BlockDeviceMappings = slices.Clone(lt.BlockDeviceMappings)
	out.Data = maps.Clone(lt.Data)
	return out
}

// LaunchTemplates returns the launch templates that exist, in creation order.
func (e *Emulator) LaunchTemplates() []LaunchTemplate {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []LaunchTemplate
	for _, id := range e.state.ltOrder {
		out = append(out, e.state.launchTemplates[id].snapshot())
	}
	return out
}

var ltNamePattern = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

// maxUserDataBytes is EC2's limit on decoded user data.
const maxUserDataBytes = 16 * 1024

type launchTemplateXML struct {
	LaunchTemplateID     string        `xml:"launchTemplateId"`
	LaunchTemplateName   string        `xml:"launchTemplateName"`
	CreateTime           string        `xml:"createTime"`
	CreatedBy            string        `xml:"createdBy"`
	DefaultVersionNumber int           `xml:"defaultVersionNumber"`
	LatestVersionNumber  int           `xml:"latestVersionNumber"`
	TagSet               items[tagXML] `xml:"tagSet,omitempty"`
}

func (lt *launchTemplate) xml() launchTemplateXML {
	out := launchTemplateXML{
		LaunchTemplateID:     lt.ID,
		LaunchTemplateName:   lt.Name,
		CreateTime:           ec2Time(lt.CreateTime),
		CreatedBy:            "arn:aws:iam::" + AccountID + ":root",
		DefaultVersionNumber: 1,
		LatestVersionNumber:  1,
	}
	if len(lt.Tags) > 0 {
		out.TagSet = tagSet(lt.Tags)
	}
	return out
}

type launchTemplateResponse struct {
	responseMeta
	LaunchTemplate launchTemplateXML `xml:"launchTemplate"`
}

func (e *Emulator) createLaunchTemplate(p params) (ec2Response, *apiError) {
	name := p["LaunchTemplateName"]
	if name == "" {
		return nil, errMissing("LaunchTemplateName")
	}
	if !ltNamePattern.MatchString(name) {
		return nil, errCode("InvalidLaunchTemplateName.MalformedException",
			"A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'")
	}
	if !p.has("LaunchTemplateData") {
		return nil, errMissing("LaunchTemplateData")
	}
	tags, apiErr := tagSpecifications(p, "TagSpecification", "launch-template")
	if apiErr != nil {
		return nil, apiErr
	}
	lt, apiErr := parseLaunchTemplateData(p.sub("LaunchTemplateData"))
	if apiErr != nil {
		return nil, apiErr
	}
	lt.Name = name
	lt.Tags = tags["launch-template"]
	token := p["ClientToken"]
	if len(token) > 64 {
		return nil, errInvalidValue("The client token must be at most 64 characters")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	fingerprint := requestFingerprint(withoutKey(p, "ClientToken"))
	if token != "" {
		for _, id := range e.state.ltOrder {
			if existing := e.state.launchTemplates[id]; existing.clientToken == token {
				if existing.fingerprint != fingerprint {
					return nil, errCode("IdempotentParameterMismatch", "The client token %s was used with different parameters", token)
				}
				return &launchTemplateResponse{LaunchTemplate: existing.xml()}, nil
			}
		}
	}
	if e.state.launchTemplateByName(name) != nil {
		return nil, errCode("InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
	}
	lt.ID = e.newID("lt-")
	lt.CreateTime = e.now()
	stored := &launchTemplate{LaunchTemplate: lt, clientToken: token, fingerprint: fingerprint}
	e.state.launchTemplates[lt.ID] = stored
	e.state.ltOrder = append(e.state.ltOrder, lt.ID)
	return &launchTemplateResponse{LaunchTemplate: stored.xml()}, nil
}

func withoutKey(p params, key string) params {
	out := maps.Clone(p)
	delete(out, key)
	return out
}

// parseLaunchTemplateData validates the launch template data the way EC2 does at creation:
// formats and enums. Whether the image and security groups exist is checked at launch.
func parseLaunchTemplateData(d params) (LaunchTemplate, *apiError) {
	lt := LaunchTemplate{Data: d.record(), ImageID: d["ImageId"], InstanceType: d["InstanceType"]}
	if lt.ImageID != "" && !imageIDPattern.MatchString(lt.ImageID) {
		return lt, errCode("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", lt.ImageID)
	}
	if lt.InstanceType != "" {
		if _, ok := catalog.Get(lt.InstanceType); !ok {
			return lt, errInvalidValue("Invalid value '%s' for InstanceType.", lt.InstanceType)
		}
	}
	if raw, ok := d["UserData"]; ok {
		decoded, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return lt, errCode("InvalidUserData.Malformed", "User data must be base64 encoded: %v", err)
		}
		if len(decoded) > maxUserDataBytes {
			return lt, errInvalidValue("User data is limited to %d bytes", maxUserDataBytes)
		}
		lt.UserData = string(decoded)
	}
	m := d.sub("MetadataOptions")
	var apiErr *apiError
	if lt.MetadataOptions.HTTPTokens, apiErr = m.enum("HttpTokens", "optional", "required"); apiErr != nil {
		return lt, apiErr
	}
	if lt.MetadataOptions.HTTPEndpoint, apiErr = m.enum("HttpEndpoint", "enabled", "disabled"); apiErr != nil {
		return lt, apiErr
	}
	if lt.MetadataOptions.HTTPProtocolIPv6, apiErr = m.enum("HttpProtocolIpv6", "enabled", "disabled"); apiErr != nil {
		return lt, apiErr
	}
	if lt.MetadataOptions.InstanceMetadataTags, apiErr = m.enum("InstanceMetadataTags", "enabled", "disabled"); apiErr != nil {
		return lt, apiErr
	}
	if lt.MetadataOptions.HTTPPutResponseHopLimit, _, apiErr = m.integer("HttpPutResponseHopLimit", 1, 64); apiErr != nil {
		return lt, apiErr
	}
	lt.SecurityGroupIDs = d.list("SecurityGroupId")
	for _, id := range lt.SecurityGroupIDs {
		if !groupIDPattern.MatchString(id) {
			return lt, errCode("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
	}
	if len(d.list("SecurityGroup")) > 0 {
		return lt, errUnsupported("The emulator takes security groups by ID (SecurityGroupIds), not by name")
	}
	if lt.IAMInstanceProfile = d["IamInstanceProfile.Arn"]; lt.IAMInstanceProfile == "" {
		lt.IAMInstanceProfile = d["IamInstanceProfile.Name"]
	} else if d["IamInstanceProfile.Name"] != "" {
		return lt, errCombination("Specify the instance profile by name or by ARN, not both")
	}
	for _, b := range d.structs("BlockDeviceMapping") {
		bdm, apiErr := parseBlockDevice(b)
		if apiErr != nil {
			return lt, apiErr
		}
		lt.BlockDeviceMappings = append(lt.BlockDeviceMappings, bdm)
	}
	tags, apiErr := tagSpecifications(d, "TagSpecification", "instance", "volume", "network-interface", "spot-instances-request")
	if apiErr != nil {
		return lt, apiErr
	}
	lt.InstanceTags, lt.VolumeTags = tags["instance"], tags["volume"]
	return lt, nil
}

var volumeTypes = []string{"standard", "io1", "io2", "gp2", "gp3", "sc1", "st1"}

func parseBlockDevice(b params) (BlockDeviceMapping, *apiError) {
	bdm := BlockDeviceMapping{DeviceName: b["DeviceName"], SnapshotID: b["Ebs.SnapshotId"], KMSKeyID: b["Ebs.KmsKeyId"]}
	if bdm.DeviceName == "" {
		return bdm, errMissing("BlockDeviceMapping.DeviceName")
	}
	var apiErr *apiError
	if bdm.VolumeType, apiErr = b.enum("Ebs.VolumeType", volumeTypes...); apiErr != nil {
		return bdm, apiErr
	}
	if bdm.VolumeSizeGiB, _, apiErr = b.integer("Ebs.VolumeSize", 1, 65536); apiErr != nil {
		return bdm, apiErr
	}
	if bdm.IOPS, _, apiErr = b.integer("Ebs.Iops", 100, 256000); apiErr != nil {
		return bdm, apiErr
	}
	if bdm.Throughput, _, apiErr = b.integer("Ebs.Throughput", 125, 2000); apiErr != nil {
		return bdm, apiErr
	}
	if bdm.IOPS > 0 && !contains([]string{"io1", "io2", "gp3"}, bdm.VolumeType) {
		return bdm, errInvalidValue("The parameter iops is not supported for %s volumes.", orDefault(bdm.VolumeType, "gp2"))
	}
	if bdm.Throughput > 0 && bdm.VolumeType != "gp3" {
		return bdm, errInvalidValue("The parameter throughput is only supported for gp3 volumes.")
	}
	if bdm.Encrypted, _, apiErr = b.boolean("Ebs.Encrypted"); apiErr != nil {
		return bdm, apiErr
	}
	deleteOnTermination, set, apiErr := b.boolean("Ebs.DeleteOnTermination")
	if apiErr != nil {
		return bdm, apiErr
	}
	bdm.DeleteOnTermination = deleteOnTermination || !set
	return bdm, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// tagSpecifications reads TagSpecification.N.{ResourceType,Tag.M.Key,Tag.M.Value} into tags
// per resource type; each resource type must be one of allowed.
func tagSpecifications(p params, prefix string, allowed ...string) (map[string]map[string]string, *apiError) {
	out := map[string]map[string]string{}
	for _, spec := range p.structs(prefix) {
		rt := spec["ResourceType"]
		if rt == "" {
			return nil, errMissing(prefix + ".ResourceType")
		}
		if !contains(allowed, rt) {
			return nil, errInvalidValue("'%s' is not a valid taggable resource type for this operation.", rt)
		}
		tags, apiErr := parseTags(spec, "Tag")
		if apiErr != nil {
			return nil, apiErr
		}
		if out[rt] == nil {
			out[rt] = map[string]string{}
		}
		maps.Copy(out[rt], tags)
	}
	return out, nil
}

// parseTags reads Tag.N.Key and Tag.N.Value, checking EC2's rules on keys and values.
func parseTags(p params, prefix string) (map[string]string, *apiError) {
	tags := map[string]string{}
	for _, t := range p.structs(prefix) {
		key, value := t["Key"], t["Value"]
		switch {
		case key == "":
			return nil, errInvalidValue("Tag keys must not be empty")
		case len(key) > 128:
			return nil, errInvalidValue("Tag key exceeds the maximum length of 128 characters")
		case len(value) > 256:
			return nil, errInvalidValue("Tag value exceeds the maximum length of 256 characters")
		case strings.HasPrefix(strings.ToLower(key), "aws:"):
			return nil, errInvalidValue("Tag keys starting with 'aws:' are reserved for internal use")
		}
		tags[key] = value
	}
	if len(tags) > 50 {
		return nil, errCode("TagLimitExceeded", "The maximum number of tags per resource is 50")
	}
	return tags, nil
}

type describeLaunchTemplatesResponse struct {
	responseMeta
	LaunchTemplates items[launchTemplateXML] `xml:"launchTemplates"`
	NextToken       string                   `xml:"nextToken,omitempty"`
}

func (e *Emulator) describeLaunchTemplates(p params) (ec2Response, *apiError) {
	filters, apiErr := p.filters("tag:", "tag-key", "tag-value", "launch-template-name", "create-time")
	if apiErr != nil {
		return nil, apiErr
	}
	ids, names := p.list("LaunchTemplateId"), p.list("LaunchTemplateName")
	if (len(ids) > 0 || len(names) > 0) && p.has("MaxResults") {
		return nil, errCombination("You cannot specify MaxResults together with launch template IDs or names")
	}
	for _, id := range ids {
		if !ltIDPattern.MatchString(id) {
			return nil, errCode("InvalidLaunchTemplateId.Malformed", "The specified ID (%s) is not a valid launch template ID.", id)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if _, ok := e.state.launchTemplates[id]; !ok {
			return nil, errCode("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
	}
	for _, name := range names {
		if e.state.launchTemplateByName(name) == nil {
			return nil, errCode("InvalidLaunchTemplateName.NotFoundException", "At least one of the launch templates specified in the request does not exist.")
		}
	}
	var matched []launchTemplateXML
	for _, id := range e.state.ltOrder {
		lt := e.state.launchTemplates[id]
		if (len(ids) > 0 || len(names) > 0) && !contains(ids, lt.ID) && !contains(names, lt.Name) {
			continue
		}
		values := map[string]string{"launch-template-name": lt.Name, "create-time": ec2Time(lt.CreateTime)}
		if matchFilters(filters, resourceValues(values, lt.Tags)) {
			matched = append(matched, lt.xml())
		}
	}
	page, next, apiErr := paginate(p, "DescribeLaunchTemplates", matched, 1, 200, 0)
	if apiErr != nil {
		return nil, apiErr
	}
	return &describeLaunchTemplatesResponse{LaunchTemplates: page, NextToken: next}, nil
}

func (e *Emulator) deleteLaunchTemplate(p params) (ec2Response, *apiError) {
	id, name := p["LaunchTemplateId"], p["LaunchTemplateName"]
	if id == "" && name == "" {
		return nil, errMissing("LaunchTemplateId or LaunchTemplateName")
	}
	if id != "" && name != "" {
		return nil, errCombination("Specify the launch template by ID or by name, not both")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	lt, apiErr := e.findLaunchTemplate(id, name)
	if apiErr != nil {
		return nil, apiErr
	}
	delete(e.state.launchTemplates, lt.ID)
	e.state.ltOrder = slices.DeleteFunc(e.state.ltOrder, func(s string) bool { return s == lt.ID })
	return &launchTemplateResponse{LaunchTemplate: lt.xml()}, nil
}

// findLaunchTemplate looks a launch template up by ID or name. Callers hold e.mu.
func (e *Emulator) findLaunchTemplate(id, name string) (*launchTemplate, *apiError) {
	if id != "" {
		if !ltIDPattern.MatchString(id) {
			return nil, errCode("InvalidLaunchTemplateId.Malformed", "The specified ID (%s) is not a valid launch template ID.", id)
		}
		lt, ok := e.state.launchTemplates[id]
		if !ok {
			return nil, errCode("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
		return lt, nil
	}
	lt := e.state.launchTemplateByName(name)
	if lt == nil {
		return nil, errCode("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
	}
	return lt, nil
}

// checkVersion accepts the versions a launch template with one version has: $Latest,
// $Default and 1.
func checkVersion(lt *launchTemplate, version string) *apiError {
	if version == "$Latest" || version == "$Default" || version == "1" {
		return nil
	}
	if _, err := strconv.Atoi(version); err != nil {
		return errInvalidValue("The launch template version %q is not valid: use a number, $Latest or $Default", version)
	}
	return errCode("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %s for launch template %s", version, lt.ID)
}
