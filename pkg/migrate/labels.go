package migrate

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// labelKeys maps the label keys of Karpenter, and the deprecated beta keys of Kubernetes, to
// nodewright's. The values mean the same on both sides (instance-memory in MiB, instance-cpu
// in vCPUs, capacity types spot and on-demand, instance-network-bandwidth in Mbit/s,
// instance-local-nvme in GiB, instance-hypervisor "" for bare metal).
var labelKeys = map[string]string{
	"karpenter.sh/capacity-type":                   v1alpha1.LabelCapacityType,
	"karpenter.k8s.aws/instance-family":            v1alpha1.LabelInstanceFamily,
	"karpenter.k8s.aws/instance-size":              v1alpha1.LabelInstanceSize,
	"karpenter.k8s.aws/instance-cpu":               v1alpha1.LabelInstanceCPU,
	"karpenter.k8s.aws/instance-memory":            v1alpha1.LabelInstanceMemory,
	"karpenter.k8s.aws/instance-gpu-count":         v1alpha1.LabelInstanceGPUCount,
	"karpenter.k8s.aws/instance-gpu-name":          v1alpha1.LabelInstanceGPUName,
	"karpenter.k8s.aws/instance-category":          v1alpha1.LabelInstanceCategory,
	"karpenter.k8s.aws/instance-generation":        v1alpha1.LabelInstanceGeneration,
	"karpenter.k8s.aws/instance-hypervisor":        v1alpha1.LabelInstanceHypervisor,
	"karpenter.k8s.aws/instance-network-bandwidth": v1alpha1.LabelInstanceNetworkBandwidth,
	"karpenter.k8s.aws/instance-local-nvme":        v1alpha1.LabelInstanceLocalNVMe,
	corev1.LabelArchStable:                         corev1.LabelArchStable,
	corev1.LabelOSStable:                           corev1.LabelOSStable,
	corev1.LabelInstanceTypeStable:                 corev1.LabelInstanceTypeStable,
	corev1.LabelTopologyZone:                       corev1.LabelTopologyZone,
	corev1.LabelTopologyRegion:                     corev1.LabelTopologyRegion,
	"beta.kubernetes.io/arch":                      corev1.LabelArchStable,
	"beta.kubernetes.io/os":                        corev1.LabelOSStable,
	corev1.LabelInstanceType:                       corev1.LabelInstanceTypeStable,
	corev1.LabelFailureDomainBetaZone:              corev1.LabelTopologyZone,
	corev1.LabelFailureDomainBetaRegion:            corev1.LabelTopologyRegion,
}

// mapLabelKey returns nodewright's key for a Karpenter label key, or why there is none.
func mapLabelKey(key string) (string, error) {
	if mapped, ok := labelKeys[key]; ok && mapped != "" {
		return mapped, nil
	}
	domain, _, _ := strings.Cut(key, "/")
	switch {
	case key == "karpenter.sh/provisioner-name" || key == "karpenter.sh/nodepool":
		return "", fmt.Errorf("label %q is set by Karpenter on its nodes; nodewright sets %s itself", key, v1alpha1.LabelProvisionerName)
	case strings.HasSuffix(domain, "karpenter.sh") || strings.HasSuffix(domain, "karpenter.k8s.aws"):
		return "", fmt.Errorf("label %q has no nodewright equivalent", key)
	}
	if err := v1alpha1.ValidateLabelKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// requirements converts a list of Karpenter's requirements, mapping their keys; a requirement
// whose key has no equivalent is dropped with a warning, as is minValues.
func requirements(f *fields, key string) []v1alpha1.NodeSelectorRequirement {
	var out []v1alpha1.NodeSelectorRequirement
	for _, r := range f.objects(key) {
		k, _ := r.str("key")
		op, _ := r.str("operator")
		values := r.strings("values")
		r.drop("minValues", "minValues is not supported: nodewright may pick any of the instance types the requirements allow")
		r.done()
		mapped, err := mapLabelKey(k)
		if err != nil {
			r.warn("key", "%v: the requirement is dropped, so it no longer narrows the nodes launched", err)
			continue
		}
		out = append(out, v1alpha1.NodeSelectorRequirement{Key: mapped, Operator: corev1.NodeSelectorOperator(op), Values: values})
	}
	return out
}

// labels converts a map of node labels, mapping their keys.
func labels(f *fields, key string) map[string]v1alpha1.LabelValue {
	m := f.stringMap(key)
	if m == nil {
		return nil
	}
	out := make(map[string]v1alpha1.LabelValue, len(m))
	for _, k := range sortedKeys(m) {
		mapped, err := mapLabelKey(k)
		if err != nil {
			f.obj.warn(f.at(key)+"."+k, "%v: the label is dropped", err)
			continue
		}
		out[mapped] = v1alpha1.LabelValue(m[k])
	}
	return out
}

// taints converts a list of taints.
func taints(f *fields, key string) []v1alpha1.Taint {
	var out []v1alpha1.Taint
	for _, t := range f.objects(key) {
		var taint v1alpha1.Taint
		taint.Key, _ = t.str("key")
		taint.Value, _ = t.str("value")
		effect, _ := t.str("effect")
		taint.Effect = corev1.TaintEffect(effect)
		t.ignore("timeAdded") // set by the node lifecycle controller, not configuration
		t.done()
		out = append(out, taint)
	}
	return out
}

// kubelet converts Karpenter's kubelet configuration (v1alpha5 kubeletConfiguration, v1
// EC2NodeClass kubelet) to the part nodewright sets.
func kubelet(f *fields) *v1alpha1.KubeletConfiguration {
	k := &v1alpha1.KubeletConfiguration{
		ClusterDNS:     f.strings("clusterDNS"),
		MaxPods:        f.int32Ptr("maxPods"),
		PodsPerCore:    f.int32Ptr("podsPerCore"),
		SystemReserved: f.resources("systemReserved"),
		KubeReserved:   f.resources("kubeReserved"),
	}
	if m := f.stringMap("evictionHard"); m != nil {
		k.EvictionHard = make(map[string]v1alpha1.EvictionThreshold, len(m))
		for signal, threshold := range m {
			k.EvictionHard[signal] = v1alpha1.EvictionThreshold(threshold)
		}
	}
	for _, name := range []string{"containerRuntime", "evictionSoft", "evictionSoftGracePeriod", "evictionMaxPodGracePeriod",
		"imageGCHighThresholdPercent", "imageGCLowThresholdPercent", "cpuCFSQuota"} {
		f.drop(name, "nodewright does not set the kubelet's %s: the AMI family's default applies", name)
	}
	f.done()
	return k
}
