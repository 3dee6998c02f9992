package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// PricingOptions configure Pricing.
type PricingOptions struct {
	EC2     EC2API
	Pricing PricingAPI
	// Region is the region whose prices are asked for.
	Region string
	Clock  clock.WithTicker
	// RefreshInterval is how often Start refreshes. Default DefaultPriceRefreshInterval.
	RefreshInterval time.Duration
}

// Pricing knows the hourly price of every offering: on demand from the AWS Pricing API
// (GetProducts), falling back to the catalog's embedded us-east-1 prices for types the API
// has not priced (or until it answers); spot from the latest DescribeSpotPriceHistory entry
// of each type and zone. A spot pool without a price is not offered.
type Pricing struct {
	opts PricingOptions

	mu        sync.RWMutex
	onDemand  map[string]float64
	spot      map[[2]string]float64 // (type, zone)
	attempted bool
}

// NewPricing returns prices initialised from the embedded catalog; Refresh or Start fetch
// the cloud's.
func NewPricing(opts PricingOptions) *Pricing {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	opts.RefreshInterval = orDuration(opts.RefreshInterval, DefaultPriceRefreshInterval)
	return &Pricing{opts: opts, onDemand: fallbackOnDemandPrices(), spot: map[[2]string]float64{}}
}

// fallbackOnDemandPrices is the table generated from the project's catalog: us-east-1 Linux
// on-demand prices.
func fallbackOnDemandPrices() map[string]float64 {
	out := map[string]float64{}
	for _, it := range catalog.All() {
		if it.OnDemandPriceUSD > 0 {
			out[it.Name] = it.OnDemandPriceUSD
		}
	}
	return out
}

// Price returns the hourly price of an offering, and whether it is known.
func (p *Pricing) Price(instanceType, zone, capacityType string) (float64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if capacityType == v1alpha1.CapacityTypeSpot {
		price, ok := p.spot[[2]string{instanceType, zone}]
		return price, ok
	}
	price, ok := p.onDemand[instanceType]
	return price, ok
}

// ensure refreshes the prices once if they were never refreshed. A failure is logged, not
// returned: the fallback prices still serve, and Start retries.
func (p *Pricing) ensure(ctx context.Context) error {
	p.mu.RLock()
	attempted := p.attempted
	p.mu.RUnlock()
	if attempted {
		return nil
	}
	if err := p.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		klog.FromContext(ctx).Error(err, "Refreshing prices; using the prices known so far")
	}
	return nil
}

// Start refreshes the prices now and then every RefreshInterval, until ctx is done. It
// blocks: run it in a goroutine.
func (p *Pricing) Start(ctx context.Context) {
	log := klog.FromContext(ctx)
	ticker := p.opts.Clock.NewTicker(p.opts.RefreshInterval)
	defer ticker.Stop()
	for {
		if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Refreshing prices")
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// Refresh fetches on-demand and spot prices. Prices that could not be fetched keep their
// previous values.
func (p *Pricing) Refresh(ctx context.Context) error {
	onDemand, odErr := p.fetchOnDemand(ctx)
	spot, spotErr := p.fetchSpot(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempted = true
	if odErr == nil {
		for name, price := range onDemand {
			p.onDemand[name] = price
		}
	}
	if spotErr == nil {
		p.spot = spot
	}
	klog.FromContext(ctx).V(4).Info("Refreshed prices", "onDemand", len(onDemand), "spot", len(spot))
	return errors.Join(odErr, spotErr)
}

// fetchOnDemand pages through GetProducts for the region's Linux, shared-tenancy on-demand
// compute instances.
func (p *Pricing) fetchOnDemand(ctx context.Context) (map[string]float64, error) {
	term := func(field, value string) pricingtypes.Filter {
		return pricingtypes.Filter{Type: pricingtypes.FilterTypeTermMatch, Field: awssdk.String(field), Value: awssdk.String(value)}
	}
	pages := pricing.NewGetProductsPaginator(p.opts.Pricing, &pricing.GetProductsInput{
		ServiceCode:   awssdk.String("AmazonEC2"),
		FormatVersion: awssdk.String("aws_v1"),
		Filters: []pricingtypes.Filter{
			term("regionCode", p.opts.Region),
			term("operatingSystem", "Linux"),
			term("tenancy", "Shared"),
			term("preInstalledSw", "NA"),
			term("capacitystatus", "Used"),
		},
	})
	out := map[string]float64{}
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("getting on-demand prices: %w", err)
		}
		for _, doc := range page.PriceList {
			name, price, err := parsePriceListItem(doc)
			if err != nil {
				return nil, fmt.Errorf("parsing the price list: %w", err)
			}
			if name != "" && price > 0 {
				out[name] = price
			}
		}
	}
	return out, nil
}

// priceListItem is the part of a Pricing API product document the provider reads.
type priceListItem struct {
	Product struct {
		Attributes struct {
			InstanceType string `json:"instanceType"`
		} `json:"attributes"`
	} `json:"product"`
	Terms struct {
		OnDemand map[string]struct {
			PriceDimensions map[string]struct {
				PricePerUnit map[string]string `json:"pricePerUnit"`
			} `json:"priceDimensions"`
		} `json:"OnDemand"`
	} `json:"terms"`
}

// parsePriceListItem returns the instance type and USD hourly price of a product document.
func parsePriceListItem(doc string) (string, float64, error) {
	var item priceListItem
	if err := json.Unmarshal([]byte(doc), &item); err != nil {
		return "", 0, err
	}
	for _, term := range item.Terms.OnDemand {
		for _, dim := range term.PriceDimensions {
			usd, ok := dim.PricePerUnit["USD"]
			if !ok {
				continue
			}
			price, err := strconv.ParseFloat(usd, 64)
			if err != nil {
				return "", 0, fmt.Errorf("price %q of %s: %w", usd, item.Product.Attributes.InstanceType, err)
			}
			return item.Product.Attributes.InstanceType, price, nil
		}
	}
	return item.Product.Attributes.InstanceType, 0, nil
}

// fetchSpot pages through the Linux spot price history from now and keeps the latest price of
// each (type, zone).
func (p *Pricing) fetchSpot(ctx context.Context) (map[[2]string]float64, error) {
	pages := ec2.NewDescribeSpotPriceHistoryPaginator(p.opts.EC2, &ec2.DescribeSpotPriceHistoryInput{
		ProductDescriptions: []string{"Linux/UNIX"},
		StartTime:           awssdk.Time(p.opts.Clock.Now()),
	})
	out := map[[2]string]float64{}
	latest := map[[2]string]time.Time{}
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing spot price history: %w", err)
		}
		for _, h := range page.SpotPriceHistory {
			key := [2]string{string(h.InstanceType), awssdk.ToString(h.AvailabilityZone)}
			ts := awssdk.ToTime(h.Timestamp)
			if seen, ok := latest[key]; ok && !ts.After(seen) {
				continue
			}
			price, err := strconv.ParseFloat(awssdk.ToString(h.SpotPrice), 64)
			if err != nil {
				return nil, fmt.Errorf("spot price %q of %s in %s: %w", awssdk.ToString(h.SpotPrice), key[0], key[1], err)
			}
			out[key], latest[key] = price, ts
		}
	}
	return out, nil
}
