package disruption

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestGate(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	prov := func(name, nodes string) *v1alpha1.Provisioner {
		return &v1alpha1.Provisioner{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.ProvisionerSpec{Disruption: &v1alpha1.Disruption{Budgets: []v1alpha1.Budget{{Nodes: nodes}}}}}
	}
	claim := func(name, prov string) *v1alpha1.NodeClaim {
		return &v1alpha1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.NodeClaimSpec{Provisioner: prov}}
	}
	a, b := prov("a", "1"), prov("b", "1")
	claims := []*v1alpha1.NodeClaim{claim("a-1", "a"), claim("a-2", "a"), claim("b-1", "b")}
	g := NewGate()
	if ok, why := g.Take("a-1", a, claims, v1alpha1.DisruptionUnderutilized, now); !ok {
		t.Fatalf("first of a: refused: %s", why)
	}
	// Before the cache shows a-1 disrupting, the Gate counts it.
	if ok, _ := g.Take("a-2", a, claims, v1alpha1.DisruptionEmpty, now); ok {
		t.Error("second of a, budget 1: allowed")
	}
	if ok, why := g.Take("b-1", b, claims, v1alpha1.DisruptionEmpty, now); !ok {
		t.Errorf("b's own budget: refused: %s", why)
	}
	if ok, _ := g.Take("a-1", a, claims, v1alpha1.DisruptionUnderutilized, now); !ok {
		t.Error("a-1 again: refused its own place")
	}
	// The cache shows it: still one.
	claims[0].Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionDisrupting, Status: metav1.ConditionTrue}}
	if ok, _ := g.Take("a-2", a, claims, v1alpha1.DisruptionEmpty, now.Add(2*startedFor)); ok {
		t.Error("second of a while a-1 is Disrupting: allowed")
	}
	// Gone from the cache: it no longer counts.
	g2 := NewGate()
	if ok, _ := g2.Take("a-1", a, claims[1:], v1alpha1.DisruptionEmpty, now); !ok {
		t.Fatal("a-1 alone: refused")
	}
	if ok, why := g2.Take("a-2", a, claims[1:], v1alpha1.DisruptionEmpty, now); !ok {
		t.Errorf("a-2 after a-1 is gone from the cache: refused: %s", why)
	}
	// Undone: a-2 may go.
	claims[0].Status.Conditions = nil
	g.Release("a-1")
	if ok, why := g.Take("a-2", a, claims, v1alpha1.DisruptionEmpty, now); !ok {
		t.Errorf("a-2 after a-1 was undone: refused: %s", why)
	}
}
