package aws

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// The node's capacity and allocatable are computed before the node exists, so that the
// scheduler's simulation matches the node that registers. The formula:
//
//	capacity.cpu    = vCPUs
//	capacity.memory = memory - ceil(VMMemoryOverheadFraction * memory)   (MiB; the hypervisor
//	                  and the kernel keep ~7.5%: the kubelet never reports all of the memory)
//	capacity.pods   = kubelet maxPods if set, else the VPC CNI's limit without prefix
//	                  delegation, ENIs * (IPv4 per ENI - 1) + 2 (ENIs of the default network
//	                  card); capped at podsPerCore * vCPUs when podsPerCore is set
//
//	kubeReserved.cpu    = 6% of the first core + 1% of the second + 0.5% of the third and
//	                      fourth + 0.25% of every core above four (rounded up to a millicore)
//	kubeReserved.memory = 11Mi * capacity.pods + 255Mi
//	systemReserved      = 100m cpu, 100Mi memory
//	evictionThreshold   = memory.available: 100Mi (a percentage is of capacity.memory)
//
// as EKS's AMIs compute them; each kubelet setting of the Provisioner (kubeReserved,
// systemReserved per resource, evictionHard's memory.available) replaces its default.
// Allocatable is capacity minus the three (cloud.InstanceType.Allocatable).
const (
	// VMMemoryOverheadFraction is the share of an instance's memory the node never reports.
	VMMemoryOverheadFraction = 0.075
	// kubeReservedMemoryPerPodMiB and kubeReservedMemoryBaseMiB are EKS's kube-reserved memory.
	kubeReservedMemoryPerPodMiB = 11
	kubeReservedMemoryBaseMiB   = 255
)

// Default system-reserved resources and memory eviction threshold.
var (
	defaultSystemReserved  = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("100Mi")}
	defaultMemoryEviction  = resource.MustParse("100Mi")
	memoryAvailableSignal  = "memory.available"
	kubeReservedCPURanges  = []struct{ from, to, percent float64 }{{0, 1, 6}, {1, 2, 1}, {2, 4, 0.5}, {4, math.Inf(1), 0.25}}
	gpuResourceDefaultName = cloud.GPUResourceByMaker["nvidia"]
)

// capacityMemoryMiB is the memory a node of memoryMiB reports, after the VM overhead.
func capacityMemoryMiB(memoryMiB int64) int64 {
	return memoryMiB - int64(math.Ceil(float64(memoryMiB)*VMMemoryOverheadFraction))
}

// eniMaxPods is the VPC CNI's pod limit without prefix delegation.
func eniMaxPods(enis, ipv4PerENI int) int64 {
	if enis <= 0 || ipv4PerENI <= 1 {
		return 110
	}
	return int64(enis*(ipv4PerENI-1) + 2)
}

// maxPods applies the kubelet's maxPods and podsPerCore to the ENI limit.
func maxPods(eniPods int64, vcpu int64, kubelet *v1alpha1.KubeletConfiguration) int64 {
	pods := eniPods
	if kubelet != nil && kubelet.MaxPods != nil {
		pods = int64(*kubelet.MaxPods)
	}
	if kubelet != nil && kubelet.PodsPerCore != nil && *kubelet.PodsPerCore > 0 {
		pods = min(pods, int64(*kubelet.PodsPerCore)*vcpu)
	}
	return pods
}

// kubeReservedCPUMillis is EKS's kube-reserved CPU for vcpu cores, rounded up.
func kubeReservedCPUMillis(vcpu int64) int64 {
	total := 0.0
	cores := float64(vcpu)
	for _, r := range kubeReservedCPURanges {
		if cores <= r.from {
			break
		}
		total += (math.Min(cores, r.to) - r.from) * 1000 * r.percent / 100
	}
	return int64(math.Ceil(total - 1e-9))
}

// overhead computes what the kubelet holds back on a node with the given capacity.
func overhead(capacity corev1.ResourceList, kubelet *v1alpha1.KubeletConfiguration) (cloud.Overhead, error) {
	cpu, memory, pods := capacity[corev1.ResourceCPU], capacity[corev1.ResourceMemory], capacity[corev1.ResourcePods]
	o := cloud.Overhead{
		KubeReserved: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(kubeReservedCPUMillis(cpu.Value()), resource.DecimalSI),
			corev1.ResourceMemory: mebibytes(kubeReservedMemoryPerPodMiB*pods.Value() + kubeReservedMemoryBaseMiB),
		},
		SystemReserved:    defaultSystemReserved.DeepCopy(),
		EvictionThreshold: corev1.ResourceList{corev1.ResourceMemory: defaultMemoryEviction.DeepCopy()},
	}
	if kubelet == nil {
		return o, nil
	}
	for name, q := range kubelet.KubeReserved {
		o.KubeReserved[name] = q.DeepCopy()
	}
	for name, q := range kubelet.SystemReserved {
		o.SystemReserved[name] = q.DeepCopy()
	}
	if threshold, ok := kubelet.EvictionHard[memoryAvailableSignal]; ok {
		q, err := evictionQuantity(string(threshold), memory)
		if err != nil {
			return o, fmt.Errorf("evictionHard %s: %w", memoryAvailableSignal, err)
		}
		o.EvictionThreshold[corev1.ResourceMemory] = q
	}
	return o, nil
}

// evictionQuantity reads a hard eviction threshold: a quantity, or a percentage of total.
func evictionQuantity(threshold string, total resource.Quantity) (resource.Quantity, error) {
	if pct, ok := strings.CutSuffix(threshold, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || f < 0 || f > 100 {
			return resource.Quantity{}, fmt.Errorf("%q is not a percentage", threshold)
		}
		return *resource.NewQuantity(int64(math.Ceil(float64(total.Value())*f/100)), resource.BinarySI), nil
	}
	q, err := resource.ParseQuantity(threshold)
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("%q is not a quantity or a percentage", threshold)
	}
	return q, nil
}

func mebibytes(n int64) resource.Quantity {
	return *resource.NewQuantity(n*1024*1024, resource.BinarySI)
}
