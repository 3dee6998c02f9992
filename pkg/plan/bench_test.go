package plan_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	nwaws "github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan"
)

// The benchmarks of provisioning throughput: Plan, the code a provisioning round
// runs, over the diverse mix of Karpenter's scheduling benchmark (hack/bench/workload) on
// two catalogs. `make bench` runs them and reads the custom metrics:
//
//	pods/s    pods planned per second of Plan
//	nodes     nodes in the plan
//	usd/h     the plan's fleet cost per hour: each node's chosen offering, its node cost, and
//	          for a burstable type the cpu its pods request above its baseline (see
//	          plan.Template.CostWith)
//	cost/lb   usd/h over workload.LowerBound of the pods on the catalog (the old bound)
//	cost/lp   usd/h over workload.LPBound (LP*) of the pods on the offerings of the catalog
//	          nodewright may buy for them (plan.NotForPlainPods)
//	lp-nodes  the fractional node count of LP*'s optimum
//	cost/cb   usd/h over workload.ConstrainedBound: LP* with the nodes the pods' hostname
//	          anti-affinity forces
//	unplanned pods Plan found no node for (0 unless something is wrong)
//
// The real catalog is what pkg/aws's Provider builds from the EC2 emulator (every type of
// pkg/aws/catalog, six zones, spot and on-demand), as a round in the sandbox gets it, with
// the node cost of a Provisioner that leaves it unset (v1alpha1.DefaultNodeCost and the
// default 20 GiB gp3 root volume) and the DaemonSets of an EKS node (benchDaemonSets); the
// synthetic one is exactly Karpenter's (workload.SyntheticCatalog): no DaemonSets and no
// node cost, so that the two stay comparable.

// benchSizes are the pod counts of the diverse mix.
var benchSizes = []int{100, 1000, 5000, 10000}

// genericSize is the pod count of the generic-pod class alone, on which fleet cost is
// compared with the lower bound (the other classes force nodes the bound does not count).
const genericSize = 1000

// BenchmarkPlan runs catalog=<real|synthetic>/diverse-<pods> for every benchSizes and
// catalog=<...>/generic-1000; select with -bench, e.g. 'Plan/./diverse-100$'. One iteration
// is one whole Plan, so -benchtime 1x with -count gives one sample per run.
func BenchmarkPlan(b *testing.B) {
	catalogs := []struct {
		name    string
		types   func() ([]*cloud.InstanceType, error)
		daemons []*appsv1.DaemonSet
		// nodeCost is the Provisioner's NodeCost; nil for its default.
		nodeCost *string
	}{
		{"real", realCatalog, benchDaemonSets(), nil},
		{"synthetic", func() ([]*cloud.InstanceType, error) { return workload.SyntheticCatalog(), nil }, nil, new("0")},
	}
	for _, c := range catalogs {
		b.Run("catalog="+c.name, func(b *testing.B) {
			types, err := c.types()
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("diverse-%d", n), func(b *testing.B) {
					benchmarkPlan(b, types, c.daemons, c.nodeCost, workload.Pods(n, workload.Seed, workload.PodOptions{}))
				})
			}
			b.Run(fmt.Sprintf("generic-%d", genericSize), func(b *testing.B) {
				benchmarkPlan(b, types, c.daemons, c.nodeCost, workload.Pods(genericSize, workload.Seed, workload.PodOptions{}, workload.Generic))
			})
		})
	}
}

