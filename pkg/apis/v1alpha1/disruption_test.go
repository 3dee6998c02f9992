package v1alpha1

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
)

func TestDisruptionSettings(t *testing.T) {
	never := Never
	for _, tc := range []struct {
		name string
		spec ProvisionerSpec
		want DisruptionSettings
	}{
		{name: "nothing set: empty nodes kept, no expiry", spec: ProvisionerSpec{},
			want: DisruptionSettings{Policy: ConsolidationPolicyWhenEmpty, Budgets: []Budget{DefaultBudget}}},
		{name: "the seed's TTLs", spec: ProvisionerSpec{TTLSecondsAfterEmpty: ptr.To[int64](30), TTLSecondsUntilExpired: ptr.To[int64](3600)},
			want: DisruptionSettings{Policy: ConsolidationPolicyWhenEmpty, ConsolidateAfter: ptr.To(30 * time.Second),
				ExpireAfter: ptr.To(time.Hour), Budgets: []Budget{DefaultBudget}}},
		{name: "an empty disruption block: Karpenter v1's defaults but expiry",
			spec: ProvisionerSpec{Disruption: &Disruption{}},
			want: DisruptionSettings{Policy: ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: ptr.To(time.Duration(0)),
				Budgets: []Budget{DefaultBudget}}},
		{name: "all set", spec: ProvisionerSpec{Disruption: &Disruption{ConsolidationPolicy: ConsolidationPolicyWhenEmpty,
			ConsolidateAfter: ptr.To[NillableDuration]("1m30s"), ExpireAfter: ptr.To[NillableDuration]("720h"), Budgets: []Budget{{Nodes: "1"}}}},
			want: DisruptionSettings{Policy: ConsolidationPolicyWhenEmpty, ConsolidateAfter: ptr.To(90 * time.Second),
				ExpireAfter: ptr.To(720 * time.Hour), Budgets: []Budget{{Nodes: "1"}}}},
		{name: "Never", spec: ProvisionerSpec{Disruption: &Disruption{ConsolidateAfter: &never, ExpireAfter: &never}},
			want: DisruptionSettings{Policy: ConsolidationPolicyWhenEmptyOrUnderutilized, Budgets: []Budget{DefaultBudget}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.spec.DisruptionSettings()); diff != "" {
				t.Errorf("DisruptionSettings (-want, +got):\n%s", diff)
			}
		})
	}
	s := DisruptionSettings{Policy: ConsolidationPolicyWhenEmpty, ConsolidateAfter: ptr.To(time.Duration(0))}
	if !s.Consolidates(DisruptionEmpty) || s.Consolidates(DisruptionUnderutilized) {
		t.Errorf("WhenEmpty: Consolidates(Empty) %v, (Underutilized) %v; want true, false", s.Consolidates(DisruptionEmpty), s.Consolidates(DisruptionUnderutilized))
	}
	s.ConsolidateAfter = nil
	if s.Consolidates(DisruptionEmpty) {
		t.Error("consolidateAfter Never: Consolidates(Empty) = true")
	}
}
