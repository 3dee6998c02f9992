package plan_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
//	usd/h     the plan's fleet price per hour (each node's chosen offering)
//	cost/lb   usd/h over workload.LowerBound of the pods on the catalog
//	cost/lp   usd/h over workload.LPBound (LP*) of the pods on the catalog
//	lp-nodes  the fractional node count of LP*'s optimum
//	unplanned pods Plan found no node for (0 unless something is wrong)
//
// The real catalog is what pkg/aws's Provider builds from the EC2 emulator (every type of
// pkg/aws/catalog, six zones, spot and on-demand), as a round in the sandbox gets it; the
// synthetic one is Karpenter's (workload.SyntheticCatalog).

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
		name  string
		types func() ([]*cloud.InstanceType, error)
	}{
		{"real", realCatalog},
		{"synthetic", func() ([]*cloud.InstanceType, error) { return workload.SyntheticCatalog(), nil }},
	}
	for _, c := range catalogs {
		b.Run("catalog="+c.name, func(b *testing.B) {
			types, err := c.types()
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("diverse-%d", n), func(b *testing.B) {
					benchmarkPlan(b, types, workload.Pods(n, workload.Seed, workload.PodOptions{}))
				})
			}
			b.Run(fmt.Sprintf("generic-%d", genericSize), func(b *testing.B) {
				benchmarkPlan(b, types, workload.Pods(genericSize, workload.Seed, workload.PodOptions{}, workload.Generic))
			})
		})
	}
}

// benchmarkPlan plans pods on types for one Provisioner with no requirements, b.N times,
// and reports the metrics of the last plan.
func benchmarkPlan(b *testing.B, types []*cloud.InstanceType, pods []*v1.Pod) {
	prov := &v1alpha1.Provisioner{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec:       v1alpha1.ProvisionerSpec{NodeClassRef: v1alpha1.NodeClassReference{Name: "default"}},
	}
	in := plan.Input{
		Pods:          pods,
		Provisioners:  []*v1alpha1.Provisioner{prov},
		InstanceTypes: map[string][]*cloud.InstanceType{prov.Name: types},
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
		price += n.Template.Offering.Price
		byType[fmt.Sprintf("%s/%s %.4f USD/h", n.Template.InstanceType.Name, n.Template.Offering.CapacityType, n.Template.Offering.Price)]++
	}
	b.Logf("nodes by type: %v", byType)
	b.Logf("simulator: %d Filter runs, %d PreFilter runs, %d verdicts reused", result.Checks, result.PreFilters, result.CacheHits)
	b.ReportMetric(float64(len(pods))*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
	b.ReportMetric(float64(len(result.Nodes)), "nodes")
	b.ReportMetric(price, "usd/h")
	b.ReportMetric(price/workload.LowerBound(pods, types), "cost/lb")
	if bound, err := workload.LPBound(pods, types, nil, 0); err == nil {
		b.ReportMetric(price/bound.USDPerHour, "cost/lp")
		b.ReportMetric(bound.Nodes, "lp-nodes")
	} else {
		b.Errorf("LP*: %v", err)
	}
	b.ReportMetric(float64(len(result.Unplanned)), "unplanned")
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
