package aws

import (
	"context"
	"fmt"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/logging"
	"k8s.io/klog/v2"
)

// DefaultMaxAttempts is how many times a throttled or failed call is tried by default,
// retries included, with the SDK's standard exponential backoff and jitter between tries.
const DefaultMaxAttempts = 5

// pricingRegions are the regions that serve the Pricing API; from any other region the
// provider asks us-east-1, whose price list covers every region.
var pricingRegions = map[string]bool{"us-east-1": true, "ap-south-1": true, "eu-central-1": true}

// ClientOptions configure the SDK clients NewClients builds.
type ClientOptions struct {
	// Region is the region of EC2, SSM and SQS. Empty takes the default chain's (AWS_REGION,
	// the shared config file).
	Region string
	// Endpoint, when set, is the base URL of every client instead of AWS's endpoints: the
	// emulator's URL in the sandbox and the tests.
	Endpoint string
	// MaxAttempts bounds the tries of one call, retries included. Default DefaultMaxAttempts.
	MaxAttempts int
	// MaxBackoff bounds the delay between two tries. Default the SDK's (20s).
	MaxBackoff time.Duration
	// Credentials replaces the default credential chain when set (static credentials for the
	// emulator). Unset, the chain finds IRSA's web identity token, EKS Pod Identity, the
	// environment, the shared files or the instance profile, as the SDK documents.
	Credentials awssdk.CredentialsProvider
}

// Clients are the SDK clients of the services the provider calls.
type Clients struct {
	EC2     EC2API
	SSM     SSMAPI
	Pricing PricingAPI
	SQS     SQSAPI
	// Region is the region the clients were configured for.
	Region string
}

// NewClients loads the SDK configuration from the default chain and builds the clients, with
// the standard retryer (exponential backoff with jitter, throttling errors retried) and the
// endpoint override of opts.
func NewClients(ctx context.Context, opts ClientOptions) (*Clients, error) {
	maxAttempts := opts.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithLogger(sdkLogger{klog.FromContext(ctx)}),
		config.WithRetryer(func() awssdk.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				if opts.MaxBackoff > 0 {
					o.MaxBackoff = opts.MaxBackoff
				}
			})
		}),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set it in the options, AWS_REGION or the shared config file")
	}
	var endpoint *string
	if opts.Endpoint != "" {
		endpoint = awssdk.String(opts.Endpoint)
	}
	pricingRegion := cfg.Region
	if !pricingRegions[pricingRegion] {
		pricingRegion = "us-east-1"
	}
	return &Clients{
		Region: cfg.Region,
		EC2:    ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = endpoint }),
		SSM:    ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = endpoint }),
		SQS:    sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = endpoint }),
		Pricing: pricing.NewFromConfig(cfg, func(o *pricing.Options) {
			o.BaseEndpoint = endpoint
			o.Region = pricingRegion
		}),
	}, nil
}

// sdkLogger sends the SDK's log lines (warnings such as a response body it could not drain
// for connection reuse) to klog at verbosity 2, with the rest of nodewright's, rather than
// to standard error.
type sdkLogger struct{ logger klog.Logger }

// Logf logs one SDK line.
func (l sdkLogger) Logf(classification logging.Classification, format string, v ...any) {
	l.logger.V(2).Info("AWS SDK: "+fmt.Sprintf(format, v...), "level", string(classification))
}
