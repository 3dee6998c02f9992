package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// resolvedNodeClass is an EC2NodeClass's selectors resolved to EC2 resources.
type resolvedNodeClass struct {
	nodeClass *v1alpha1.EC2NodeClass
	// subnets holds, per zone, the selected subnet with the most free addresses.
	subnets        map[string]subnetInfo
	securityGroups []string
	// amis by architecture (amd64, arm64), and the variants for NVIDIA GPUs.
	amis       map[string]amiInfo
	nvidiaAMIs map[string]amiInfo
}

type subnetInfo struct {
	id, zone string
	free     int32
}

type amiInfo struct {
	id, name, arch string
	created        time.Time
}

// zones returns the zones of the node class's subnets, sorted.
func (r *resolvedNodeClass) zones() []string {
	var out []string
	for z := range r.subnets {
		out = append(out, z)
	}
	sort.Strings(out)
	return out
}

// ami returns the AMI a node of the type boots, or nil when the node class has none for it.
func (r *resolvedNodeClass) ami(t typeInfo) *amiInfo {
	if t.gpuMaker == "nvidia" {
		if a, ok := r.nvidiaAMIs[t.arch]; ok {
			return &a
		}
	}
	if a, ok := r.amis[t.arch]; ok {
		return &a
	}
	return nil
}

// nodeClassResolver resolves node classes and caches the answer for a TTL.
type nodeClassResolver struct {
	ec2               EC2API
	ssm               SSMAPI
	kubernetesVersion string
	cache             *ttlCache[string, *resolvedNodeClass]
}

func newNodeClassResolver(ec2API EC2API, ssmAPI SSMAPI, c clock.PassiveClock, ttl time.Duration, version string) *nodeClassResolver {
	return &nodeClassResolver{ec2: ec2API, ssm: ssmAPI, kubernetesVersion: version, cache: newTTLCache[string, *resolvedNodeClass](c, ttl)}
}

// resolve returns the subnets, security groups and AMIs of nodeClass. A selector that matches
// nothing is a *cloud.NodeClassNotReadyError naming it.
func (r *nodeClassResolver) resolve(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass) (*resolvedNodeClass, error) {
	specKey, err := json.Marshal(nodeClass.Spec)
	if err != nil {
		return nil, fmt.Errorf("encoding node class %s: %w", nodeClass.Name, err)
	}
	key := nodeClass.Name + "/" + string(specKey)
	if cached, ok := r.cache.get(key); ok {
		return cached, nil
	}
	out := &resolvedNodeClass{nodeClass: nodeClass}
	if out.subnets, err = r.subnets(ctx, nodeClass); err != nil {
		return nil, err
	}
	if out.securityGroups, err = r.securityGroups(ctx, nodeClass); err != nil {
		return nil, err
	}
	if out.amis, out.nvidiaAMIs, err = r.amis(ctx, nodeClass); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(4).Info("Resolved node class", "nodeClass", nodeClass.Name, "zones", out.zones(), "securityGroups", out.securityGroups)
	r.cache.set(key, out)
	return out, nil
}

// selectorString renders a selector for an error message: its tags as JSON, or its IDs.
func selectorString(tags map[string]string, ids []string) string {
	var b []byte
	if len(tags) > 0 {
		b, _ = json.Marshal(tags)
	} else {
		b, _ = json.Marshal(ids)
	}
	return string(b)
}

// tagFilters turns selector tags into EC2 filters: tag:KEY=VALUE, or tag-key=KEY for "*".
func tagFilters(tags map[string]string) []ec2types.Filter {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []ec2types.Filter
	for _, k := range keys {
		if tags[k] == "*" {
			out = append(out, ec2types.Filter{Name: awssdk.String("tag-key"), Values: []string{k}})
			continue
		}
		out = append(out, ec2types.Filter{Name: awssdk.String("tag:" + k), Values: []string{tags[k]}})
	}
	return out
}

func notReady(nodeClass *v1alpha1.EC2NodeClass, format string, args ...any) error {
	return &cloud.NodeClassNotReadyError{NodeClass: nodeClass.Name, Reason: fmt.Sprintf(format, args...)}
}

func (r *nodeClassResolver) subnets(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass) (map[string]subnetInfo, error) {
	sel := nodeClass.Spec.SubnetSelector
	in := &ec2.DescribeSubnetsInput{}
	if len(sel.IDs) > 0 {
		in.SubnetIds = sel.IDs
	} else {
		in.Filters = tagFilters(sel.Tags)
	}
	out := map[string]subnetInfo{}
	pages := ec2.NewDescribeSubnetsPaginator(r.ec2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNotFound(err) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("describing subnets: %w", err)
		}
		for _, s := range page.Subnets {
			info := subnetInfo{id: awssdk.ToString(s.SubnetId), zone: awssdk.ToString(s.AvailabilityZone), free: awssdk.ToInt32(s.AvailableIpAddressCount)}
			if best, ok := out[info.zone]; !ok || info.free > best.free || info.free == best.free && info.id < best.id {
				out[info.zone] = info
			}
		}
	}
	if len(out) == 0 {
		return nil, notReady(nodeClass, "no subnet matches subnetSelector %s", selectorString(sel.Tags, sel.IDs))
	}
	return out, nil
}

