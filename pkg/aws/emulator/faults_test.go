package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"
	"k8s.io/kubernetes/test/utils/ktesting"
)

func TestThrottlingIsRetried(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	tests := []struct {
		operation string
		call      func(context.Context) error
		wantCode  string
	}{
		{"DescribeAvailabilityZones", func(ctx context.Context) error {
			_, err := v.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
			return err
		}, "RequestLimitExceeded"},
		{"GetParameter", func(ctx context.Context) error {
			_, err := v.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/bottlerocket/aws-k8s-1.33/arm64/latest/image_id")})
			return err
		}, "ThrottlingException"},
		{"ReceiveMessage", func(ctx context.Context) error {
			_, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(v.e.QueueURL(DefaultQueueName))})
			return err
		}, "RequestThrottled"},
	}
	for _, tc := range tests {
		t.Run(tc.operation, func(t *testing.T) {
			v.e.ResetCalls()
			// The standard retryer makes three attempts: two throttled, then success.
			v.e.Throttle(tc.operation, 2)
			if err := tc.call(ctx); err != nil {
				t.Fatalf("with 2 throttled calls: %v", err)
			}
			var codes []string
			for _, c := range v.e.CallsOf(tc.operation) {
				codes = append(codes, c.ErrorCode)
			}
			if diff := cmp.Diff([]string{tc.wantCode, tc.wantCode, ""}, codes); diff != "" {
				t.Errorf("attempts (-want, +got):\n%s", diff)
			}
			v.e.Throttle(tc.operation, 3)
			if err := tc.call(ctx); errorCode(err) != tc.wantCode {
				t.Errorf("with 3 throttled calls: %v, want %s after the last attempt", err, tc.wantCode)
			}
		})
	}
}

// TestThrottleFraction checks that a fraction throttles about that share of an operation's
// calls and none of another's, that Throttle's counted calls go first, that "" throttles every
// service's operations unless an operation has a fraction of its own, and that 0 clears.
func TestThrottleFraction(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	// One attempt per call: each call reaches the emulator once and makes one draw.
	zones := func() string {
		_, err := v.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{}, func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
		return errorCode(err)
	}
	subnets := func() string {
		_, err := v.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}, func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
		return errorCode(err)
	}
	parameter := func() string {
		_, err := v.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/bottlerocket/aws-k8s-1.33/arm64/latest/image_id")},
			func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
		return errorCode(err)
	}
	receive := func() string {
		_, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(v.e.QueueURL(DefaultQueueName))},
			func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
		return errorCode(err)
	}

	v.e.ThrottleFraction("DescribeAvailabilityZones", 0.5)
	got := map[string]int{}
	for range 200 {
		got["zones "+zones()]++
		got["subnets "+subnets()]++
	}
	// 200 draws at 0.5: 100 expected, a standard deviation of about 7; the band is seeded
	// anyway, and wide enough to survive a change of seed.
	if n := got["zones RequestLimitExceeded"]; n < 60 || n > 140 || got["zones "] != 200-n {
		t.Errorf("DescribeAvailabilityZones answers %v, want 60 to 140 of 200 throttled and the rest successful", got)
	}
	if got["subnets "] != 200 {
		t.Errorf("DescribeSubnets answers %v, want all 200 successful", got)
	}
	recorded := 0
	for _, c := range v.e.CallsOf("DescribeAvailabilityZones") {
		if c.ErrorCode == "RequestLimitExceeded" {
			recorded++
		}
	}
	if recorded != got["zones RequestLimitExceeded"] {
		t.Errorf("Calls records %d throttled calls, the SDK saw %d", recorded, got["zones RequestLimitExceeded"])
	}

	// Throttle's 2 calls go first; had the fraction of 1 answered them, they would still be
	// owed after it is cleared.
	v.e.ThrottleFraction("DescribeAvailabilityZones", 0)
	v.e.Throttle("DescribeSubnets", 2)
	v.e.ThrottleFraction("DescribeSubnets", 1)
	codes := []string{subnets(), subnets(), subnets()}
	v.e.ThrottleFraction("DescribeSubnets", 0)
	codes = append(codes, subnets(), zones())
	if diff := cmp.Diff([]string{"RequestLimitExceeded", "RequestLimitExceeded", "RequestLimitExceeded", "", ""}, codes); diff != "" {
		t.Errorf("counted, then drawn, then cleared (-want, +got):\n%s", diff)
	}

	// "" throttles every service; DescribeSubnets' own 1e-9 wins over it.
	v.e.ThrottleFraction("", 1)
	v.e.ThrottleFraction("DescribeSubnets", 1e-9)
	codes = []string{zones(), subnets(), parameter(), receive()}
	if diff := cmp.Diff([]string{"RequestLimitExceeded", "", "ThrottlingException", "RequestThrottled"}, codes); diff != "" {
		t.Errorf("with \"\" at 1 (-want, +got):\n%s", diff)
	}
	v.e.ThrottleFraction("", 0)
	v.e.ThrottleFraction("DescribeSubnets", 0)
	codes = []string{zones(), subnets(), parameter(), receive()}
	if diff := cmp.Diff([]string{"", "", "", ""}, codes); diff != "" {
		t.Errorf("after clearing (-want, +got):\n%s", diff)
	}
}

