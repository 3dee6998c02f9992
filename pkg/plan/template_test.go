package plan

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/daemon"

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
	planned.Node().Status.Allocatable[v1.ResourceCPU] = resource.MustParse("1m")
	planned.DaemonPods[0].Spec.NodeName = "changed"
	if got := b.Node().Status.Allocatable[v1.ResourceCPU]; got.Cmp(wantCPU) != 0 {
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
					// As the DaemonSet controller decides on the whole node.
					var onNode []string
					for _, ds := range daemonSets {
						if run, _ := daemon.NodeShouldRunDaemonPod(klog.Background(), alone.Node(), ds); run {
							onNode = append(onNode, ds.Name+"-"+name)
						}
					}
					if slices.Sort(onNode); !slices.Equal(want, onNode) {
						t.Errorf("%s on %s: DaemonSet pods %v, the controller runs %v", shared.Key, name, want, onNode)
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

// TestTemplateLabelsAsNode: what a template says of its node without building it (label,
// matches, UserLabels) is what its Node says, for templates with a Provisioner's labels and
// taint, chosen labels, with and without a region, and node selections of every operator,
// over several terms, and on the node's name.
func TestTemplateLabelsAsNode(t *testing.T) {
	labelled := plantest.Provisioner("labelled", func(p *v1alpha1.Provisioner) {
		p.Spec.Labels = map[string]v1alpha1.LabelValue{"team": "a", "example.com/tier": "web"}
		p.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Value: "web", Effect: v1.TaintEffectNoSchedule}}
	})
	req := func(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorRequirement {
		return v1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	terms := [][]v1.NodeSelectorTerm{
		{{MatchExpressions: []v1.NodeSelectorRequirement{req(v1.LabelTopologyZone, v1.NodeSelectorOpIn, "us-east-1b")}}},
		{{MatchExpressions: []v1.NodeSelectorRequirement{req(v1.LabelArchStable, v1.NodeSelectorOpNotIn, "amd64")}},
			{MatchExpressions: []v1.NodeSelectorRequirement{req("team", v1.NodeSelectorOpExists)}}},
		{{MatchExpressions: []v1.NodeSelectorRequirement{req("team", v1.NodeSelectorOpDoesNotExist)}}},
		{{MatchExpressions: []v1.NodeSelectorRequirement{req(v1alpha1.LabelInstanceCPU, v1.NodeSelectorOpGt, "2"),
			req(v1alpha1.LabelCapacityType, v1.NodeSelectorOpIn, "spot")}}},
		{{MatchExpressions: []v1.NodeSelectorRequirement{req(v1.LabelOSStable, v1.NodeSelectorOpIn, "linux"),
			req(v1.LabelTopologyRegion, v1.NodeSelectorOpExists)}}},
		{{MatchFields: []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpIn, "ip-10-0-0-1")}}},
		{{MatchExpressions: []v1.NodeSelectorRequirement{req(v1.LabelHostname, v1.NodeSelectorOpNotIn, templateNodeName)}}},
		{{}},
	}
	var pods []*v1.Pod
	for i, ts := range terms {
		pod := plantest.PendingPod(fmt.Sprint("affinity-", i), "100m").Obj()
		pod.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: ts}}}
		pods = append(pods, pod)
	}
	for i, sel := range []map[string]string{{"team": "a"}, {"example.com/tier": "db"}, {v1.LabelInstanceTypeStable: "t3a.xlarge", "team": "b"}} {
		pod := plantest.PendingPod(fmt.Sprint("selector-", i), "100m").Obj()
		pod.Spec.NodeSelector = sel
		pods = append(pods, pod)
	}
	matched := map[string]int{}
	for _, prov := range []*v1alpha1.Provisioner{plantest.Provisioner("default"), labelled} {
		for _, it := range append(plantest.Catalog(), plantest.GPUType(plantest.InstanceType("g4dn.xlarge", "amd64", 4, 16, 0.2, 0.5, "us-east-1a"), "t4", 1)) {
			for _, o := range it.Offerings {
				for _, chosen := range []map[string]string{nil, {"team": "b", "example.com/tier": "db"}} {
					for _, region := range []string{"us-east-1", ""} {
						for _, name := range []string{templateNodeName, "ip-10-0-0-1"} {
							tmpl := NewTemplate(klog.Background(), prov, it, o, region, name, chosen, nil)
							node := tmpl.Node()
							for k, v := range node.Labels {
								if got, ok := tmpl.label(k); !ok || got != v {
									t.Errorf("%s: label %s = %q, %v; its node says %q", tmpl.Key, k, got, ok, v)
								}
							}
							for _, k := range []string{"example.com/absent", v1.LabelTopologyRegion, "team"} {
								if _, onNode := node.Labels[k]; !onNode {
									if got, ok := tmpl.label(k); ok {
										t.Errorf("%s: label %s = %q, its node has none", tmpl.Key, k, got)
									}
								}
							}
							want := maps.Clone(node.Labels)
							maps.DeleteFunc(want, func(key, _ string) bool { return !v1alpha1.IsUserLabel(key) })
							if got := tmpl.UserLabels(); !maps.Equal(got, want) {
								t.Errorf("%s: user labels %v, its node's %v", tmpl.Key, got, want)
							}
							for _, pod := range pods {
								if got, want := tmpl.matches(pod), matchesNodeSelection(pod, node); got != want {
									t.Errorf("%s on %s: %s matches %v, its node %v", tmpl.Key, name, pod.Name, got, want)
								}
								if tmpl.matches(pod) {
									matched[pod.Name]++
								}
							}
						}
					}
				}
			}
		}
	}
	// Each selection but the empty term's matches some templates and not others.
	for _, pod := range pods {
		if n := matched[pod.Name]; n == 0 && pod.Name != fmt.Sprint("affinity-", len(terms)-1) {
			t.Errorf("%s matches no template: the test shows nothing", pod.Name)
		}
	}
}
