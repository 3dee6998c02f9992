package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// MaxOverrides is the most (instance type, subnet) candidates one CreateFleet request carries.
const MaxOverrides = 60

// candidate is one pool a NodeClaim may launch into.
type candidate struct {
	info         typeInfo
	zone         string
	subnet       string
	capacityType string
	price        float64
}

func (c candidate) String() string {
	return c.info.name + "/" + c.zone + "/" + c.capacityType
}

// candidates lists the pools nodeClaim may launch into, cheapest first: the offerings of the
// instance types whose labels and offering satisfy its requirements and whose allocatable
// holds its requests. Unavailable offerings are included: launch skips them when it tries.
func candidates(nodeClaim *v1alpha1.NodeClaim, types []*cloud.InstanceType, infos map[string]typeInfo, resolved *resolvedNodeClass) []candidate {
	var out []candidate
	for _, it := range types {
		if !fits(it.Allocatable(), nodeClaim.Spec.Resources.Requests) {
			continue
		}
		// One copy of the type's labels, the offering's zone and capacity type set in turn.
		labels := make(map[string]string, len(it.Labels)+2)
		for k, v := range it.Labels {
			labels[k] = v
		}
		for _, o := range it.Offerings {
			labels[corev1.LabelTopologyZone] = o.Zone
			labels[v1alpha1.LabelCapacityType] = o.CapacityType
			if !allows(nodeClaim.Spec.Requirements, labels) {
				continue
			}
			out = append(out, candidate{info: infos[it.Name], zone: o.Zone, subnet: resolved.subnets[o.Zone].id,
				capacityType: o.CapacityType, price: o.Price})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].price != out[j].price {
			return out[i].price < out[j].price
		}
		return out[i].String() < out[j].String()
	})
	return out
}

// fits reports whether allocatable holds every request.
func fits(allocatable, requests corev1.ResourceList) bool {
	for name, req := range requests {
		if req.Sign() <= 0 {
			continue
		}
		if have, ok := allocatable[name]; !ok || have.Cmp(req) < 0 {
			return false
		}
	}
	return true
}

// fleetResult is what one CreateFleet request did.
type fleetResult struct {
	instanceID, instanceType, zone, capacityType string
	// insufficient are the pools that reported no capacity.
	insufficient []candidate
	// err is the first error that is not about capacity, when nothing launched.
	err error
}