// TestFailIsNotRetried checks that an injected failure fails the call at once (the retryer
// does not retry its code) for as many calls as asked, and no more.
func TestFailIsNotRetried(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.e.Fail("DescribeAvailabilityZones", "UnauthorizedOperation", 2)
	var errs []string
	for range 3 {
		_, err := v.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
		errs = append(errs, errorCode(err))
	}
	if diff := cmp.Diff([]string{"UnauthorizedOperation", "UnauthorizedOperation", ""}, errs); diff != "" {
		t.Errorf("calls' errors (-want, +got):\n%s", diff)
	}
	if n := len(v.e.CallsOf("DescribeAvailabilityZones")); n != 3 {
		t.Errorf("%d calls reached the emulator, want 3 (no retry)", n)
	}
	v.e.Fail("DescribeAvailabilityZones", "UnauthorizedOperation", 5)
	v.e.Fail("DescribeAvailabilityZones", "", 0)
	if _, err := v.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{}); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}

func TestUnimplementedOperations(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	if _, err := v.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}); errorCode(err) != "InvalidAction" {
		t.Errorf("RunInstances: %v, want InvalidAction", err)
	}
	if _, err := v.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/x"), Value: aws.String("y")}); errorCode(err) != "UnknownOperationException" {
		t.Errorf("PutParameter: %v, want UnknownOperationException", err)
	}
	if _, err := v.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(v.e.QueueURL(DefaultQueueName))}); errorCode(err) != "UnknownOperationException" {
		t.Errorf("PurgeQueue: %v, want UnknownOperationException", err)
	}
	calls := v.e.Calls()
	if len(calls) != 3 || calls[0].Operation != "RunInstances" || calls[0].Params["ImageId"] != "ami-0123456789abcdef0" || calls[0].ErrorCode != "InvalidAction" {
		t.Errorf("calls %+v", calls)
	}
}

func TestLatency(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	v.e.SetLatency("DescribeAvailabilityZones", 3*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := v.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
		done <- err
	}()
	// The answer waits for the fake clock.
	deadline := time.Now().Add(10 * time.Second)
	for !v.clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the call never waited on the clock")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("answered before the latency passed: %v", err)
	default:
	}
	v.clock.Step(3 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// spotInstance launches one spot instance and returns its ID.
func (v *env) spotInstance(ctx context.Context, t *testing.T) string {
	t.Helper()
	v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
	out, err := v.ec2.CreateFleet(ctx, fleetInput("test-lt", CapacityTypeSpot, "", [2]string{"m5.large", "us-east-1c"}))
	if err != nil || len(launchedIDs(out)) != 1 {
		t.Fatalf("CreateFleet: %+v, %v", out, err)
	}
	return launchedIDs(out)[0]
}

func TestSpotInterruption(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	id := v.spotInstance(ctx, t)
	v.clock.Step(time.Second)
	if err := v.e.InterruptSpot(id); err != nil {
		t.Fatal(err)
	}
	out, err := v.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(v.e.QueueURL(DefaultQueueName))})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %+v, %v", out, err)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &ev); err != nil {
		t.Fatal(err)
	}
	delete(ev, "id")
	want := map[string]any{
		"version":     "0",
		"detail-type": "EC2 Spot Instance Interruption Warning",
		"source":      "aws.ec2",
		"account":     AccountID,
		"time":        testStart.Add(time.Second).Format(time.RFC3339),
		"region":      Region,
		"resources":   []any{"arn:aws:ec2:us-east-1c:instance/" + id},
		"detail":      map[string]any{"instance-id": id, "instance-action": "terminate"},
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("event (-want, +got):\n%s", diff)
	}
	state := func() ec2types.InstanceStateName {
		out, err := v.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Reservations[0].Instances[0].State.Name
	}
	if got := state(); got != ec2types.InstanceStateNameRunning {
		t.Errorf("during the notice: %s", got)
	}
	v.clock.Step(2*time.Minute + time.Second)
	if got := state(); got != ec2types.InstanceStateNameTerminated {
		t.Errorf("after the notice: %s", got)
	}
	if err := v.e.InterruptSpot(id); err == nil {
		t.Error("interrupting a terminated instance succeeded")
	}
}

