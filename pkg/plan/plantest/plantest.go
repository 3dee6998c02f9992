// Package plantest builds the small catalogs, Provisioners and pods the tests of pkg/plan
// and of the Provision plugin plan with.
package plantest

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// Zones are the zones of the test catalogs.
var Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// InstanceType is a catalog-like type: cpu cores, memory GiB, a spot and an on-demand price
// per zone; overhead 100m cpu and 500Mi memory.
func InstanceType(name, arch string, cpu, memGi int64, spot, onDemand float64, zones ...string) *cloud.InstanceType {
	if len(zones) == 0 {
		zones = Zones
	}
	it := &cloud.InstanceType{
		Name: name,
		Labels: map[string]string{
			v1.LabelArchStable: arch, v1.LabelOSStable: "linux",
			v1alpha1.LabelInstanceCPU: fmt.Sprint(cpu),
		},
		Capacity: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
			v1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		},
		Overhead: cloud.Overhead{KubeReserved: v1.ResourceList{
			v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("500Mi"),
		}},
	}
	for i, z := range zones {
		// Later zones are a little dearer, so that the cheapest zone is deterministic.
		bump := float64(i) * 0.001
		it.Offerings = append(it.Offerings,
			cloud.Offering{Zone: z, CapacityType: v1alpha1.CapacityTypeSpot, Price: spot + bump, Available: true},
			cloud.Offering{Zone: z, CapacityType: v1alpha1.CapacityTypeOnDemand, Price: onDemand + bump, Available: true})
	}
	return it
}

// Catalog is a small catalog in the seed's spirit: prices rise with size.
func Catalog() []*cloud.InstanceType {
	return []*cloud.InstanceType{
		InstanceType("t3a.medium", "amd64", 2, 4, 0.012, 0.0376),
		InstanceType("t3a.xlarge", "amd64", 4, 16, 0.045, 0.1504),
		InstanceType("t3a.2xlarge", "amd64", 8, 32, 0.09, 0.3008),
		InstanceType("c5.4xlarge", "amd64", 16, 32, 0.25, 0.68),
		InstanceType("m6g.xlarge", "arm64", 4, 16, 0.05, 0.154),
		GPUType(InstanceType("g4dn.xlarge", "amd64", 4, 16, 0.2, 0.526), "t4", 1),
	}
}

// GPUType gives it count GPUs named name, as pkg/aws does.
func GPUType(it *cloud.InstanceType, name string, count int64) *cloud.InstanceType {
	it.Labels[v1alpha1.LabelInstanceGPUName] = name
	it.Labels[v1alpha1.LabelInstanceGPUCount] = fmt.Sprint(count)
	it.Capacity["nvidia.com/gpu"] = *resource.NewQuantity(count, resource.DecimalSI)
	return it
}

// Provisioner returns a Provisioner named name of node class "default", changed by mutate.
func Provisioner(name string, mutate ...func(*v1alpha1.Provisioner)) *v1alpha1.Provisioner {
	p := &v1alpha1.Provisioner{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.ProvisionerSpec{NodeClassRef: v1alpha1.NodeClassReference{Name: "default"}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// PendingPod returns a pod of nodewright-scheduler in namespace default, named and with UID
// name, requesting cpu and 256Mi of memory.
func PendingPod(name string, cpu string) *st.PodWrapper {
	return st.MakePod().Namespace("default").Name(name).UID(name).SchedulerName("nodewright-scheduler").
		Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: "256Mi"})
}

// DaemonSet returns a DaemonSet of kube-system named name whose pods request cpu.
func DaemonSet(name, cpu string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, UID: types.UID("ds-" + name)},
		Spec: appsv1.DaemonSetSpec{Template: v1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: v1.PodSpec{Containers: []v1.Container{{Name: name, Image: "pause", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)},
			}}}},
		}},
	}
}

// Catalogs returns Catalog for each of provs, by name, as Input.InstanceTypes.
func Catalogs(provs ...*v1alpha1.Provisioner) map[string][]*cloud.InstanceType {
	types := map[string][]*cloud.InstanceType{}
	for _, p := range provs {
		types[p.Name] = Catalog()
	}
	return types
}

// Claim returns a NodeClaim named name of Provisioner "default" whose node is nodeName (""
// until launched), written for the pods of namespace default named pods.
func Claim(name, nodeName string, pods ...string) *v1alpha1.NodeClaim {
	nc := &v1alpha1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.NodeClaimSpec{Provisioner: "default"}}
	nc.Status.NodeName = nodeName
	for _, p := range pods {
		nc.Spec.Pods = append(nc.Spec.Pods, v1alpha1.PodReference{Namespace: "default", Name: p, UID: types.UID(p)})
	}
	return nc
}
