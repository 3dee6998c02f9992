package aws

import (
	"context"
	"fmt"
	"slices"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// TagNodeClaimUID is the EC2 tag with the UID of the NodeClaim an instance was launched for,
// by which Create finds the instance an earlier call launched.
const TagNodeClaimUID = v1alpha1.GroupName + "/nodeclaim-uid"

// liveStates are the instance states List and Create's lookup consider: all but terminated.
var liveStates = []string{"pending", "running", "shutting-down", "stopping", "stopped"}

// Create implements cloud.Provider. It tries spot first when the requirements allow it, then
// on-demand when they allow it; for each, a CreateFleet of the 60 cheapest available pools,
// and once more with the next ones if none had capacity. Pools that report no capacity are
// unavailable for the TTL of UnavailableOfferings.
func (p *Provider) Create(ctx context.Context, nodeClaim *v1alpha1.NodeClaim, nodeClass *v1alpha1.EC2NodeClass, kubelet *v1alpha1.KubeletConfiguration) (*cloud.Instance, error) {
	if existing, err := p.findByNodeClaim(ctx, nodeClaim); err != nil || existing != nil {
		return existing, err
	}
	resolved, err := p.nodeClasses.resolve(ctx, nodeClass)
	if err != nil {
		return nil, err
	}
	types, err := p.instanceTypes(ctx, resolved, kubelet, v1alpha1.AllowedValues(nodeClaim.Spec.Requirements, corev1.LabelInstanceTypeStable))
	if err != nil {
		return nil, err
	}
	list, err := p.typeCache.get(ctx)
	if err != nil {
		return nil, err
	}
	infos := make(map[string]typeInfo, len(list))
	for _, info := range list {
		infos[info.name] = info
	}
	all := candidates(nodeClaim, types, infos, resolved)
	var tried []string
	var lastErr error
	for _, ct := range []string{v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand} {
		for attempt := range 2 {
			var pools []candidate
			for _, c := range all {
				if c.capacityType == ct && !p.unavailable.IsUnavailable(c.info.name, c.zone, ct) && len(pools) < MaxOverrides {
					pools = append(pools, c)
				}
			}
			if len(pools) == 0 {
				break
			}
			token := string(nodeClaim.UID)
			if ct != v1alpha1.CapacityTypeSpot || attempt > 0 {
				token = requestToken(nodeClaim, pools)
			}
			res, err := p.createFleet(ctx, nodeClaim, resolved, kubelet, ct, pools, token)
			if err != nil {
				return nil, err
			}
			for _, c := range res.insufficient {
				p.unavailable.MarkUnavailable(c.info.name, c.zone, c.capacityType)
				tried = append(tried, c.String())
			}
			if res.instanceID != "" {
				return p.launched(ctx, nodeClaim, res)
			}
			if res.err != nil {
				lastErr = res.err
				if len(res.insufficient) == 0 {
					return nil, res.err
				}
			}
		}
	}
	return nil, &cloud.InsufficientCapacityError{Offerings: tried, Err: lastErr}
}

// launched describes the instance a fleet launched, for its node name and image.
func (p *Provider) launched(ctx context.Context, nodeClaim *v1alpha1.NodeClaim, res *fleetResult) (*cloud.Instance, error) {
	out, err := p.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{res.instanceID}})
	if err != nil {
		return nil, fmt.Errorf("describing launched instance %s: %w", res.instanceID, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			inst := toInstance(i)
			klog.FromContext(ctx).V(2).Info("Launched instance", "nodeClaim", klog.KObj(nodeClaim), "instance", inst.ID,
				"hostname", inst.NodeName, "instanceType", inst.InstanceType, "zone", inst.Zone, "capacityType", inst.CapacityType)
			return inst, nil
		}
	}
	return nil, fmt.Errorf("describing launched instance %s: not found", res.instanceID)
}

