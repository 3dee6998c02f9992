package aws

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestKubeReservedCPU(t *testing.T) {
	tests := []struct {
		vcpu, want int64
	}{
		{1, 60},   // 6% of 1000m
		{2, 70},   // 60 + 1% of 1000m
		{4, 80},   // 70 + 2 * 0.5% of 1000m
		{5, 83},   // 80 + 0.25% of 1000m = 82.5, rounded up
		{8, 90},   // 80 + 4 * 2.5
		{96, 310}, // 80 + 92 * 2.5
	}
	for _, tc := range tests {
		if got := kubeReservedCPUMillis(tc.vcpu); got != tc.want {
			t.Errorf("kubeReservedCPUMillis(%d) = %d, want %d", tc.vcpu, got, tc.want)
		}
	}
}

func TestCapacityAndOverheadWithKubelet(t *testing.T) {
	// m5.large-like: 2 vCPUs, 8192 MiB, 3 ENIs of 10 addresses.
	info := typeInfo{name: "m5.large", arch: "amd64", vcpu: 2, memoryMiB: 8192, enis: 3, ipv4PerENI: 10}
	tests := []struct {
		name        string
		kubelet     *v1alpha1.KubeletConfiguration
		allocatable map[corev1.ResourceName]string
	}{
		{
			name: "defaults",
			// capacity: memory 8192 - ceil(614.4) = 7577Mi, pods 3 * 9 + 2 = 29.
			// cpu 2000m - 70m - 100m = 1830m; memory 7577 - (11*29 + 255 = 574) - 100 - 100 = 6803Mi.
			allocatable: map[corev1.ResourceName]string{"cpu": "1830m", "memory": "6803Mi", "pods": "29"},
		},
		{
			name: "maxPods, systemReserved and evictionHard",
			kubelet: &v1alpha1.KubeletConfiguration{MaxPods: ptr(int32(110)),
				SystemReserved: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")},
				EvictionHard:   map[string]v1alpha1.EvictionThreshold{"memory.available": "5%"}},
			// cpu 2000m - 70m - 200m = 1730m; memory 7577Mi - (11*110 + 255 = 1465Mi) - 100Mi =
			// 6012Mi = 6304038912 bytes, minus 5% of 7577Mi (7945060352 * 0.05 = 397253017.6,
			// rounded up to the byte) = 5906785894 bytes.
			allocatable: map[corev1.ResourceName]string{"cpu": "1730m", "memory": "5906785894", "pods": "110"},
		},
		{
			name: "podsPerCore and kubeReserved",
			kubelet: &v1alpha1.KubeletConfiguration{PodsPerCore: ptr(int32(4)),
				KubeReserved: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
			// pods min(29, 4 * 2) = 8; memory 7577 - 1024 - 100 - 100 = 6353Mi.
			allocatable: map[corev1.ResourceName]string{"cpu": "1830m", "memory": "6353Mi", "pods": "8"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			capacity := info.capacity(tc.kubelet)
			o, err := overhead(capacity, tc.kubelet)
			if err != nil {
				t.Fatalf("overhead: %v", err)
			}
			got := allocatableOf(capacity, o.Total())
			if diff := cmp.Diff(quantities(parseList(tc.allocatable)), quantities(got)); diff != "" {
				t.Errorf("allocatable (-want, +got):\n%s", diff)
			}
		})
	}
}

func allocatableOf(capacity, overhead corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range capacity {
		q = q.DeepCopy()
		if o, ok := overhead[name]; ok {
			q.Sub(o)
		}
		out[name] = q
	}
	return out
}
