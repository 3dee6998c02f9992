package integration

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestProvisionPreferredZone is issue 13's defect 5: a Deployment whose pods prefer zone
// us-east-1b (several weighted terms, one no node can meet) gets all its nodes in
// us-east-1b, where without preferences the cheapest offering in another zone would do.
//
// The Provisioner allows on-demand t3a.large and t3a.xlarge only: on-demand prices are the
// catalog's in every zone of the emulator (see pkg/aws/emulator's doc), so us-east-1b costs
// what the cheapest zone costs, within any tolerance, and a tie between zones is decided by
// the preferences, not by the zones' names. 6 pods x 1 CPU need two nodes (a t3a.xlarge holds
// 3), so the second node is chosen with the first one's pods already in us-east-1b, which
// the profile's default topology spread scores against it.
func TestProvisionPreferredZone(t *testing.T) {
	const zone = "us-east-1b"
	types := []string{"t3a.large", "t3a.xlarge"}
	env := newProvisionEnv(t, v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{
		requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeOnDemand),
		requirement(corev1.LabelInstanceTypeStable, types...),
	}})
	env.checkSamePriceInEveryZone(v1alpha1.CapacityTypeOnDemand, types, zone)
	env.inflate(6, func(s *corev1.PodSpec) {
		s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
				{Weight: 80, Preference: zoneTerm(zone)},
				{Weight: 20, Preference: zoneTerm(zone, "us-east-1c")},
				// No node has this label: the term cannot be met and must not count.
				{Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "example.com/no-such-label", Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}},
				}}},
			},
		}}
	})
	pods := env.runningPods(6)
	nodes := env.nodesOf(pods)
	if len(nodes) < 2 {
		t.Errorf("pods run on %d node(s), want at least 2 (a t3a.xlarge holds 3 of them)", len(nodes))
	}
	for _, n := range nodes {
		if got := n.Labels[corev1.LabelTopologyZone]; got != zone {
			t.Errorf("node %s (%s) is in %s, want the preferred %s", n.Name, n.Labels[corev1.LabelInstanceTypeStable], got, zone)
		}
	}
}

// zoneTerm is a node selector term of zones.
func zoneTerm(zones ...string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: zones},
	}}
}

// checkSamePriceInEveryZone fails the test unless each of types has an available offering
// of capacityType in zone, priced as its cheapest offering of capacityType in any zone.
func (env *provisionEnv) checkSamePriceInEveryZone(capacityType string, types []string, zone string) {
	env.t.Helper()
	provider, _ := framework.AWSProvider(env.t, env.emulator)
	its, err := provider.InstanceTypes(env.ctx, env.class, nil)
	if err != nil {
		env.t.Fatal(err)
	}
	for _, it := range its {
		if !slices.Contains(types, it.Name) {
			continue
		}
		lowest, inZone := -1.0, -1.0
		for _, o := range it.Offerings {
			if o.CapacityType != capacityType || !o.Available {
				continue
			}
			if lowest < 0 || o.Price < lowest {
				lowest = o.Price
			}
			if o.Zone == zone {
				inZone = o.Price
			}
		}
		if inZone < 0 || inZone != lowest {
			env.t.Fatalf("%s %s costs %v/h in %s and %v/h at the cheapest: the test expects one price in every zone", capacityType, it.Name, inZone, zone, lowest)
		}
	}
}
