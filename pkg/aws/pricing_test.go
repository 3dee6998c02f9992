package aws

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/aws/emulator"
)

func TestPricingFallsBackToCatalog(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	// More throttling than the retryer's attempts: GetProducts fails, the catalog's prices serve.
	env.emulator.Throttle("GetProducts", 1000)
	p := env.provider.Pricing()
	if err := p.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded while GetProducts is throttled")
	}
	if price, ok := p.Price("t3a.2xlarge", "us-east-1a", "on-demand"); !ok || price != 0.3008 {
		t.Errorf("fallback on-demand price of t3a.2xlarge = %v, %v; want 0.3008", price, ok)
	}
	spot, _ := emulator.ModelSpotPrice("m5.large", "us-east-1c")
	if price, ok := p.Price("m5.large", "us-east-1c", "spot"); !ok || price != spot {
		t.Errorf("spot price of m5.large in us-east-1c = %v, %v; want %v", price, ok, spot)
	}
	if n := len(env.emulator.CallsOf("GetProducts")); n != DefaultMaxAttempts {
		t.Errorf("%d GetProducts calls, want %d attempts", n, DefaultMaxAttempts)
	}
}

func TestPricingStartRefreshes(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	p := env.provider.Pricing()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Start(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return cond(), nil
		}); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	waitFor("the first refresh", func() bool { return len(env.emulator.CallsOf("GetProducts")) > 0 })
	if err := env.emulator.SetSpotPrice("m5.large", "us-east-1a", 0.0123); err != nil {
		t.Fatal(err)
	}
	waitFor("the ticker", func() bool { return env.clock.HasWaiters() })
	env.clock.Step(DefaultPriceRefreshInterval)
	waitFor("the refreshed spot price", func() bool {
		price, _ := p.Price("m5.large", "us-east-1a", "spot")
		return price == 0.0123
	})
}

func TestParsePriceListItem(t *testing.T) {
	doc := `{"product":{"attributes":{"instanceType":"m5.large"}},"terms":{"OnDemand":{"A.B":{"priceDimensions":{"A.B.C":{"pricePerUnit":{"USD":"0.0960000000"}}}}}}}`
	name, price, err := parsePriceListItem(doc)
	if err != nil || name != "m5.large" || price != 0.096 {
		t.Errorf("parsePriceListItem = %q, %v, %v; want m5.large, 0.096", name, price, err)
	}
	if _, _, err := parsePriceListItem("{"); err == nil {
		t.Error("parsePriceListItem accepted broken JSON")
	}
}
