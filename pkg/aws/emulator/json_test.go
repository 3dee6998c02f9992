package emulator

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"
	"k8s.io/kubernetes/test/utils/ktesting"
)

func TestGetParameterResolvesPublicAMIs(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{SSMParameters: map[string]string{"/custom/ami": "ami-0123456789abcdef0"}})
	tests := []struct {
		name, wantArch, wantName string
	}{
		{"/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/x86_64/standard/recommended/image_id", "x86_64", "amazon-eks-node-al2023-x86_64-standard-1.35-v20260801"},
		{"/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/arm64/standard/recommended/image_id", "arm64", "amazon-eks-node-al2023-arm64-standard-1.35-v20260801"},
		{"/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/recommended/image_id", "x86_64", "amazon-eks-node-al2023-x86_64-nvidia-1.31-v20260801"},
		{"/aws/service/bottlerocket/aws-k8s-1.33/x86_64/latest/image_id", "x86_64", "bottlerocket-aws-k8s-1.33-x86_64-v1.40.0-5d4c3b2a"},
		{"/aws/service/bottlerocket/aws-k8s-1.33/arm64/latest/image_id", "arm64", "bottlerocket-aws-k8s-1.33-arm64-v1.40.0-5d4c3b2a"},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := v.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(tc.name)})
			if err != nil {
				t.Fatal(err)
			}
			id := aws.ToString(out.Parameter.Value)
			if id != deterministicID("ami-", tc.name) || seen[id] || aws.ToString(out.Parameter.Name) != tc.name || out.Parameter.LastModifiedDate == nil {
				t.Errorf("parameter %+v", out.Parameter)
			}
			seen[id] = true
			images, err := v.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
			if err != nil {
				t.Fatal(err)
			}
			if got := []string{string(images.Images[0].Architecture), aws.ToString(images.Images[0].Name)}; !cmp.Equal(got, []string{tc.wantArch, tc.wantName}) {
				t.Errorf("image %v, want %s %s", got, tc.wantArch, tc.wantName)
			}
		})
	}
	if out, err := v.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/custom/ami")}); err != nil || aws.ToString(out.Parameter.Value) != "ami-0123456789abcdef0" {
		t.Errorf("custom parameter: %+v, %v", out, err)
	}
	if _, err := v.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/eks/optimized-ami/1.99/amazon-linux-2023/x86_64/standard/recommended/image_id")}); errorCode(err) != "ParameterNotFound" {
		t.Errorf("unknown parameter: %v, want ParameterNotFound", err)
	}
}

func TestGetProducts(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	filters := []pricingtypes.Filter{
		{Field: aws.String("tenancy"), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String("Shared")},
		{Field: aws.String("productFamily"), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String("Compute Instance")},
		{Field: aws.String("operatingSystem"), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String("Linux")},
		{Field: aws.String("preInstalledSw"), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String("NA")},
		{Field: aws.String("capacitystatus"), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String("Used")},
		{Field: aws.String("regionCode"), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String(Region)},
	}
	prices := map[string]string{}
	pages := 0
	p := pricing.NewGetProductsPaginator(v.pricing, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: filters, FormatVersion: aws.String("aws_v1")})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, doc := range out.PriceList {
			var product struct {
				Product struct {
					Attributes map[string]string `json:"attributes"`
				} `json:"product"`
				Terms struct {
					OnDemand map[string]struct {
						PriceDimensions map[string]struct {
							PricePerUnit map[string]string `json:"pricePerUnit"`
						} `json:"priceDimensions"`
					} `json:"OnDemand"`
				} `json:"terms"`
			}
			if err := json.Unmarshal([]byte(doc), &product); err != nil {
				t.Fatalf("price list entry is not JSON: %v", err)
			}
			for _, term := range product.Terms.OnDemand {
				for _, dim := range term.PriceDimensions {
					prices[product.Product.Attributes["instanceType"]] = dim.PricePerUnit["USD"]
				}
			}
		}
	}
	// 1101 priced types (the 7 mac*.metal have no price), 100 per page.
	if len(prices) != 1101 || pages != 12 {
		t.Errorf("%d prices in %d pages, want 1101 in 12", len(prices), pages)
	}
	if got := parseFloat(t, prices["t3a.2xlarge"]); got != 0.3008 {
		t.Errorf("t3a.2xlarge costs %v, want 0.3008", got)
	}

	out, err := v.pricing.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: []pricingtypes.Filter{
		{Field: aws.String("instanceType"), Type: pricingtypes.FilterTypeAnyOf, Value: aws.String("m5.large,c5.large")},
	}})
	if err != nil || len(out.PriceList) != 2 {
		t.Errorf("ANY_OF: %d products, %v", len(out.PriceList), err)
	}
	if _, err := v.pricing.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), NextToken: aws.String("x")}); errorCode(err) != "InvalidNextTokenException" {
		t.Errorf("bad token: %v", err)
	}
	if _, err := v.pricing.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(101)}); errorCode(err) != "InvalidParameterException" {
		t.Errorf("MaxResults 101: %v", err)
	}
}

func TestSQS(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{Queues: []string{"interruption", "other"}})
	url, err := v.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("interruption")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(url.QueueUrl), v.e.QueueURL("interruption"); got != want {
		t.Errorf("queue URL %s, want %s", got, want)
	}
	if _, err := v.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")}); errorCode(err) != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Errorf("unknown queue: %v", err)
	}
	var qdne *sqstypes.QueueDoesNotExist
	if _, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(v.e.QueueURL("nope"))}); !errorAs(err, &qdne) {
		t.Errorf("receiving from an unknown queue: %v, want QueueDoesNotExist", err)
	}

	for i := range 3 {
		if _, err := v.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url.QueueUrl, MessageBody: aws.String(fmt.Sprintf("message %d", i)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("test")}}}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	// The SDK checks MD5OfBody and MD5OfMessageAttributes of every message it receives.
	out, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 2,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 2 || aws.ToString(out.Messages[0].Body) != "message 0" || out.Messages[0].Attributes["ApproximateReceiveCount"] != "1" ||
		aws.ToString(out.Messages[0].MessageAttributes["kind"].StringValue) != "test" {
		t.Fatalf("received %+v", out.Messages)
	}
	if _, err := v.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url.QueueUrl, ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// The second received message is invisible until its visibility timeout passes.
	next, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil || len(next.Messages) != 1 || aws.ToString(next.Messages[0].Body) != "message 2" {
		t.Fatalf("second receive: %+v, %v", next.Messages, err)
	}
	v.clock.Step(31 * time.Second)
	again, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil || len(again.Messages) != 2 {
		t.Fatalf("after the visibility timeout: %+v, %v", again.Messages, err)
	}
	if diff := cmp.Diff([]string{"message 1", "message 2"}, v.e.QueueMessages("interruption")); diff != "" {
		t.Errorf("queue (-want, +got):\n%s", diff)
	}
	if _, err := v.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url.QueueUrl, ReceiptHandle: aws.String("???")}); errorCode(err) != "ReceiptHandleIsInvalid" {
		t.Errorf("bad receipt handle: %v", err)
	}
	if _, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 11}); errorCode(err) != "InvalidParameterValue" {
		t.Errorf("MaxNumberOfMessages 11: %v", err)
	}
	if empty, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(v.e.QueueURL("other"))}); err != nil || len(empty.Messages) != 0 {
		t.Errorf("empty queue: %+v, %v", empty, err)
	}
}
