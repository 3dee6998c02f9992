package aws

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/catalog"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// spotPool is a (type, zone) spot pool with its price by the emulator's model.
type spotPool struct {
	instanceType, zone string
	price              float64
}

// cheapestSpotPools lists, from the catalog and the emulator's spot model, the spot pools of
// the types with at least minVCPU vCPUs, cheapest first, ties by "type/zone/spot" as the
// provider breaks them.
func cheapestSpotPools(minVCPU int) []spotPool {
	var pools []spotPool
	for _, it := range catalog.All() {
		if it.VCPU < minVCPU {
			continue
		}
		for _, z := range emulator.Zones {
			if price, ok := emulator.ModelSpotPrice(it.Name, z); ok {
				pools = append(pools, spotPool{it.Name, z, price})
			}
		}
	}
	sort.SliceStable(pools, func(i, j int) bool {
		if pools[i].price != pools[j].price {
			return pools[i].price < pools[j].price
		}
		return pools[i].instanceType+"/"+pools[i].zone < pools[j].instanceType+"/"+pools[j].zone
	})
	return pools
}

// fleetOverrides returns the (type/zone) overrides of a recorded CreateFleet call.
func fleetOverrides(t *testing.T, call emulator.Call) []string {
	t.Helper()
	zoneOf := map[string]string{}
	for _, s := range emulator.DefaultSubnets(testCluster) {
		zoneOf[s.ID] = s.Zone
	}
	var out []string
	for c := 1; ; c++ {
		prefix := fmt.Sprintf("LaunchTemplateConfigs.%d.", c)
		if _, ok := call.Params[prefix+"LaunchTemplateSpecification.LaunchTemplateName"]; !ok {
			break
		}
		for o := 1; ; o++ {
			typ, ok := call.Params[fmt.Sprintf("%sOverrides.%d.InstanceType", prefix, o)]
			if !ok {
				break
			}
			out = append(out, typ+"/"+zoneOf[call.Params[fmt.Sprintf("%sOverrides.%d.SubnetId", prefix, o)]])
		}
	}
	return out
}

