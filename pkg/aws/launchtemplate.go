package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/singleflight"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// launchTemplates creates the launch templates nodes launch from, one per distinct content
// (AMI, security groups, user data with its labels, taints and kubelet settings, metadata
// options, block devices, instance profile, tags), named nodewright/<cluster>/<hash of the
// content>, so that an identical template is found by name and reused.
type launchTemplates struct {
	ec2  EC2API
	opts Options

	mu    sync.Mutex
	known map[string]bool // names that exist, as far as this process knows
	// flights lets one launch at a time find or create a template: a burst's launches,
	// one per worker, would each describe and create the same one.
	flights singleflight.Group
}

func newLaunchTemplates(api EC2API, opts Options) *launchTemplates {
	return &launchTemplates{ec2: api, opts: opts, known: map[string]bool{}}
}

// ensure returns the name of the launch template with the given AMI and user data for the
// node class, creating it if it does not exist.
func (l *launchTemplates) ensure(ctx context.Context, resolved *resolvedNodeClass, ami amiInfo, userData string) (string, error) {
	data := l.data(resolved, ami, userData)
	tags := map[string]string{}
	for k, v := range resolved.nodeClass.Spec.Tags {
		tags[k] = v
	}
	tags[v1alpha1.TagCluster] = l.opts.ClusterName
	content, err := json.Marshal(struct {
		Data *ec2types.RequestLaunchTemplateData
		Tags map[string]string
	}{data, tags})
	if err != nil {
		return "", fmt.Errorf("encoding launch template data: %w", err)
	}
	sum := sha256.Sum256(content)
	name := "nodewright/" + l.opts.ClusterName + "/" + hex.EncodeToString(sum[:])[:16]

	if l.isKnown(name) {
		return name, nil
	}
	_, err, _ = l.flights.Do(name, func() (any, error) { return nil, l.findOrCreate(ctx, name, data, tags, resolved, ami) })
	if err != nil {
		return "", err
	}
	return name, nil
}

// isKnown reports whether the launch template name exists, as far as this process knows.
func (l *launchTemplates) isKnown(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.known[name]
}

// findOrCreate creates the launch template name with data and tags, unless it exists. It
// creates first and takes "already exists" as found (the name is a hash of the content): the
// first launch after a start waits for one EC2 call, not a describe and then a create.
func (l *launchTemplates) findOrCreate(ctx context.Context, name string, data *ec2types.RequestLaunchTemplateData, tags map[string]string,
	resolved *resolvedNodeClass, ami amiInfo) error {
	if l.isKnown(name) {
		// Found or created by the flight just before this one.
		return nil
	}
	_, err := l.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: awssdk.String(name),
		LaunchTemplateData: data,
		TagSpecifications:  []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: ec2Tags(tags)}},
	})
	switch {
	case err == nil:
		klog.FromContext(ctx).V(2).Info("Created launch template", "launchTemplate", name, "image", ami.id, "nodeClass", resolved.nodeClass.Name)
	case errorCode(err) == "InvalidLaunchTemplateName.AlreadyExistsException":
		klog.FromContext(ctx).V(4).Info("Found launch template", "launchTemplate", name, "nodeClass", resolved.nodeClass.Name)
	default:
		return fmt.Errorf("creating launch template %s: %w", name, err)
	}
	l.mu.Lock()
	l.known[name] = true
	l.mu.Unlock()
	return nil
}

// forget drops what the process knows about existing launch templates, after a launch found
// one missing.
func (l *launchTemplates) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.known = map[string]bool{}
}

// data is the launch template's content.
func (l *launchTemplates) data(resolved *resolvedNodeClass, ami amiInfo, userData string) *ec2types.RequestLaunchTemplateData {
	spec := resolved.nodeClass.Spec
	data := &ec2types.RequestLaunchTemplateData{
		ImageId:             awssdk.String(ami.id),
		MetadataOptions:     metadataOptions(spec.MetadataOptions),
		BlockDeviceMappings: blockDeviceMappings(amiFamily(resolved.nodeClass), spec.BlockDeviceMappings),
	}
	if userData != "" {
		data.UserData = awssdk.String(base64.StdEncoding.EncodeToString([]byte(userData)))
	}
	if spec.AssociatePublicIPAddress != nil {
		data.NetworkInterfaces = []ec2types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{
			DeviceIndex:              awssdk.Int32(0),
			AssociatePublicIpAddress: spec.AssociatePublicIPAddress,
			Groups:                   resolved.securityGroups,
		}}
	} else {
		data.SecurityGroupIds = resolved.securityGroups
	}
	profile := resolved.nodeClass.Status.InstanceProfile
	if spec.InstanceProfile != nil {
		profile = *spec.InstanceProfile
	}
	if profile != "" {
		data.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: awssdk.String(profile)}
	}
	return data
}