// findByNodeClaim returns the live instance launched for nodeClaim's UID, or nil.
func (p *Provider) findByNodeClaim(ctx context.Context, nodeClaim *v1alpha1.NodeClaim) (*cloud.Instance, error) {
	instances, err := p.describe(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: awssdk.String("tag:" + v1alpha1.TagCluster), Values: []string{p.opts.ClusterName}},
		{Name: awssdk.String("tag:" + TagNodeClaimUID), Values: []string{string(nodeClaim.UID)}},
		{Name: awssdk.String("instance-state-name"), Values: liveStates},
	}})
	if err != nil || len(instances) == 0 {
		return nil, err
	}
	return instances[0], nil
}

// Get implements cloud.Provider.
func (p *Provider) Get(ctx context.Context, providerID string) (*cloud.Instance, error) {
	_, id, err := ParseProviderID(providerID)
	if err != nil {
		return nil, err
	}
	instances, err := p.describe(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if isNotFound(err) {
		return nil, &cloud.NotFoundError{ProviderID: providerID}
	}
	if err != nil {
		return nil, err
	}
	for _, inst := range instances {
		if inst.ID == id && inst.State != string(ec2types.InstanceStateNameTerminated) {
			return inst, nil
		}
	}
	return nil, &cloud.NotFoundError{ProviderID: providerID}
}

// List implements cloud.Provider.
func (p *Provider) List(ctx context.Context) ([]*cloud.Instance, error) {
	return p.describe(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: awssdk.String("tag:" + v1alpha1.TagCluster), Values: []string{p.opts.ClusterName}},
		{Name: awssdk.String("instance-state-name"), Values: liveStates},
	}})
}

// Delete implements cloud.Provider.
func (p *Provider) Delete(ctx context.Context, providerID string) error {
	inst, err := p.Get(ctx, providerID)
	if err != nil {
		return err
	}
	if inst.State == string(ec2types.InstanceStateNameShuttingDown) {
		return nil
	}
	_, err = p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{inst.ID}})
	if isNotFound(err) {
		return &cloud.NotFoundError{ProviderID: providerID}
	}
	if err != nil {
		return fmt.Errorf("terminating instance %s: %w", inst.ID, err)
	}
	klog.FromContext(ctx).V(2).Info("Terminated instance", "instance", inst.ID)
	return nil
}

// describe pages through DescribeInstances.
func (p *Provider) describe(ctx context.Context, in *ec2.DescribeInstancesInput) ([]*cloud.Instance, error) {
	var out []*cloud.Instance
	pages := ec2.NewDescribeInstancesPaginator(p.ec2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				out = append(out, toInstance(i))
			}
		}
	}
	slices.SortFunc(out, func(a, b *cloud.Instance) int {
		if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// toInstance converts DescribeInstances' answer.
func toInstance(i ec2types.Instance) *cloud.Instance {
	zone := ""
	if i.Placement != nil {
		zone = awssdk.ToString(i.Placement.AvailabilityZone)
	}
	ct := v1alpha1.CapacityTypeOnDemand
	if i.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot {
		ct = v1alpha1.CapacityTypeSpot
	}
	inst := &cloud.Instance{
		ID:           awssdk.ToString(i.InstanceId),
		ProviderID:   ProviderID(zone, awssdk.ToString(i.InstanceId)),
		InstanceType: string(i.InstanceType),
		Zone:         zone,
		CapacityType: ct,
		ImageID:      awssdk.ToString(i.ImageId),
		NodeName:     awssdk.ToString(i.PrivateDnsName),
		LaunchTime:   awssdk.ToTime(i.LaunchTime),
	}
	if i.State != nil {
		inst.State = string(i.State.Name)
	}
	for _, t := range i.Tags {
		switch awssdk.ToString(t.Key) {
		case v1alpha1.TagNodeClaim:
			inst.NodeClaim = awssdk.ToString(t.Value)
		case v1alpha1.TagProvisionerName:
			inst.Provisioner = awssdk.ToString(t.Value)
		}
	}
	return inst
}