// TestCreateLaunchesCheapestSpot is the first acceptance item of issue 4: 5 pods of 1 CPU,
// spot allowed, launch one of the cheapest fitting types, with at most 60 overrides, tagged,
// with IMDSv2 required.
func TestCreateLaunchesCheapestSpot(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	claim := testNodeClaim("claim-a", "5",
		req(v1alpha1.LabelCapacityType, corev1.NodeSelectorOpIn, "spot", "on-demand"),
		req("team", corev1.NodeSelectorOpIn, "a"))
	claim.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Value: "a", Effect: corev1.TaintEffectNoSchedule}}
	claim.Spec.StartupTaints = []v1alpha1.Taint{{Key: "example.com/startup", Effect: corev1.TaintEffectNoExecute}}

	inst, err := env.provider.Create(ctx, claim, testNodeClass(), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	// A node fits 5 CPUs from 6 vCPUs on: allocatable = 6000m - 85m kube-reserved
	// (60 + 10 + 2*5 + 2*2.5) - 100m system-reserved = 5815m; 4 vCPUs leave 3830m.
	pools := cheapestSpotPools(6)
	want := make([]string, 0, MaxOverrides)
	for _, p := range pools[:MaxOverrides] {
		want = append(want, p.instanceType+"/"+p.zone)
	}
	fleets := env.emulator.CallsOf("CreateFleet")
	if len(fleets) != 1 {
		t.Fatalf("%d CreateFleet calls, want 1", len(fleets))
	}
	got := fleetOverrides(t, fleets[0])
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateFleet overrides are not the %d cheapest fitting spot pools (-want, +got):\n%s", MaxOverrides, diff)
	}
	if p := fleets[0].Params; p["TargetCapacitySpecification.DefaultTargetCapacityType"] != "spot" ||
		p["SpotOptions.AllocationStrategy"] != "price-capacity-optimized" || p["ClientToken"] != string(claim.UID) {
		t.Errorf("CreateFleet capacity type %q, strategy %q, token %q", p["TargetCapacitySpecification.DefaultTargetCapacityType"],
			p["SpotOptions.AllocationStrategy"], p["ClientToken"])
	}

	// price-capacity-optimized takes the deepest pool priced within 20% of the cheapest.
	price, _, _ := env.emulator.SpotPrice(inst.InstanceType, inst.Zone)
	if cheapest := pools[0].price; inst.CapacityType != "spot" || price > cheapest*1.2 {
		t.Errorf("launched %s in %s (%s) at %v, want spot within 20%% of the cheapest %v (%s in %s)",
			inst.InstanceType, inst.Zone, inst.CapacityType, price, cheapest, pools[0].instanceType, pools[0].zone)
	}
	if it, _ := catalog.Get(inst.InstanceType); it.VCPU < 6 {
		t.Errorf("launched %s with %d vCPUs, cannot hold 5 CPUs", inst.InstanceType, it.VCPU)
	}

	instances := env.emulator.Instances()
	if len(instances) != 1 {
		t.Fatalf("%d instances, want 1", len(instances))
	}
	ei := instances[0]
	wantInst := &cloud.Instance{ProviderID: "aws:///" + ei.Zone + "/" + ei.ID, ID: ei.ID, InstanceType: ei.InstanceType, Zone: ei.Zone,
		CapacityType: "spot", ImageID: ei.ImageID, NodeName: ei.PrivateDNSName, State: "pending", LaunchTime: ei.LaunchTime,
		NodeClaim: "claim-a", Provisioner: "default"}
	if diff := cmp.Diff(wantInst, inst); diff != "" {
		t.Errorf("Create (-want, +got):\n%s", diff)
	}
	for k, v := range map[string]string{"nodewright.dev/cluster": testCluster, "nodewright.dev/provisioner-name": "default",
		"nodewright.dev/nodeclaim": "claim-a", "Name": "claim-a", "team": "platform", TagNodeClaimUID: string(claim.UID)} {
		if ei.Tags[k] != v {
			t.Errorf("instance tag %s = %q, want %q", k, ei.Tags[k], v)
		}
	}
	var lt *emulator.LaunchTemplate
	for _, l := range env.emulator.LaunchTemplates() {
		if l.Name == ei.LaunchTemplateName {
			lt = &l
		}
	}
	if lt == nil {
		t.Fatalf("no launch template %s", ei.LaunchTemplateName)
	}
	if got, want := lt.MetadataOptions, (emulator.MetadataOptions{HTTPTokens: "required", HTTPEndpoint: "enabled",
		HTTPPutResponseHopLimit: 1, HTTPProtocolIPv6: "disabled"}); got != want {
		t.Errorf("metadata options %+v, want %+v", got, want)
	}
	if lt.Tags["nodewright.dev/cluster"] != testCluster || !strings.HasPrefix(lt.Name, "nodewright/"+testCluster+"/") {
		t.Errorf("launch template %s tags %v", lt.Name, lt.Tags)
	}
	if lt.IAMInstanceProfile != "nodes" || len(lt.SecurityGroupIDs) != 1 || len(lt.BlockDeviceMappings) != 1 {
		t.Errorf("launch template profile %q, security groups %v, block devices %+v", lt.IAMInstanceProfile, lt.SecurityGroupIDs, lt.BlockDeviceMappings)
	}
	for _, s := range []string{
		"--node-labels=nodewright.dev/capacity-type=spot,nodewright.dev/provisioner-name=default,team=a",
		"--register-with-taints=dedicated=a:NoSchedule,example.com/startup:NoExecute",
		"apiServerEndpoint: https://127.0.0.1:6443",
		"Content-Type: application/node.eks.aws",
	} {
		if !strings.Contains(lt.UserData, s) {
			t.Errorf("user data lacks %q:\n%s", s, lt.UserData)
		}
	}

	// Idempotent: a second call for the same NodeClaim returns the same instance.
	again, err := env.provider.Create(ctx, claim, testNodeClass(), nil)
	if err != nil || again.ID != inst.ID || len(env.emulator.CallsOf("CreateFleet")) != 1 {
		t.Errorf("second Create: %+v, %v, %d fleets; want %s without a new fleet", again, err, len(env.emulator.CallsOf("CreateFleet")), inst.ID)
	}
}