func (r *nodeClassResolver) securityGroups(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass) ([]string, error) {
	sel := nodeClass.Spec.SecurityGroupSelector
	in := &ec2.DescribeSecurityGroupsInput{}
	if len(sel.IDs) > 0 {
		in.GroupIds = sel.IDs
	} else {
		in.Filters = tagFilters(sel.Tags)
	}
	var out []string
	pages := ec2.NewDescribeSecurityGroupsPaginator(r.ec2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNotFound(err) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("describing security groups: %w", err)
		}
		for _, g := range page.SecurityGroups {
			out = append(out, awssdk.ToString(g.GroupId))
		}
	}
	if len(out) == 0 {
		return nil, notReady(nodeClass, "no security group matches securityGroupSelector %s", selectorString(sel.Tags, sel.IDs))
	}
	sort.Strings(out)
	return out, nil
}

// Architecture names: Kubernetes' to EC2's and back.
var (
	kubeToEC2Arch = map[string]string{"amd64": "x86_64", "arm64": "arm64"}
	ec2ToKubeArch = map[string]string{"x86_64": "amd64", "arm64": "arm64"}
)

// amis resolves the node class's AMIs per architecture: from amiSelector when set, else from
// the AMI family's public SSM parameters for the cluster's Kubernetes version.
func (r *nodeClassResolver) amis(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass) (standard, nvidia map[string]amiInfo, err error) {
	if nodeClass.Spec.AMISelector != nil {
		standard, err = r.selectAMIs(ctx, nodeClass)
		return standard, nil, err
	}
	if r.kubernetesVersion == "" {
		return nil, nil, notReady(nodeClass, "no amiSelector and no Kubernetes version configured to find the %s AMIs", amiFamily(nodeClass))
	}
	standard, nvidia = map[string]amiInfo{}, map[string]amiInfo{}
	for _, arch := range []string{"amd64", "arm64"} {
		for _, gpu := range []bool{false, true} {
			name := amiParameter(amiFamily(nodeClass), r.kubernetesVersion, kubeToEC2Arch[arch], gpu)
			out, err := r.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: awssdk.String(name)})
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("getting SSM parameter %s: %w", name, err)
			}
			ami := amiInfo{id: awssdk.ToString(out.Parameter.Value), name: name, arch: arch}
			if gpu {
				nvidia[arch] = ami
			} else {
				standard[arch] = ami
			}
		}
	}
	if len(standard) == 0 {
		return nil, nil, notReady(nodeClass, "no %s AMI for Kubernetes %s in the public SSM parameters", amiFamily(nodeClass), r.kubernetesVersion)
	}
	return standard, nvidia, nil
}

func amiFamily(nodeClass *v1alpha1.EC2NodeClass) v1alpha1.AMIFamily {
	if nodeClass.Spec.AMIFamily == "" {
		return v1alpha1.AMIFamilyAL2023
	}
	return nodeClass.Spec.AMIFamily
}

// amiParameter names the public SSM parameter of an EKS optimized AMI:
//
//	/aws/service/eks/optimized-ami/<version>/amazon-linux-2023/<arch>/{standard,nvidia}/recommended/image_id
//	/aws/service/bottlerocket/aws-k8s-<version>[-nvidia]/<arch>/latest/image_id
func amiParameter(family v1alpha1.AMIFamily, version, arch string, nvidia bool) string {
	if family == v1alpha1.AMIFamilyBottlerocket {
		flavor := ""
		if nvidia {
			flavor = "-nvidia"
		}
		return fmt.Sprintf("/aws/service/bottlerocket/aws-k8s-%s%s/%s/latest/image_id", version, flavor, arch)
	}
	variant := "standard"
	if nvidia {
		variant = "nvidia"
	}
	return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2023/%s/%s/recommended/image_id", version, arch, variant)
}

// selectAMIs resolves amiSelector with DescribeImages and keeps the newest AMI per
// architecture.
func (r *nodeClassResolver) selectAMIs(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass) (map[string]amiInfo, error) {
	sel := nodeClass.Spec.AMISelector
	in := &ec2.DescribeImagesInput{ImageIds: sel.IDs, Filters: tagFilters(sel.Tags)}
	if sel.Name != "" {
		in.Filters = append(in.Filters, ec2types.Filter{Name: awssdk.String("name"), Values: []string{sel.Name}})
	}
	if sel.Owner != "" {
		in.Owners = []string{sel.Owner}
	} else if len(sel.IDs) == 0 {
		in.Owners = []string{"self", "amazon"}
	}
	out := map[string]amiInfo{}
	pages := ec2.NewDescribeImagesPaginator(r.ec2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNotFound(err) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("describing images: %w", err)
		}
		for _, img := range page.Images {
			arch, ok := ec2ToKubeArch[string(img.Architecture)]
			if !ok {
				continue
			}
			created, _ := time.Parse(time.RFC3339, awssdk.ToString(img.CreationDate))
			ami := amiInfo{id: awssdk.ToString(img.ImageId), name: awssdk.ToString(img.Name), arch: arch, created: created}
			if best, ok := out[arch]; !ok || ami.created.After(best.created) || ami.created.Equal(best.created) && ami.id > best.id {
				out[arch] = ami
			}
		}
	}
	if len(out) == 0 {
		b, _ := json.Marshal(sel)
		return nil, notReady(nodeClass, "no AMI matches amiSelector %s", b)
	}
	return out, nil
}
