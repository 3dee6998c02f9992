package aws

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/cloud"
)

// Defaults of Options.
const (
	DefaultInstanceTypesTTL        = 5 * time.Minute
	DefaultNodeClassTTL            = time.Minute
	DefaultPriceRefreshInterval    = time.Hour
	DefaultUnavailableOfferingsTTL = 3 * time.Minute
)

// Options configure a Provider.
type Options struct {
	// Clients are the AWS clients (see NewClients). Required.
	Clients *Clients
	// ClusterName names the cluster: instances and launch templates are tagged with it
	// (nodewright.dev/cluster), and nodeadm joins the nodes to it. Required.
	ClusterName string
	// ClusterEndpoint is the kube-apiserver's URL the nodes join. Required.
	ClusterEndpoint string
	// ClusterCA is the cluster's certificate authority, base64-encoded PEM, for the nodes.
	// Required.
	ClusterCA string
	// ClusterCIDR is the cluster's service CIDR, from which nodeadm derives the DNS address.
	// Required.
	ClusterCIDR string
	// KubernetesVersion is the control plane's "1.minor" version, which selects the EKS
	// optimized AMIs, e.g. "1.37". Required unless every node class has an amiSelector.
	KubernetesVersion string
	// Clock tells the time for caches, unavailable offerings and the price refresh. Default
	// the real clock.
	Clock clock.WithTicker
	// InstanceTypesTTL is how long instance types and their zones are cached.
	// Default DefaultInstanceTypesTTL.
	InstanceTypesTTL time.Duration
	// NodeClassTTL is how long a node class's subnets, security groups and AMIs are cached.
	// Default DefaultNodeClassTTL.
	NodeClassTTL time.Duration
	// PriceRefreshInterval is how often Start refreshes prices. Default
	// DefaultPriceRefreshInterval.
	PriceRefreshInterval time.Duration
	// UnavailableOfferingsTTL is how long an offering that ran out of capacity is not offered.
	// Default DefaultUnavailableOfferingsTTL.
	UnavailableOfferingsTTL time.Duration
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Clients == nil || o.Clients.EC2 == nil || o.Clients.SSM == nil || o.Clients.Pricing == nil {
		errs = append(errs, errors.New("the EC2, SSM and Pricing clients are required"))
	}
	if o.ClusterName == "" {
		errs = append(errs, errors.New("the cluster name is required"))
	}
	if o.ClusterEndpoint == "" || o.ClusterCA == "" || o.ClusterCIDR == "" {
		errs = append(errs, errors.New("the cluster endpoint, certificate authority and CIDR are required: nodeadm needs them to join nodes"))
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	o.InstanceTypesTTL = orDuration(o.InstanceTypesTTL, DefaultInstanceTypesTTL)
	o.NodeClassTTL = orDuration(o.NodeClassTTL, DefaultNodeClassTTL)
	o.PriceRefreshInterval = orDuration(o.PriceRefreshInterval, DefaultPriceRefreshInterval)
	o.UnavailableOfferingsTTL = orDuration(o.UnavailableOfferingsTTL, DefaultUnavailableOfferingsTTL)
	return o, errors.Join(errs...)
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Provider is the EC2 implementation of cloud.Provider. Create it with New; it is safe for
// concurrent use.
type Provider struct {
	opts            Options
	region          string
	ec2             EC2API
	clock           clock.WithTicker
	typeCache       *instanceTypeCache
	pricing         *Pricing
	unavailable     *UnavailableOfferings
	nodeClasses     *nodeClassResolver
	launchTemplates *launchTemplates
}

var _ cloud.Provider = (*Provider)(nil)

// New returns a Provider configured by opts. It makes no AWS call: caches fill on first use.
// Call Start to refresh prices in the background.
func New(opts Options) (*Provider, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	c := opts.Clients
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	unavailable := NewUnavailableOfferings(opts.Clock, opts.UnavailableOfferingsTTL)
	return &Provider{
		opts:      opts,
		region:    region,
		ec2:       c.EC2,
		clock:     opts.Clock,
		typeCache: newInstanceTypeCache(c.EC2, opts.Clock, opts.InstanceTypesTTL),
		pricing: NewPricing(PricingOptions{EC2: c.EC2, Pricing: c.Pricing, Region: region, Clock: opts.Clock,
			RefreshInterval: opts.PriceRefreshInterval}),
		unavailable:     unavailable,
		nodeClasses:     newNodeClassResolver(c.EC2, c.SSM, opts.Clock, opts.NodeClassTTL, opts.KubernetesVersion),
		launchTemplates: newLaunchTemplates(c.EC2, opts),
	}, nil
}

// Pricing returns the provider's prices, e.g. to Start their refresh.
func (p *Provider) Pricing() *Pricing { return p.pricing }

// UnavailableOfferings returns the offerings the provider currently skips.
func (p *Provider) UnavailableOfferings() *UnavailableOfferings { return p.unavailable }

// ProviderID returns the Node providerID of an instance: aws:///<zone>/<instance-id>.
func ProviderID(zone, instanceID string) string {
	return "aws:///" + zone + "/" + instanceID
}

// ParseProviderID returns the zone and instance ID of an aws:///<zone>/<instance-id>
// providerID.
func ParseProviderID(providerID string) (zone, instanceID string, err error) {
	rest, ok := strings.CutPrefix(providerID, "aws:///")
	if !ok {
		return "", "", fmt.Errorf("providerID %q does not start with aws:///", providerID)
	}
	zone, instanceID, ok = strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix(instanceID, "i-") || strings.Contains(instanceID, "/") {
		return "", "", fmt.Errorf("providerID %q is not aws:///<zone>/<instance-id>", providerID)
	}
	return zone, instanceID, nil
}
