package plan

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestTemplatePartsShared: the templates of one plan share an instance type's capacity and
// allocatable and a DaemonSet's pod, and a planned node (renamed) shares none of them, so
// that changing it leaves the templates as they were.
func TestTemplatePartsShared(t *testing.T) {
	prov := plantest.Provisioner("default")
	it := plantest.InstanceType("m5.large", "amd64", 2, 8, 0.03, 0.1, "us-east-1a", "us-east-1b")
	ds := []*appsv1.DaemonSet{plantest.DaemonSet("kube-proxy", "100m")}
	parts := newTemplateParts()
	var ts []*Template
	for _, o := range it.Offerings {
		ts = append(ts, newTemplate(klog.Background(), prov, it, o, "us-east-1", templateNodeName, nil, ds, parts))
	}
	a, b := ts[0], ts[len(ts)-1]
	if a.Offering == b.Offering {
		t.Fatal("want two offerings")
	}
	if len(a.DaemonPods) != 1 || a.DaemonPods[0] != b.DaemonPods[0] {
		t.Fatalf("DaemonSet pods %v and %v: want one, shared", a.DaemonPods, b.DaemonPods)
	}
	alloc := it.Allocatable()
	wantCPU := alloc[v1.ResourceCPU]
	planned := a.renamed("ip-10-0-0-1")
	planned.Node.Status.Allocatable[v1.ResourceCPU] = resource.MustParse("1m")
	planned.DaemonPods[0].Spec.NodeName = "changed"
	if got := b.Node.Status.Allocatable[v1.ResourceCPU]; got.Cmp(wantCPU) != 0 {
		t.Errorf("a template's allocatable cpu = %v after a planned node's changed, want %v", got.String(), wantCPU.String())
	}
	if got := b.DaemonPods[0].Spec.NodeName; got != templateNodeName {
		t.Errorf("a template's DaemonSet pod is on %q after a planned node's changed, want %q", got, templateNodeName)
	}
	// Without parts (NewTemplate), nothing is shared.
	c := NewTemplate(klog.Background(), prov, it, it.Offerings[0], "us-east-1", templateNodeName, nil, ds)
	if c.DaemonPods[0] == a.DaemonPods[0] {
		t.Error("NewTemplate shares a DaemonSet pod with a plan's templates")
	}
}

// TestSharedDaemonPodsAsComputed: a plan's templates, which share whether a DaemonSet runs
// on a node (by what the DaemonSet controller reads of it) and their DaemonSet pods' sums,
// get the DaemonSet pods and requests a template built alone gets, for DaemonSets that
// select nodes by zone, by instance type and by name, and tolerate or not a Provisioner's
// taint.
func TestSharedDaemonPodsAsComputed(t *testing.T) {
	byZone := plantest.DaemonSet("by-zone", "100m")
	byZone.Spec.Template.Spec.NodeSelector = map[string]string{v1.LabelTopologyZone: "us-east-1a"}
	byType := plantest.DaemonSet("by-type", "200m")
	byType.Spec.Template.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpNotIn, Values: []string{"c5.4xlarge"}}},
		}}}}}
	byName := plantest.DaemonSet("by-name", "300m")
	byName.Spec.Template.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"ip-10-0-0-1"}}},
		}}}}}
	tolerant := plantest.DaemonSet("tolerant", "400m")
	tolerant.Spec.Template.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
	daemonSets := []*appsv1.DaemonSet{byZone, byType, byName, tolerant, plantest.DaemonSet("plain", "500m")}
	tainted := plantest.Provisioner("tainted", func(p *v1alpha1.Provisioner) {
		p.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}
	})
	parts := newTemplateParts()
	runs := map[string]int{}
	for _, prov := range []*v1alpha1.Provisioner{plantest.Provisioner("default"), tainted} {
		for _, it := range plantest.Catalog() {
			for _, o := range append(it.Offerings, cloud.Offering{Zone: "us-east-1a", CapacityType: "spot"}) {
				for _, name := range []string{templateNodeName, "ip-10-0-0-1"} {
					shared := newTemplate(klog.Background(), prov, it, o, "us-east-1", name, nil, daemonSets, parts)
					alone := NewTemplate(klog.Background(), prov, it, o, "us-east-1", name, nil, daemonSets)
					var got, want []string
					for _, p := range shared.DaemonPods {
						got = append(got, p.Name)
						runs[p.OwnerReferences[0].Name]++
					}
					for _, p := range alone.DaemonPods {
						want = append(want, p.Name)
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s on %s: DaemonSet pods %v, want %v", shared.Key, name, got, want)
					}
					if !equality.Semantic.DeepEqual(shared.DaemonRequests, alone.DaemonRequests) || shared.daemonAffinity != alone.daemonAffinity || shared.free != alone.free {
						t.Errorf("%s on %s: DaemonSet requests %v, want %v", shared.Key, name, shared.DaemonRequests, alone.DaemonRequests)
					}
				}
			}
		}
	}
	// Every DaemonSet runs on some templates and not on others, but the plain one, kept off
	// the tainted Provisioner's nodes only.
	for _, ds := range daemonSets {
		if runs[ds.Name] == 0 {
			t.Errorf("DaemonSet %s runs on no template: the test shows nothing", ds.Name)
		}
	}
	if len(parts.runs) < 2*len(daemonSets) {
		t.Errorf("%d cached decisions for %d DaemonSets on two Provisioners", len(parts.runs), len(daemonSets))
	}
}
