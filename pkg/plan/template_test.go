package plan

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

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
