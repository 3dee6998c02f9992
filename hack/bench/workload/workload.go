// Package workload holds what nodewright's benchmarks share: the "diverse" pod mix of
// Karpenter's scheduling benchmark, the synthetic catalog that benchmark runs on, and the
// lower bound that fleet costs are compared with. It is used by the Plan benchmarks in
// pkg/plan and by the end-to-end runs of hack/bench; it imports no cloud SDK.
package workload

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/pkg/cloud"
)

// Class is one of the five equal classes of the diverse mix.
type Class int

// The classes of the diverse mix, in the order pods cycle through them.
const (
	// Generic pods have requests and nothing else.
	Generic Class = iota
	// ZoneSpread pods spread over zones (maxSkew 1, DoNotSchedule) with the pods that share
	// their my-label value.
	ZoneSpread
	// HostnameSpread pods spread over nodes the same way.
	HostnameSpread
	// ZoneAffinity pods require a zone that runs a pod with their my-affinity value.
	ZoneAffinity
	// HostnameAntiAffinity pods are labelled app: nginx and refuse a node that runs another.
	HostnameAntiAffinity
)

// Classes are every class, for a mix of all of them.
var Classes = []Class{Generic, ZoneSpread, HostnameSpread, ZoneAffinity, HostnameAntiAffinity}

// The requests drawn for every pod, as Karpenter's benchmark draws them.
var (
	cpuChoices    = []string{"100m", "250m", "500m", "1000m", "1500m"}
	memoryChoices = []string{"100Mi", "256Mi", "512Mi", "1024Mi", "2048Mi", "4096Mi"}
	labelValues   = []string{"a", "b", "c", "d", "e", "f", "g"}
)

// Seed is the seed of every benchmark's pods, so that runs compare.
const Seed = 42

// PodOptions say where the pods go and who schedules them.
type PodOptions struct {
	// Namespace of the pods; default "default".
	Namespace string
	// SchedulerName of the pods; default "nodewright-scheduler".
	SchedulerName string
	// Prefix starts every pod's name; default "bench".
	Prefix string
}

// Pods returns n pods cycling through classes (pod i is of classes[i % len(classes)]), with
// requests and label values drawn from a generator seeded with seed: the same arguments
// always give the same pods.
func Pods(n int, seed uint64, opts PodOptions, classes ...Class) []*v1.Pod {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.SchedulerName == "" {
		opts.SchedulerName = "nodewright-scheduler"
	}
	if opts.Prefix == "" {
		opts.Prefix = "bench"
	}
	if len(classes) == 0 {
		classes = Classes
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pods := make([]*v1.Pod, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s-%05d", opts.Prefix, i)
		w := st.MakePod().Namespace(opts.Namespace).Name(name).UID(opts.Namespace + "/" + name).
			SchedulerName(opts.SchedulerName).Req(map[v1.ResourceName]string{
			v1.ResourceCPU:    cpuChoices[r.IntN(len(cpuChoices))],
			v1.ResourceMemory: memoryChoices[r.IntN(len(memoryChoices))],
		})
		value := labelValues[r.IntN(len(labelValues))]
		switch classes[i%len(classes)] {
		case ZoneSpread:
			w = w.Label("my-label", value).SpreadConstraint(1, v1.LabelTopologyZone, v1.DoNotSchedule,
				st.MakeLabelSelector().Label("my-label", value).Obj(), nil, nil, nil, nil)
		case HostnameSpread:
			w = w.Label("my-label", value).SpreadConstraint(1, v1.LabelHostname, v1.DoNotSchedule,
				st.MakeLabelSelector().Label("my-label", value).Obj(), nil, nil, nil, nil)
		case ZoneAffinity:
			w = w.Label("my-affinity", value).PodAffinity(v1.LabelTopologyZone,
				st.MakeLabelSelector().Label("my-affinity", value).Obj(), st.PodAffinityWithRequiredReq)
		case HostnameAntiAffinity:
			w = w.Label("app", "nginx").PodAntiAffinity(v1.LabelHostname,
				st.MakeLabelSelector().Label("app", "nginx").Obj(), st.PodAntiAffinityWithRequiredReq)
		}
		pods = append(pods, withToken(w.Obj(), i))
	}
	return pods
}

// withToken returns pod, the i-th of its mix, with what the apiserver's ServiceAccount
// admission gives every pod: a token volume of its own name, so that the in-memory
// benchmarks plan pods as a round sees them.
func withToken(pod *v1.Pod, i int) *v1.Pod {
	pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: fmt.Sprintf("kube-api-access-%05d", i),
		VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{}}})
	return pod
}

