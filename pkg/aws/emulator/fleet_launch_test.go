package emulator

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/kubernetes/test/utils/ktesting"
)

// TestLaunchLatencyJitter checks that each instance stays pending for LaunchLatency plus its
// own draw in [0, LaunchLatencyJitter), and for exactly LaunchLatency without jitter.
func TestLaunchLatencyJitter(t *testing.T) {
	const latency, launched = 10 * time.Second, 8
	for _, tc := range []struct {
		name   string
		jitter time.Duration
		// wantDistinct is how many different running times the instances have.
		wantDistinct int
	}{
		{"no jitter", 0, 1},
		{"jitter", 5 * time.Second, launched},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			v := newEnv(t, Options{LaunchLatency: latency, LaunchLatencyJitter: tc.jitter})
			v.createLaunchTemplate(ctx, t, "test-lt", testUserData())
			in := fleetInput("test-lt", CapacityTypeSpot, "", [2]string{"m5.large", "us-east-1c"})
			in.TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(launched)
			out, err := v.ec2.CreateFleet(ctx, in)
			ids := launchedIDs(out)
			if err != nil || len(ids) != launched {
				t.Fatalf("CreateFleet: %+v, %v", out, err)
			}
			runningAt := map[string]time.Time{}
			distinct := map[time.Time]bool{}
			for _, id := range ids {
				at, joinDelay := v.schedule(id)
				runningAt[id] = at
				distinct[at] = true
				// The fleet launched at testStart.
				pending := at.Sub(testStart)
				if tc.jitter == 0 && pending != latency || tc.jitter > 0 && (pending < latency || pending >= latency+tc.jitter) {
					t.Errorf("%s pending for %v, want %v plus [0, %v)", id, pending, latency, tc.jitter)
				}
				if joinDelay != time.Second {
					t.Errorf("%s join delay %v, want the default 1s without JoinDelayJitter", id, joinDelay)
				}
			}
			if len(distinct) != tc.wantDistinct {
				t.Errorf("%d different running times, want %d", len(distinct), tc.wantDistinct)
			}
			// The states follow each instance's own time: before, amid and after the spread.
			for _, step := range []time.Duration{latency - time.Nanosecond, tc.jitter / 2, tc.jitter/2 + time.Nanosecond} {
				v.clock.Step(step)
				now := v.clock.Now()
				for _, id := range ids {
					want := StateRunning
					if now.Before(runningAt[id]) {
						want = StatePending
					}
					if inst, _ := v.e.Instance(id); inst.State != want {
						t.Errorf("at +%v %s is %s, want %s", now.Sub(testStart), id, inst.State, want)
					}
				}
			}
		})
	}
}