// metadataOptions applies the defaults of EC2NodeClass's metadataOptions: IMDSv2 tokens
// required, a hop limit of 1, the endpoint enabled, IPv6 disabled.
func metadataOptions(m *v1alpha1.MetadataOptions) *ec2types.LaunchTemplateInstanceMetadataOptionsRequest {
	out := &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
		HttpTokens:              ec2types.LaunchTemplateHttpTokensStateRequired,
		HttpPutResponseHopLimit: awssdk.Int32(1),
		HttpEndpoint:            ec2types.LaunchTemplateInstanceMetadataEndpointStateEnabled,
		HttpProtocolIpv6:        ec2types.LaunchTemplateInstanceMetadataProtocolIpv6Disabled,
	}
	if m == nil {
		return out
	}
	if m.HTTPTokens != nil {
		out.HttpTokens = ec2types.LaunchTemplateHttpTokensState(*m.HTTPTokens)
	}
	if m.HTTPPutResponseHopLimit != nil {
		out.HttpPutResponseHopLimit = awssdk.Int32(int32(*m.HTTPPutResponseHopLimit))
	}
	if m.HTTPEndpoint != nil {
		out.HttpEndpoint = ec2types.LaunchTemplateInstanceMetadataEndpointState(*m.HTTPEndpoint)
	}
	if m.HTTPProtocolIPv6 != nil {
		out.HttpProtocolIpv6 = ec2types.LaunchTemplateInstanceMetadataProtocolIpv6(*m.HTTPProtocolIPv6)
	}
	return out
}

// blockDeviceMappings converts the node class's volumes; without any, the AMI family's root
// volume: 20 GiB gp3, encrypted (Bottlerocket: a 4 GiB OS volume and a 20 GiB data volume).
func blockDeviceMappings(family v1alpha1.AMIFamily, mappings []v1alpha1.BlockDeviceMapping) []ec2types.LaunchTemplateBlockDeviceMappingRequest {
	gp3 := func(device string, gib int32) ec2types.LaunchTemplateBlockDeviceMappingRequest {
		return ec2types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: awssdk.String(device), Ebs: &ec2types.LaunchTemplateEbsBlockDeviceRequest{
			VolumeSize: awssdk.Int32(gib), VolumeType: ec2types.VolumeTypeGp3, Encrypted: awssdk.Bool(true), DeleteOnTermination: awssdk.Bool(true)}}
	}
	if len(mappings) == 0 {
		if family == v1alpha1.AMIFamilyBottlerocket {
			return []ec2types.LaunchTemplateBlockDeviceMappingRequest{gp3("/dev/xvda", 4), gp3("/dev/xvdb", 20)}
		}
		return []ec2types.LaunchTemplateBlockDeviceMappingRequest{gp3("/dev/xvda", 20)}
	}
	var out []ec2types.LaunchTemplateBlockDeviceMappingRequest
	for _, m := range mappings {
		bdm := ec2types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: awssdk.String(m.DeviceName)}
		if e := m.EBS; e != nil {
			ebs := &ec2types.LaunchTemplateEbsBlockDeviceRequest{
				DeleteOnTermination: e.DeleteOnTermination, Encrypted: e.Encrypted, KmsKeyId: e.KMSKeyID, SnapshotId: e.SnapshotID}
			if e.IOPS != nil {
				ebs.Iops = awssdk.Int32(int32(*e.IOPS))
			}
			if e.Throughput != nil {
				ebs.Throughput = awssdk.Int32(int32(*e.Throughput))
			}
			if e.VolumeSize != nil {
				// EBS sizes are whole GiB: round up.
				ebs.VolumeSize = awssdk.Int32(int32((e.VolumeSize.Value() + 1<<30 - 1) >> 30))
			}
			if e.VolumeType != nil {
				ebs.VolumeType = ec2types.VolumeType(*e.VolumeType)
			}
			bdm.Ebs = ebs
		}
		out = append(out, bdm)
	}
	return out
}

// ec2Tags converts a map to EC2 tags, sorted by key.
func ec2Tags(tags map[string]string) []ec2types.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, ec2types.Tag{Key: awssdk.String(k), Value: awssdk.String(tags[k])})
	}
	return out
}

// DeleteLaunchTemplates deletes the launch templates of this cluster that this process has not
// used since it started, e.g. those of a node class that changed or was deleted. A launch
// racing with it may find its template gone; it fails, forgets the templates it knew, and
// creates its template again on the next try.
func (p *Provider) DeleteLaunchTemplates(ctx context.Context) (int, error) {
	l := p.launchTemplates
	pages := ec2.NewDescribeLaunchTemplatesPaginator(l.ec2, &ec2.DescribeLaunchTemplatesInput{
		Filters: []ec2types.Filter{{Name: awssdk.String("tag:" + v1alpha1.TagCluster), Values: []string{l.opts.ClusterName}}},
	})
	deleted := 0
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return deleted, fmt.Errorf("describing launch templates: %w", err)
		}
		for _, lt := range page.LaunchTemplates {
			name := awssdk.ToString(lt.LaunchTemplateName)
			l.mu.Lock()
			used := l.known[name]
			l.mu.Unlock()
			if used {
				continue
			}
			if _, err := l.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: awssdk.String(name)}); err != nil && !isNotFound(err) {
				return deleted, fmt.Errorf("deleting launch template %s: %w", name, err)
			}
			klog.FromContext(ctx).V(2).Info("Deleted launch template", "launchTemplate", name)
			deleted++
		}
	}
	return deleted, nil
}
