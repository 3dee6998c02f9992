// Package fake is an in-memory cloud.Provider for unit tests of the packages that use
// pkg/cloud. It launches the cheapest available offering a NodeClaim allows, keeps instances
// in a map, and lets tests inject errors.
package fake

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

var _ cloud.Provider = (*Provider)(nil)

// Provider is a fake cloud. Its exported fields may be set before use; use its methods after.
type Provider struct {
	// Types are the instance types InstanceTypes returns and Create chooses from.
	Types []*cloud.InstanceType
	// CreateErr, if set, is returned by every Create.
	CreateErr error
	// Now returns the launch time; nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	instances map[string]*cloud.Instance // by provider ID
	byClaim   map[types.UID]string       // NodeClaim UID -> provider ID, for idempotency
	creates   int
	calls     int // of Create, failed ones included
}

// InstanceTypes returns p.Types.
func (p *Provider) InstanceTypes(context.Context, *v1alpha1.EC2NodeClass, *v1alpha1.KubeletConfiguration) ([]*cloud.InstanceType, error) {
	return p.Types, nil
}

// InstanceType returns the type of p.Types named name, nil if none is.
func (p *Provider) InstanceType(_ context.Context, _ *v1alpha1.EC2NodeClass, _ *v1alpha1.KubeletConfiguration, name string) (*cloud.InstanceType, error) {
	for _, it := range p.Types {
		if it.Name == name {
			return it, nil
		}
	}
	return nil, nil
}

// Create launches the cheapest available offering of the instance types nodeClaim's
// node.kubernetes.io/instance-type requirement allows (all types if it has none).
func (p *Provider) Create(_ context.Context, nodeClaim *v1alpha1.NodeClaim, _ *v1alpha1.EC2NodeClass, _ *v1alpha1.KubeletConfiguration) (*cloud.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.CreateErr != nil {
		return nil, p.CreateErr
	}
	if id, ok := p.byClaim[nodeClaim.UID]; ok {
		return copyOf(p.instances[id]), nil
	}
	allowed := v1alpha1.AllowedValues(nodeClaim.Spec.Requirements, corev1.LabelInstanceTypeStable)
	var best *cloud.Instance
	bestPrice := 0.0
	for _, it := range p.Types {
		if allowed != nil && !allowed.Has(it.Name) {
			continue
		}
		for _, o := range it.Offerings {
			if o.Available && (best == nil || o.Price < bestPrice) {
				best, bestPrice = &cloud.Instance{InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType}, o.Price
			}
		}
	}
	if best == nil {
		return nil, &cloud.InsufficientCapacityError{}
	}
	p.creates++
	best.ID = fmt.Sprintf("i-%017x", p.creates)
	best.ProviderID = fmt.Sprintf("aws:///%s/%s", best.Zone, best.ID)
	best.NodeName = fmt.Sprintf("ip-10-0-0-%d.ec2.internal", p.creates)
	best.State = "running"
	best.LaunchTime = p.now()
	best.NodeClaim = nodeClaim.Name
	best.Provisioner = nodeClaim.Spec.Provisioner
	if p.instances == nil {
		p.instances, p.byClaim = map[string]*cloud.Instance{}, map[types.UID]string{}
	}
	p.instances[best.ProviderID] = best
	p.byClaim[nodeClaim.UID] = best.ProviderID
	return copyOf(best), nil
}

// Get returns the instance, or a NotFound error.
func (p *Provider) Get(_ context.Context, providerID string) (*cloud.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i, ok := p.instances[providerID]; ok {
		return copyOf(i), nil
	}
	return nil, &cloud.NotFoundError{ProviderID: providerID}
}

// List returns every instance, sorted by provider ID.
func (p *Provider) List(context.Context) ([]*cloud.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*cloud.Instance, 0, len(p.instances))
	for _, i := range p.instances {
		out = append(out, copyOf(i))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ProviderID < out[b].ProviderID })
	return out, nil
}

// Delete removes the instance at once, or returns a NotFound error if it is gone.
func (p *Provider) Delete(_ context.Context, providerID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.instances[providerID]; !ok {
		return &cloud.NotFoundError{ProviderID: providerID}
	}
	delete(p.instances, providerID)
	return nil
}

// CreateCalls returns how many times Create was called, failed calls included.
func (p *Provider) CreateCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// Creates returns how many instances Create has launched.
func (p *Provider) Creates() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.creates
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func copyOf(i *cloud.Instance) *cloud.Instance {
	c := *i
	return &c
}
