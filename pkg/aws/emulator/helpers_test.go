package emulator

import (
	"context"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	clocktesting "k8s.io/utils/clock/testing"
)

// testStart is the fake clock's start: 10:30, so that modelled spot prices date from 10:00.
var testStart = time.Date(2026, 8, 10, 10, 30, 0, 0, time.UTC)

// env is an emulator on a fake clock with the four SDK clients pointed at it.
type env struct {
	e       *Emulator
	clock   *clocktesting.FakeClock
	ec2     *ec2.Client
	ssm     *ssm.Client
	sqs     *sqs.Client
	pricing *pricing.Client
}

// newEnv starts an emulator for the test, on a fake clock and a seeded random source unless
// opts says otherwise, and closes it when the test ends.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clock := clocktesting.NewFakeClock(testStart)
	if opts.Clock == nil {
		opts.Clock = clock
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(1, 2))
	}
	e := New(opts)
	if err := e.Start(); err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	t.Cleanup(e.Close)
	cfg := aws.Config{
		Region: Region,
		// Static credentials: the SDK signs every request, as it does against AWS; the
		// emulator ignores the signature.
		Credentials: credentials.NewStaticCredentialsProvider("anonymous", "anonymous", ""),
		// The standard retryer, with short backoffs so that retried throttling is quick.
		Retryer: func() aws.Retryer { return retry.AddWithMaxBackoffDelay(retry.NewStandard(), 5*time.Millisecond) },
	}
	url := aws.String(e.URL())
	return &env{
		e:       e,
		clock:   clock,
		ec2:     ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = url }),
		ssm:     ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = url }),
		sqs:     sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = url }),
		pricing: pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.BaseEndpoint = url }),
	}
}

// errorCode returns the AWS error code of err, or "" when err is nil or not an API error.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// testUserData is AL2023 user data that registers the node with the given kubelet flags.
func testUserData(flags ...string) string {
	yaml := `apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: test
    apiServerEndpoint: https://127.0.0.1:6443
    certificateAuthority: Y2E=
    cidr: 10.96.0.0/12
  kubelet:
    flags:
`
	for _, f := range flags {
		yaml += "      - " + f + "\n"
	}
	return "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BOUNDARY\"\n\n" +
		"--BOUNDARY\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\n#!/bin/bash\necho hello\n\n" +
		"--BOUNDARY\nContent-Type: application/node.eks.aws\n\n" + yaml + "\n--BOUNDARY--\n"
}

// createLaunchTemplate creates a launch template of the AL2023 x86_64 AMI for Kubernetes
// 1.37 with the given user data and returns its ID.
func (v *env) createLaunchTemplate(ctx context.Context, t *testing.T, name, userData string) string {
	t.Helper()
	ami := v.e.state.ssm["/aws/service/eks/optimized-ami/1.37/amazon-linux-2023/x86_64/standard/recommended/image_id"]
	out, err := v.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			ImageId:  aws.String(ami),
			UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
				HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(1),
			},
		},
	})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate: %v", err)
	}
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

// schedule returns when an instance runs, by its own launch latency, and its own join delay.
func (v *env) schedule(id string) (runningAt time.Time, joinDelay time.Duration) {
	v.e.mu.Lock()
	defer v.e.mu.Unlock()
	inst := v.e.state.instances[id]
	return inst.runningAt, inst.joinDelay
}

// fleetInput is an instant CreateFleet of one instance over the given (type, zone) overrides.
func fleetInput(ltName, capacityType, token string, pools ...[2]string) *ec2.CreateFleetInput {
	var overrides []ec2types.FleetLaunchTemplateOverridesRequest
	for _, p := range pools {
		overrides = append(overrides, ec2types.FleetLaunchTemplateOverridesRequest{InstanceType: ec2types.InstanceType(p[0]), AvailabilityZone: aws.String(p[1])})
	}
	in := &ec2.CreateFleetInput{
		Type: ec2types.FleetTypeInstant,
		LaunchTemplateConfigs: []ec2types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String(ltName), Version: aws.String("$Latest")},
			Overrides:                   overrides,
		}},
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       aws.Int32(1),
			DefaultTargetCapacityType: ec2types.DefaultTargetCapacityType(capacityType),
		},
		SpotOptions:     &ec2types.SpotOptionsRequest{AllocationStrategy: ec2types.SpotAllocationStrategyLowestPrice},
		OnDemandOptions: &ec2types.OnDemandOptionsRequest{AllocationStrategy: ec2types.FleetOnDemandAllocationStrategyLowestPrice},
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeInstance,
			Tags:         []ec2types.Tag{{Key: aws.String("nodewright.dev/cluster"), Value: aws.String("test")}},
		}},
	}
	if token != "" {
		in.ClientToken = aws.String(token)
	}
	return in
}

// launchedIDs lists the instance IDs of a CreateFleet answer.
func launchedIDs(out *ec2.CreateFleetOutput) []string {
	var ids []string
	for _, i := range out.Instances {
		ids = append(ids, i.InstanceIds...)
	}
	return ids
}

func parseFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
	return f
}

// errorAs is errors.As, for one-line checks.
func errorAs(err error, target any) bool {
	return err != nil && errors.As(err, target)
}