// benchmarkPlan plans pods on types for one Provisioner with no requirements and nodeCost,
// with daemons running on every node, b.N times, and reports the metrics of the last plan.
func benchmarkPlan(b *testing.B, types []*cloud.InstanceType, daemons []*appsv1.DaemonSet, nodeCost *string, pods []*v1.Pod) {
	prov := &v1alpha1.Provisioner{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec:       v1alpha1.ProvisionerSpec{NodeClassRef: v1alpha1.NodeClassReference{Name: "default"}, NodeCost: nodeCost},
	}
	in := plan.Input{
		Pods:          pods,
		Provisioners:  []*v1alpha1.Provisioner{prov},
		InstanceTypes: map[string][]*cloud.InstanceType{prov.Name: types},
		DaemonSets:    daemons,
		Region:        emulator.Region,
	}
	ctx := context.Background()
	var result *plan.Result
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if result, err = plan.Plan(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	// Counted by reason: the benchmark's log keeps only its first lines.
	reasons := map[string]int{}
	for _, u := range result.Unplanned {
		reasons[u.Message()]++
	}
	if len(reasons) > 0 {
		b.Logf("unplanned pods by reason: %v", reasons)
	}
	var price float64
	byType := map[string]int{}
	for _, n := range result.Nodes {
		price += n.Cost()
		byType[fmt.Sprintf("%s/%s %.4f USD/h", n.Template.InstanceType.Name, n.Template.Offering.CapacityType, n.Template.Offering.Price)]++
	}
	b.Logf("nodes by type: %v", byType)
	b.Logf("simulator: %d Filter runs, %d PreFilter runs, %d verdicts reused", result.Checks, result.PreFilters, result.CacheHits)
	b.ReportMetric(float64(len(pods))*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
	b.ReportMetric(float64(len(result.Nodes)), "nodes")
	b.ReportMetric(price, "usd/h")
	b.ReportMetric(price/workload.LowerBound(pods, types), "cost/lb")
	reportBounds(b, pods, types, daemons, prov.Spec.NodeCostUSDPerHour(), price)
	b.ReportMetric(float64(len(result.Unplanned)), "unplanned")
}

// reportBounds reports the fleet's cost, price, over LP* and the constrained bound of pods on
// the offerings of types nodewright may buy for them, with daemons on every node and
// nodeCost, and LP*'s node count.
func reportBounds(b *testing.B, pods []*v1.Pod, types []*cloud.InstanceType, daemons []*appsv1.DaemonSet, nodeCost, price float64) {
	perNode := daemonRequests(daemons)
	// The bounds count the offerings nodewright may buy for these pods, which ask for
	// nothing special: its defaults leave the rest out (plan.NotForPlainPods).
	var allowed []*cloud.InstanceType
	for _, it := range types {
		if plan.NotForPlainPods(it) == "" {
			allowed = append(allowed, it)
		}
	}
	if bound, err := workload.LPBound(pods, allowed, perNode, nodeCost); err == nil {
		b.ReportMetric(price/bound.USDPerHour, "cost/lp")
		b.ReportMetric(bound.Nodes, "lp-nodes")
	} else {
		b.Errorf("LP*: %v", err)
	}
	if bound, err := workload.ConstrainedBound(pods, allowed, perNode, nodeCost); err == nil {
		b.ReportMetric(price/bound.USDPerHour, "cost/cb")
	} else {
		b.Errorf("constrained bound: %v", err)
	}
}

// realCatalog returns the instance types pkg/aws's Provider builds from the EC2 emulator for
// a node class on the emulator's default subnets, built once per process.
var realCatalog = sync.OnceValues(func() ([]*cloud.InstanceType, error) {
	ctx := context.Background()
	e := emulator.New(emulator.Options{})
	if err := e.Start(); err != nil {
		return nil, fmt.Errorf("starting the emulator: %w", err)
	}
	// The emulator serves until the process exits: closing it under the SDK's idle
	// connections only makes the SDK log warnings.
	clients, err := nwaws.NewClients(ctx, nwaws.ClientOptions{
		Region:      emulator.Region,
		Endpoint:    e.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("anonymous", "anonymous", ""),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the AWS clients: %w", err)
	}
	// Nodes never launch here: the cluster fields only have to validate.
	p, err := nwaws.New(nwaws.Options{
		Clients:           clients,
		ClusterName:       emulator.DefaultClusterName,
		ClusterEndpoint:   "https://127.0.0.1:6443",
		ClusterCA:         "Y2E=",
		ClusterCIDR:       "10.96.0.0/16",
		KubernetesVersion: "1.37",
	})
	if err != nil {
		return nil, fmt.Errorf("creating the AWS provider: %w", err)
	}
	class := &v1alpha1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: v1alpha1.EC2NodeClassSpec{
			SubnetSelector:        v1alpha1.SubnetSelector{Tags: map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}},
			SecurityGroupSelector: v1alpha1.SecurityGroupSelector{Tags: map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}},
			InstanceProfile:       new("nodes"),
		},
	}
	types, err := p.InstanceTypes(ctx, class, nil)
	if err != nil {
		return nil, fmt.Errorf("listing the instance types: %w", err)
	}
	return types, nil
})

// benchDaemonSets are the DaemonSets of the real-catalog runs, standing for those of an EKS
// node: aws-node (100m, 128Mi) and kube-proxy (200m, 256Mi).
func benchDaemonSets() []*appsv1.DaemonSet {
	ds := func(name, cpu, mem string) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, UID: types.UID("ds-" + name)},
			Spec: appsv1.DaemonSetSpec{Template: v1.PodTemplateSpec{Spec: v1.PodSpec{Containers: []v1.Container{{Name: name,
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
					v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}}}}}}},
		}
	}
	return []*appsv1.DaemonSet{ds("aws-node", "100m", "128Mi"), ds("kube-proxy", "200m", "256Mi")}
}

// daemonRequests is what daemons' pods request on every node, with their number as pods.
func daemonRequests(daemons []*appsv1.DaemonSet) v1.ResourceList {
	out := v1.ResourceList{v1.ResourcePods: *resource.NewQuantity(int64(len(daemons)), resource.DecimalSI)}
	for _, ds := range daemons {
		for name, q := range ds.Spec.Template.Spec.Containers[0].Resources.Requests {
			sum := out[name]
			sum.Add(q)
			out[name] = sum
		}
	}
	return out
}
