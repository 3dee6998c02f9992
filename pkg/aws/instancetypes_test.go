package aws

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/catalog"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// TestInstanceTypesMatchCatalog is the third acceptance item: DescribeInstanceTypes through the
// SDK gives every catalog type with the catalog's vCPUs, memory and architecture (and the ENI
// limits give the catalog's max pods); t3a.2xlarge costs 0.3008 USD/h on demand; a
// high-memory type is offered on demand only.
func TestInstanceTypesMatchCatalog(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	infos, err := env.provider.typeCache.get(ctx)
	if err != nil {
		t.Fatalf("describing instance types: %v", err)
	}
	type facts struct {
		VCPU      int64
		MemoryMiB int64
		Arch      string
		MaxPods   int64
	}
	want, got := map[string]facts{}, map[string]facts{}
	for _, it := range catalog.All() {
		want[it.Name] = facts{int64(it.VCPU), it.MemoryMiB, it.Architecture, int64(it.MaxPods)}
	}
	for _, info := range infos {
		got[info.name] = facts{info.vcpu, info.memoryMiB, info.arch, eniMaxPods(info.enis, info.ipv4PerENI)}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("instance types (-want, +got):\n%s", diff)
	}
	if calls := env.emulator.CallsOf("DescribeInstanceTypes"); len(calls) < 2 {
		t.Errorf("%d DescribeInstanceTypes calls: the answer was not paginated", len(calls))
	}

	types, err := env.provider.InstanceTypes(ctx, testNodeClass(), nil)
	if err != nil {
		t.Fatalf("InstanceTypes: %v", err)
	}
	if got := offering(types, "t3a.2xlarge", "us-east-1f", "on-demand"); got == nil || got.Price != 0.3008 || !got.Available {
		t.Errorf("t3a.2xlarge on-demand offering in us-east-1f = %+v, want 0.3008 USD/h, available", got)
	}
	spot, _ := emulator.ModelSpotPrice("t3a.2xlarge", "us-east-1f")
	if got := offering(types, "t3a.2xlarge", "us-east-1f", "spot"); got == nil || got.Price != spot {
		t.Errorf("t3a.2xlarge spot offering in us-east-1f = %+v, want %v USD/h", got, spot)
	}
	// EC2 does not sell high-memory types as spot: the emulator has no pool, so no offering.
	if got := offering(types, "u7i-12tb.224xlarge", "us-east-1a", "spot"); got != nil {
		t.Errorf("u7i-12tb.224xlarge spot offering in us-east-1a = %+v, want none", got)
	}
	if got := offering(types, "u7i-12tb.224xlarge", "us-east-1a", "on-demand"); got == nil {
		t.Error("u7i-12tb.224xlarge has no on-demand offering in us-east-1a")
	}
	// The cache answers the second call without describing the types again.
	before := len(env.emulator.CallsOf("DescribeInstanceTypes"))
	if _, err := env.provider.InstanceTypes(ctx, testNodeClass(), nil); err != nil {
		t.Fatalf("InstanceTypes: %v", err)
	}
	if after := len(env.emulator.CallsOf("DescribeInstanceTypes")); after != before {
		t.Errorf("%d DescribeInstanceTypes calls within the TTL", after-before)
	}
}