// SyntheticZones are the zones of the synthetic catalog: spot is offered in the first two,
// on-demand in all three.
var SyntheticZones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// SyntheticTypes is the number of types in the synthetic catalog.
const SyntheticTypes = 400

// SyntheticCatalog returns the catalog of Karpenter's scheduling benchmark: type i (from 0)
// has i+1 vCPUs, 2(i+1) GiB of memory and room for 10(i+1) pods, no overhead, and costs
// 0.1 USD/h per vCPU plus 0.1 USD/h per GiB, the same price spot and on-demand.
func SyntheticCatalog() []*cloud.InstanceType {
	types := make([]*cloud.InstanceType, 0, SyntheticTypes)
	for i := range SyntheticTypes {
		cpu, memGi := int64(i+1), int64(2*(i+1))
		price := 0.1*float64(cpu) + 0.1*float64(memGi)
		it := &cloud.InstanceType{
			Name:   fmt.Sprintf("synthetic-%d", i),
			Labels: map[string]string{v1.LabelArchStable: "amd64", v1.LabelOSStable: "linux"},
			Capacity: v1.ResourceList{
				v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
				v1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
				v1.ResourcePods:   *resource.NewQuantity(10*cpu, resource.DecimalSI),
			},
		}
		for z, zone := range SyntheticZones {
			if z < 2 {
				it.Offerings = append(it.Offerings, cloud.Offering{Zone: zone, CapacityType: "spot", Price: price, Available: true})
			}
			it.Offerings = append(it.Offerings, cloud.Offering{Zone: zone, CapacityType: "on-demand", Price: price, Available: true})
		}
		types = append(types, it)
	}
	return types
}

// LowerBound is the least any fleet that holds pods can cost per hour, in USD: for CPU and
// for memory, the pods' total request times the lowest price per unit of allocatable
// resource over every available offering of types, and the larger of the two. A fleet's
// price is at least its allocatable CPU (memory) at the best price per unit, and its
// allocatable holds at least the requests, so no packing beats it; it ignores pod-count
// limits, DaemonSets and scheduling constraints, which only raise the real optimum.
func LowerBound(pods []*v1.Pod, types []*cloud.InstanceType) float64 {
	var cpu, mem float64
	for _, p := range pods {
		for _, c := range p.Spec.Containers {
			cpu += float64(c.Resources.Requests.Cpu().MilliValue()) / 1000
			mem += float64(c.Resources.Requests.Memory().Value()) / (1 << 30)
		}
	}
	perCPU, perGiB := math.Inf(1), math.Inf(1)
	for _, it := range types {
		alloc := it.Allocatable()
		allocCPU := float64(alloc.Cpu().MilliValue()) / 1000
		allocGiB := float64(alloc.Memory().Value()) / (1 << 30)
		for _, o := range it.Offerings {
			if !o.Available {
				continue
			}
			if allocCPU > 0 {
				perCPU = min(perCPU, o.Price/allocCPU)
			}
			if allocGiB > 0 {
				perGiB = min(perGiB, o.Price/allocGiB)
			}
		}
	}
	return max(cpu*perCPU, mem*perGiB)
}

