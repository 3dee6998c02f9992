package plan

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestExcludedByDefault: which families and sizes the packer buys only when asked.
func TestExcludedByDefault(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"m5.large", ""}, {"c7i.48xlarge", ""}, {"r7iz.32xlarge", ""}, {"x2iedn.32xlarge", ""}, {"t3a.micro", ""},
		{"m7i.metal-24xl", "bare metal"}, {"c5.metal", "bare metal"},
		{"u-6tb1.112xlarge", "high memory"}, {"u7i-12tb.224xlarge", "high memory"}, {"u7in-16tb.224xlarge", "high memory"},
		{"hpc7g.16xlarge", "HPC"}, {"hpc6a.48xlarge", "HPC"},
		{"mac2-m2pro.metal", "bare metal"}, {"mac1.metal", "bare metal"},
		{"f1.2xlarge", "FPGA"}, {"f2.12xlarge", "FPGA"},
		{"inf1.2xlarge", "accelerator"}, {"inf2.xlarge", "accelerator"}, {"trn1n.32xlarge", "accelerator"},
		{"dl2q.24xlarge", "accelerator"}, {"vt1.3xlarge", "accelerator"}, {"d3.xlarge", ""}, {"i4i.large", ""},
	} {
		tmpl := NewTemplate(klog.Background(), plantest.Provisioner("default"), namedType(tc.name, 4, 0.1),
			cloud.Offering{Zone: "us-east-1a", CapacityType: "on-demand", Price: 0.1, Available: true}, "us-east-1", "n", nil, nil)
		if got := excludedByDefault(tmpl); got != tc.want {
			t.Errorf("%s: excluded as %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestPlanExcludesByDefault: a plain pod gets an ordinary type, though types excluded by
// default are cheaper; a Provisioner or a pod that names one, or a pod nothing else serves,
// gets it.
func TestPlanExcludesByDefault(t *testing.T) {
	catalog := []*cloud.InstanceType{
		namedType("m5.large", 2, 0.05),
		namedType("m7i.metal-24xl", 16, 0.01),
		namedType("u7i-6tb.112xlarge", 16, 0.011),
		namedType("hpc7a.12xlarge", 16, 0.012),
		namedType("mac2.metal", 16, 0.013),
		namedType("f1.2xlarge", 16, 0.014),
	}
	names := func(key string, values ...string) func(*v1alpha1.Provisioner) {
		return func(p *v1alpha1.Provisioner) {
			p.Spec.Requirements = append(p.Spec.Requirements, req(key, v1.NodeSelectorOpIn, values...))
		}
	}
	for _, tc := range []struct {
		name string
		prov *v1alpha1.Provisioner
		pod  *v1.Pod
		want string
	}{
		{"a plain pod: the ordinary type", plantest.Provisioner("default"), plantest.PendingPod("a", "1").Obj(), "m5.large"},
		{"the Provisioner names a family", plantest.Provisioner("default", names(v1alpha1.LabelInstanceFamily, "m5", "u7i-6tb")),
			plantest.PendingPod("a", "1").Obj(), "u7i-6tb.112xlarge"},
		{"the Provisioner names a size", plantest.Provisioner("default", names(v1alpha1.LabelInstanceSize, "large", "metal-24xl")),
			plantest.PendingPod("a", "1").Obj(), "m7i.metal-24xl"},
		{"the pod names a type", plantest.Provisioner("default"),
			plantest.PendingPod("a", "1").NodeSelector(map[string]string{v1.LabelInstanceTypeStable: "hpc7a.12xlarge"}).Obj(), "hpc7a.12xlarge"},
		{"nothing else serves the pod: the cheapest that does", plantest.Provisioner("default"), plantest.PendingPod("a", "8").Obj(), "m7i.metal-24xl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			in := Input{Pods: []*v1.Pod{tc.pod}, Provisioners: []*v1alpha1.Provisioner{tc.prov},
				InstanceTypes: map[string][]*cloud.InstanceType{tc.prov.Name: catalog}, Region: "us-east-1"}
			result, err := Plan(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(result.Nodes) != 1 {
				t.Fatalf("%d nodes planned (unplanned %v), want 1", len(result.Nodes), result.Unplanned)
			}
			if got := result.Nodes[0].Template.InstanceType.Name; got != tc.want {
				t.Errorf("planned a %s, want a %s", got, tc.want)
			}
			for _, o := range result.Nodes[0].Options {
				if o.excluded != "" && tc.want == "m5.large" {
					t.Errorf("option %s is excluded by default (%s)", o.InstanceType.Name, o.excluded)
				}
			}
		})
	}
}

// namedType is plantest.InstanceType named name, with the family and size labels pkg/aws
// gives it, cpu cores and 4 GiB per core, at price on-demand and spot.
func namedType(name string, cpu int64, price float64) *cloud.InstanceType {
	it := plantest.InstanceType(name, "amd64", cpu, 4*cpu, price, price)
	family, size, _ := strings.Cut(name, ".")
	it.Labels[v1alpha1.LabelInstanceFamily] = family
	it.Labels[v1alpha1.LabelInstanceSize] = size
	return it
}
