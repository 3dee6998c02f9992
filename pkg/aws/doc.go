// Package aws implements nodewright's cloud interface (pkg/cloud) on EC2 with aws-sdk-go-v2:
// instance types and their offerings (DescribeInstanceTypes, DescribeInstanceTypeOfferings),
// prices (the Pricing API, with the embedded catalog as fallback, and
// DescribeSpotPriceHistory), the pools that recently ran out of capacity, subnets, security
// groups and AMIs resolved from an EC2NodeClass (EC2 and the public SSM parameters), launch
// templates with AL2023 nodeadm user data, launches with instant CreateFleet, instances by
// tag, termination, and the SQS interruption queue fed by EventBridge.
//
// Every AWS call goes through the narrow per-service interfaces of api.go (EC2API, SSMAPI,
// PricingAPI, SQSAPI), which the SDK's clients satisfy; NewClients builds them from the
// default credential chain, with an endpoint override for the emulator in pkg/aws/emulator,
// against which the package is tested over HTTP.
//
// It may import pkg/cloud, pkg/apis and pkg/aws/catalog. It must not import the scheduler,
// the Provision plugin, pkg/lifecycle or pkg/aws/emulator (outside tests): the plugin and the
// lifecycle see AWS only through pkg/cloud.
package aws