// Deployment returns a Deployment named name of replicas pods like template (one of Pods):
// its labels and spec, labelled deploy: name as the selector, without the token volume
// (the apiserver gives each pod its own), running the pause image and going at once when
// deleted.
func Deployment(template *v1.Pod, name string, replicas int32) *appsv1.Deployment {
	labels := maps.Clone(template.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["deploy"] = name
	spec := template.Spec.DeepCopy()
	spec.Volumes = nil
	spec.Containers[0].Image = "registry.k8s.io/pause:3.10"
	spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: template.Namespace},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"deploy": name}},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: *spec}},
	}
}

// Job returns a Job named name of n pods like template, run n at a time, that its
// activeDeadlineSeconds ends (the sandbox's pods never exit by themselves).
func Job(template *v1.Pod, name string, n int32, activeDeadlineSeconds int64) *batchv1.Job {
	d := Deployment(template, name, n)
	spec := d.Spec.Template.Spec
	spec.RestartPolicy = v1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: template.Namespace},
		Spec: batchv1.JobSpec{Parallelism: ptr.To(n), Completions: ptr.To(n), ActiveDeadlineSeconds: ptr.To(activeDeadlineSeconds),
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: d.Spec.Template.Labels}, Spec: spec}},
	}
}

// The mixes of Karpenter's performance suite (kubernetes-sigs/karpenter,
// test/suites/performance) the end-to-end scale-up can run besides the diverse mix.
const (
	// MixDiverse is the diverse mix of Pods.
	MixDiverse = "diverse"
	// MixKarpenterBasic is the suite's basic deployment case: 500 pods of 900m cpu and
	// 3100Mi, 500 of 3500m and 28Gi. Karpenter requires all Running within 2 minutes, the
	// nodes' cpu over 53 % requested and memory over 65 %.
	MixKarpenterBasic = "karpenter-basic"
	// MixKarpenterHostnameSpread is its hostname spreading case: 500 pods of 950m and 3900Mi
	// spread over nodes (maxSkew 1, DoNotSchedule), 500 of 3800m and 31Gi without
	// constraints. Karpenter requires all Running within 5 minutes on fewer than 650 nodes,
	// cpu over 55 % requested and memory over 75 %.
	MixKarpenterHostnameSpread = "karpenter-hostname-spread"
)

// Mixes are the mixes MixPods knows.
var Mixes = []string{MixDiverse, MixKarpenterBasic, MixKarpenterHostnameSpread}

// MixPods returns n pods of mix: the diverse mix's Pods(n, Seed, opts), or for one of
// Karpenter's cases its two deployments' pods, half of n each (its cases are of 1,000).
func MixPods(mix string, n int, opts PodOptions) ([]*v1.Pod, error) {
	small, large := "900m/3100Mi", "3500m/28Gi"
	spread := false
	switch mix {
	case MixDiverse:
		return Pods(n, Seed, opts), nil
	case MixKarpenterBasic:
	case MixKarpenterHostnameSpread:
		small, large, spread = "950m/3900Mi", "3800m/31Gi", true
	default:
		return nil, fmt.Errorf("unknown mix %q (one of %v)", mix, Mixes)
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.SchedulerName == "" {
		opts.SchedulerName = "nodewright-scheduler"
	}
	pods := make([]*v1.Pod, 0, n)
	for i := range n {
		app, reqs := "small-resource-app", small
		if i >= n/2 {
			app, reqs = "large-resource-app", large
		}
		cpu, memory, _ := strings.Cut(reqs, "/")
		name := fmt.Sprintf("%s-%05d", app, i)
		w := st.MakePod().Namespace(opts.Namespace).Name(name).UID(opts.Namespace+"/"+name).
			SchedulerName(opts.SchedulerName).Label("app", app).
			Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: memory})
		if spread && app == "small-resource-app" {
			w = w.SpreadConstraint(1, v1.LabelHostname, v1.DoNotSchedule,
				st.MakeLabelSelector().Label("app", app).Obj(), nil, nil, nil, nil)
		}
		pods = append(pods, withToken(w.Obj(), i))
	}
	return pods, nil
}