// TestCreateInsufficientCapacity is the second acceptance item: insufficient capacity on the
// cheapest pools falls back to the next, and marks them unavailable for 3 minutes.
func TestCreateInsufficientCapacity(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	// On-demand only, one type in two zones: lowest-price takes the cheapest pool first, and
	// on-demand prices are equal across zones, so the first listed (us-east-1a) is cheapest.
	reqs := []v1alpha1.NodeSelectorRequirement{
		req(v1alpha1.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"),
		req(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpIn, "t3a.2xlarge"),
		req(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "us-east-1a", "us-east-1b"),
	}
	env.emulator.InsufficientCapacity("t3a.2xlarge", "us-east-1a", "on-demand")

	inst, err := env.provider.Create(ctx, testNodeClaim("claim-ice", "1", reqs...), testNodeClass(), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if inst.Zone != "us-east-1b" || inst.CapacityType != "on-demand" {
		t.Errorf("launched in %s (%s), want us-east-1b (on-demand)", inst.Zone, inst.CapacityType)
	}
	u := env.provider.UnavailableOfferings()
	if !u.IsUnavailable("t3a.2xlarge", "us-east-1a", "on-demand") {
		t.Fatal("the pool that ran out of capacity is not unavailable")
	}
	types, err := env.provider.InstanceTypes(ctx, testNodeClass(), nil)
	if err != nil {
		t.Fatalf("InstanceTypes: %v", err)
	}
	if got := offering(types, "t3a.2xlarge", "us-east-1a", "on-demand"); got == nil || got.Available {
		t.Errorf("offering t3a.2xlarge/us-east-1a/on-demand = %+v, want unavailable", got)
	}

	// Both zones out of capacity: the next launch marks us-east-1b too and fails typed.
	env.emulator.InsufficientCapacity("t3a.2xlarge", "us-east-1b", "on-demand")
	_, err = env.provider.Create(ctx, testNodeClaim("claim-ice2", "1", reqs...), testNodeClass(), nil)
	if !cloud.IsInsufficientCapacity(err) {
		t.Fatalf("Create with no capacity: %v, want an InsufficientCapacity error", err)
	}

	env.clock.Step(3*time.Minute - time.Second)
	if !u.IsUnavailable("t3a.2xlarge", "us-east-1a", "on-demand") {
		t.Error("the pool is available again before 3 minutes")
	}
	env.clock.Step(time.Second)
	if u.IsUnavailable("t3a.2xlarge", "us-east-1a", "on-demand") {
		t.Error("the pool is still unavailable after 3 minutes")
	}
}

// TestCreateSpotFallsBackToOnDemand checks that spot without capacity falls back to
// on-demand only when the requirements allow on-demand.
func TestCreateSpotFallsBackToOnDemand(t *testing.T) {
	tests := []struct {
		name          string
		capacityTypes []string
		want          string // capacity type launched; "" for an InsufficientCapacity error
	}{
		{"spot and on-demand", []string{"spot", "on-demand"}, "on-demand"},
		{"spot only", []string{"spot"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			env := newTestEnv(t, emulator.Options{})
			env.emulator.InsufficientCapacity("", "", "spot")
			claim := testNodeClaim("claim-fallback", "1",
				req(v1alpha1.LabelCapacityType, corev1.NodeSelectorOpIn, tc.capacityTypes...),
				req(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpIn, "m5.large", "t3a.2xlarge"))
			inst, err := env.provider.Create(ctx, claim, testNodeClass(), nil)
			switch {
			case tc.want == "" && !cloud.IsInsufficientCapacity(err):
				t.Errorf("Create: %+v, %v; want an InsufficientCapacity error", inst, err)
			case tc.want != "" && (err != nil || inst.CapacityType != tc.want):
				t.Errorf("Create: %+v, %v; want %s", inst, err, tc.want)
			}
		})
	}
}

// TestCreateRetriesThrottling checks that throttled calls are retried by the SDK's retryer.
func TestCreateRetriesThrottling(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	for _, op := range []string{"CreateFleet", "DescribeInstanceTypes", "GetParameter", "DescribeSubnets"} {
		env.emulator.Throttle(op, 2)
	}
	claim := testNodeClaim("claim-throttled", "1", req(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpIn, "m5.large"))
	if _, err := env.provider.Create(ctx, claim, testNodeClass(), nil); err != nil {
		t.Fatalf("Create: %v", err)
	}
	var throttled int
	for _, c := range env.emulator.CallsOf("CreateFleet") {
		if c.ErrorCode == "RequestLimitExceeded" {
			throttled++
		}
	}
	if throttled != 2 || len(env.emulator.Instances()) != 1 {
		t.Errorf("%d throttled CreateFleet calls and %d instances, want 2 and 1", throttled, len(env.emulator.Instances()))
	}
}

func offering(types []*cloud.InstanceType, name, zone, ct string) *cloud.Offering {
	for _, it := range types {
		if it.Name != name {
			continue
		}
		for _, o := range it.Offerings {
			if o.Zone == zone && o.CapacityType == ct {
				return &o
			}
		}
	}
	return nil
}

// TestConcurrentCreatesShareLaunchTemplate: the launches of a burst, made at once, find or
// create their common launch template once, not once each.
func TestConcurrentCreatesShareLaunchTemplate(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	const claims = 8
	var wg sync.WaitGroup
	errs := make(chan error, claims)
	for i := range claims {
		wg.Go(func() {
			// One architecture: one AMI, one launch template.
			claim := testNodeClaim(fmt.Sprint("claim-", i), "1", req(v1alpha1.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"),
				req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "amd64"))
			if _, err := env.provider.Create(ctx, claim, testNodeClass(), nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Create: %v", err)
	}
	if n := len(env.emulator.CallsOf("CreateFleet")); n != claims {
		t.Errorf("%d CreateFleet calls, want %d", n, claims)
	}
	if n := len(env.emulator.CallsOf("CreateLaunchTemplate")); n != 1 {
		t.Errorf("%d CreateLaunchTemplate calls, want 1", n)
	}
	if n := len(env.emulator.CallsOf("DescribeLaunchTemplates")); n != 0 {
		t.Errorf("%d DescribeLaunchTemplates calls, want none: the create says whether it exists", n)
	}
}

// TestCreateFindsExistingLaunchTemplate: a provider started anew (a restarted scheduler)
// finds the launch template an earlier one created, by the create's "already exists", and
// launches from it.
func TestCreateFindsExistingLaunchTemplate(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	claim := func(name string) *v1alpha1.NodeClaim {
		return testNodeClaim(name, "1", req(v1alpha1.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"),
			req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "amd64"))
	}
	if _, err := env.provider.Create(ctx, claim("first"), testNodeClass(), nil); err != nil {
		t.Fatal(err)
	}
	env.provider.launchTemplates.forget() // what a new process knows
	if _, err := env.provider.Create(ctx, claim("second"), testNodeClass(), nil); err != nil {
		t.Fatalf("Create with the launch template already there: %v", err)
	}
	if n := len(env.emulator.CallsOf("CreateFleet")); n != 2 {
		t.Errorf("%d CreateFleet calls, want 2", n)
	}
	templates, err := env.provider.launchTemplates.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(templates.LaunchTemplates); n != 1 {
		t.Errorf("%d launch templates, want 1", n)
	}
}
