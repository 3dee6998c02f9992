package cloud

import corev1 "k8s.io/api/core/v1"

// GPUResourceByMaker are the extended resources GPUs are advertised as by their device
// plugins, by GPU manufacturer in lower case. Instance types carry them in their capacity.
var GPUResourceByMaker = map[string]corev1.ResourceName{
	"nvidia": "nvidia.com/gpu",
	"amd":    "amd.com/gpu",
	"habana": "habana.ai/gaudi",
}

// AcceleratorResources are the extended resources of GPUs and other accelerators (those of
// GPUResourceByMaker and AWS Neuron): a node that has one is planned only for pods that
// request one.
var AcceleratorResources = []corev1.ResourceName{"nvidia.com/gpu", "amd.com/gpu", "habana.ai/gaudi", "aws.amazon.com/neuron"}