func TestRebalanceAndScheduledChange(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	id := v.spotInstance(ctx, t)
	if err := v.e.RebalanceRecommendation(id); err != nil {
		t.Fatal(err)
	}
	if err := v.e.ScheduledChange(id, testStart.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := v.e.SendStateChangeNotification(id); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, body := range v.e.QueueMessages(DefaultQueueName) {
		var ev struct {
			DetailType string         `json:"detail-type"`
			Source     string         `json:"source"`
			Detail     map[string]any `json:"detail"`
		}
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatal(err)
		}
		subject := ev.Detail["instance-id"]
		if entities, ok := ev.Detail["affectedEntities"].([]any); ok {
			subject = entities[0].(map[string]any)["entityValue"]
		}
		got = append(got, ev.Source+"/"+ev.DetailType+"/"+subject.(string))
	}
	want := []string{
		"aws.ec2/EC2 Instance Rebalance Recommendation/" + id,
		"aws.health/AWS Health Event/" + id,
		"aws.ec2/EC2 Instance State-change Notification/" + id,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want, +got):\n%s", diff)
	}
}

func TestControlAPI(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	v := newEnv(t, Options{})
	id := v.spotInstance(ctx, t)
	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(v.e.URL()+ControlPrefix+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"faults/insufficient-capacity", `{"instanceType":"c5.large","zone":"us-east-1a","capacityType":"spot"}`, http.StatusNoContent},
		{"faults/throttle", `{"operation":"DescribeSubnets","count":1}`, http.StatusNoContent},
		{"faults/fail", `{"operation":"DescribeSecurityGroups","code":"UnauthorizedOperation","count":1}`, http.StatusNoContent},
		{"faults/latency", `{"operation":"DescribeImages","latency":"soon"}`, http.StatusBadRequest},
		{"faults/never-join", `{"next":2}`, http.StatusNoContent},
		{"spot-prices", `{"instanceType":"c5.large","zone":"us-east-1b","price":0.001}`, http.StatusNoContent},
		{"instances/" + id + "/spot-interruption", ``, http.StatusNoContent},
		{"instances/i-00000000000000000/spot-interruption", ``, http.StatusBadRequest},
		{"queues/" + DefaultQueueName + "/messages", `{"hello":"world"}`, http.StatusNoContent},
		{"nothing", ``, http.StatusNotFound},
	} {
		if got := post(tc.path, tc.body); got != tc.want {
			t.Errorf("POST %s: %d, want %d", tc.path, got, tc.want)
		}
	}
	out, err := v.ec2.CreateFleet(ctx, fleetInput("test-lt", CapacityTypeSpot, "", [2]string{"c5.large", "us-east-1a"}, [2]string{"c5.large", "us-east-1b"}))
	if err != nil || len(out.Errors) != 0 || aws.ToString(out.Instances[0].AvailabilityZone) != "us-east-1b" {
		t.Errorf("the cheaper pool after the price change: %+v, %v", out, err)
	}
	if inst, _ := v.e.Instance(launchedIDs(out)[0]); !inst.NeverJoin {
		t.Error("never-join next did not apply to the next launch")
	}
	if _, err := v.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Errorf("one throttled call is retried: %v", err)
	}
	if _, err := v.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{}); errorCode(err) != "UnauthorizedOperation" {
		t.Errorf("a call told to fail: %v, want UnauthorizedOperation", err)
	}
	if got := v.e.QueueMessages(DefaultQueueName); len(got) != 2 || got[1] != `{"hello":"world"}` {
		t.Errorf("queue %v", got)
	}
	resp, err := http.Get(v.e.URL() + ControlPrefix + "instances")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var instances []Instance
	if err := json.NewDecoder(resp.Body).Decode(&instances); err != nil || len(instances) != 2 {
		t.Errorf("GET instances: %d, %v", len(instances), err)
	}
	var buf bytes.Buffer
	req, _ := http.NewRequest(http.MethodDelete, v.e.URL()+ControlPrefix+"calls", &buf)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE calls: %v, %v", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	if n := len(v.e.Calls()); n != 0 {
		t.Errorf("%d calls after reset", n)
	}
}