// TestInstanceTypeAsListed: InstanceType describes a type as InstanceTypes lists it, under a
// kubelet configuration too, and says nil for a type the node class cannot launch.
func TestInstanceTypeAsListed(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	for _, kubelet := range []*v1alpha1.KubeletConfiguration{nil, {MaxPods: new(int32(20))}} {
		types, err := env.provider.InstanceTypes(ctx, testNodeClass(), kubelet)
		if err != nil {
			t.Fatalf("InstanceTypes: %v", err)
		}
		for _, want := range types {
			got, err := env.provider.InstanceType(ctx, testNodeClass(), kubelet, want.Name)
			if err != nil {
				t.Fatalf("InstanceType %s: %v", want.Name, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("InstanceType %s (-listed, +got):\n%s", want.Name, diff)
			}
		}
	}
	if got, err := env.provider.InstanceType(ctx, testNodeClass(), nil, "m5.huge"); got != nil || err != nil {
		t.Errorf("InstanceType m5.huge = %v, %v; want nil, nil", got, err)
	}
}

// TestInstanceTypeLabelsAndCapacity checks the labels, capacity and overhead of two types.
func TestInstanceTypeLabelsAndCapacity(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	env := newTestEnv(t, emulator.Options{})
	types, err := env.provider.InstanceTypes(ctx, testNodeClass(), nil)
	if err != nil {
		t.Fatalf("InstanceTypes: %v", err)
	}
	byName := map[string]*cloud.InstanceType{}
	for _, it := range types {
		byName[it.Name] = it
	}
	tests := []struct {
		name        string
		labels      map[string]string
		capacity    map[corev1.ResourceName]string
		allocatable map[corev1.ResourceName]string
	}{
		{
			name: "t3a.2xlarge",
			labels: map[string]string{"node.kubernetes.io/instance-type": "t3a.2xlarge", "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
				"topology.kubernetes.io/region": "us-east-1", "nodewright.dev/instance-family": "t3a", "nodewright.dev/instance-size": "2xlarge",
				"nodewright.dev/instance-cpu": "8", "nodewright.dev/instance-memory": "32768", "nodewright.dev/instance-gpu-count": "0",
				"nodewright.dev/instance-category": "t", "nodewright.dev/instance-generation": "3", "nodewright.dev/instance-hypervisor": "nitro",
				// No local NVMe: no label.
				"nodewright.dev/instance-network-bandwidth": "2048"},
			// memory 32768Mi - ceil(7.5% = 2457.6) = 30310Mi; pods 4 ENIs * (15 - 1) + 2 = 58.
			capacity: map[corev1.ResourceName]string{"cpu": "8", "memory": "30310Mi", "pods": "58"},
			// cpu 8000m - 90m (60 + 10 + 2*5 + 4*2.5) - 100m = 7810m;
			// memory 30310Mi - (11*58 + 255 = 893Mi) - 100Mi - 100Mi = 29217Mi.
			allocatable: map[corev1.ResourceName]string{"cpu": "7810m", "memory": "29217Mi", "pods": "58"},
		},
		{
			name: "g4dn.xlarge",
			labels: map[string]string{"node.kubernetes.io/instance-type": "g4dn.xlarge", "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
				"topology.kubernetes.io/region": "us-east-1", "nodewright.dev/instance-family": "g4dn", "nodewright.dev/instance-size": "xlarge",
				"nodewright.dev/instance-cpu": "4", "nodewright.dev/instance-memory": "16384", "nodewright.dev/instance-gpu-count": "1",
				"nodewright.dev/instance-gpu-name": "t4", "nodewright.dev/instance-category": "g", "nodewright.dev/instance-generation": "4",
				"nodewright.dev/instance-hypervisor": "nitro", "nodewright.dev/instance-network-bandwidth": "5000", "nodewright.dev/instance-local-nvme": "125"},
			// memory 16384Mi - ceil(1228.8) = 15155Mi; pods 3 * (10 - 1) + 2 = 29.
			capacity: map[corev1.ResourceName]string{"cpu": "4", "memory": "15155Mi", "pods": "29", "nvidia.com/gpu": "1"},
			// cpu 4000m - 80m (60 + 10 + 2*5) - 100m = 3820m;
			// memory 15155Mi - (11*29 + 255 = 574Mi) - 100Mi - 100Mi = 14381Mi.
			allocatable: map[corev1.ResourceName]string{"cpu": "3820m", "memory": "14381Mi", "pods": "29", "nvidia.com/gpu": "1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := byName[tc.name]
			if it == nil {
				t.Fatalf("no instance type %s", tc.name)
			}
			if diff := cmp.Diff(tc.labels, it.Labels); diff != "" {
				t.Errorf("labels (-want, +got):\n%s", diff)
			}
			if diff := cmp.Diff(quantities(parseList(tc.capacity)), quantities(it.Capacity)); diff != "" {
				t.Errorf("capacity (-want, +got):\n%s", diff)
			}
			if diff := cmp.Diff(quantities(parseList(tc.allocatable)), quantities(it.Allocatable())); diff != "" {
				t.Errorf("allocatable (-want, +got):\n%s", diff)
			}
		})
	}
}

func parseList(m map[corev1.ResourceName]string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range m {
		out[k] = resource.MustParse(v)
	}
	return out
}