// createFleet launches one instance of capacity type ct into the cheapest of pools, which
// share ct. Pools that report no capacity are returned to be marked unavailable.
func (p *Provider) createFleet(ctx context.Context, nodeClaim *v1alpha1.NodeClaim, resolved *resolvedNodeClass, kubelet *v1alpha1.KubeletConfiguration,
	ct string, pools []candidate, token string) (*fleetResult, error) {
	settings := nodeSettings{clusterName: p.opts.ClusterName, endpoint: p.opts.ClusterEndpoint, ca: p.opts.ClusterCA, cidr: p.opts.ClusterCIDR,
		labels: KubeletLabels(nodeClaim, ct), kubelet: kubelet, custom: resolved.nodeClass.Spec.UserData}
	for _, t := range append(append([]v1alpha1.Taint(nil), nodeClaim.Spec.Taints...), nodeClaim.Spec.StartupTaints...) {
		settings.taints = append(settings.taints, t.Core())
	}
	ud, err := userData(amiFamily(resolved.nodeClass), settings)
	if err != nil {
		return nil, err
	}
	// One launch template configuration per AMI, in the order of its cheapest pool.
	var configs []ec2types.FleetLaunchTemplateConfigRequest
	byAMI := map[string]int{}
	byOverride := map[[2]string]candidate{}
	for _, c := range pools {
		ami := resolved.ami(c.info)
		i, ok := byAMI[ami.id]
		if !ok {
			name, err := p.launchTemplates.ensure(ctx, resolved, *ami, ud)
			if err != nil {
				return nil, err
			}
			i = len(configs)
			byAMI[ami.id] = i
			configs = append(configs, ec2types.FleetLaunchTemplateConfigRequest{
				LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: awssdk.String(name), Version: awssdk.String("$Latest")},
			})
		}
		configs[i].Overrides = append(configs[i].Overrides, ec2types.FleetLaunchTemplateOverridesRequest{
			InstanceType: ec2types.InstanceType(c.info.name), SubnetId: awssdk.String(c.subnet)})
		byOverride[[2]string{c.info.name, c.subnet}] = c
	}
	in := &ec2.CreateFleetInput{
		Type:                  ec2types.FleetTypeInstant,
		LaunchTemplateConfigs: configs,
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: awssdk.Int32(1), DefaultTargetCapacityType: ec2types.DefaultTargetCapacityType(ct)},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: ec2Tags(p.instanceTags(nodeClaim, resolved))},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: ec2Tags(p.instanceTags(nodeClaim, resolved))},
		},
	}
	if ct == v1alpha1.CapacityTypeSpot {
		in.SpotOptions = &ec2types.SpotOptionsRequest{AllocationStrategy: ec2types.SpotAllocationStrategyPriceCapacityOptimized}
	} else {
		in.OnDemandOptions = &ec2types.OnDemandOptionsRequest{AllocationStrategy: ec2types.FleetOnDemandAllocationStrategyLowestPrice}
	}
	in.ClientToken = awssdk.String(token)
	out, err := p.ec2.CreateFleet(ctx, in)
	if errorCode(err) == "IdempotentParameterMismatch" {
		// The token was used by an earlier, different request (one that launched nothing:
		// Create looks for the claim's instance first): make it this request's own.
		in.ClientToken = awssdk.String(requestToken(nodeClaim, pools))
		out, err = p.ec2.CreateFleet(ctx, in)
	}
	if err != nil {
		if isNotFound(err) {
			p.launchTemplates.forget()
		}
		return nil, fmt.Errorf("creating fleet: %w", err)
	}
	res := &fleetResult{}
	for _, e := range out.Errors {
		code := awssdk.ToString(e.ErrorCode)
		var c candidate
		if lto := e.LaunchTemplateAndOverrides; lto != nil && lto.Overrides != nil {
			c = byOverride[[2]string{string(lto.Overrides.InstanceType), awssdk.ToString(lto.Overrides.SubnetId)}]
		}
		if insufficientCapacityCodes[code] && c.info.name != "" {
			res.insufficient = append(res.insufficient, c)
			continue
		}
		if res.err == nil {
			res.err = fmt.Errorf("creating fleet: %s: %s", code, awssdk.ToString(e.ErrorMessage))
		}
	}
	for _, i := range out.Instances {
		if len(i.InstanceIds) == 0 {
			continue
		}
		res.instanceID, res.instanceType, res.capacityType = i.InstanceIds[0], string(i.InstanceType), ct
		if lto := i.LaunchTemplateAndOverrides; lto != nil && lto.Overrides != nil {
			res.zone = byOverride[[2]string{string(lto.Overrides.InstanceType), awssdk.ToString(lto.Overrides.SubnetId)}].zone
		}
		res.err = nil
		break
	}
	klog.FromContext(ctx).V(4).Info("Created fleet", "nodeClaim", klog.KObj(nodeClaim), "capacityType", ct, "overrides", len(pools),
		"instance", res.instanceID, "insufficient", len(res.insufficient))
	return res, nil
}

// requestToken is a client token unique to the NodeClaim and the pools of a request.
func requestToken(nodeClaim *v1alpha1.NodeClaim, pools []candidate) string {
	h := sha256.New()
	for _, c := range pools {
		fmt.Fprintf(h, "%s/%s;", c.info.name, c.subnet)
	}
	return string(nodeClaim.UID) + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// instanceTags are the tags of a NodeClaim's instance and volumes: the node class's, then
// nodewright's, which win.
func (p *Provider) instanceTags(nodeClaim *v1alpha1.NodeClaim, resolved *resolvedNodeClass) map[string]string {
	tags := map[string]string{}
	for k, v := range resolved.nodeClass.Spec.Tags {
		tags[k] = v
	}
	tags["Name"] = nodeClaim.Name
	tags[v1alpha1.TagCluster] = p.opts.ClusterName
	tags[v1alpha1.TagProvisionerName] = nodeClaim.Spec.Provisioner
	tags[v1alpha1.TagNodeClaim] = nodeClaim.Name
	tags[TagNodeClaimUID] = string(nodeClaim.UID)
	return tags
}
