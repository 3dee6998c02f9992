package plan

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// NodeClaimFor returns the NodeClaim of planned node n: the Provisioner's requirements, the
// instance types of n's options, the zone and capacity type the plan chose (the pods may
// depend on them), the labels of the user's its template carries (the Provisioner's labels
// and the values chosen for its open ones, each as a single-valued In requirement: see
// v1alpha1.RequirementLabels), the requests, the taints and the pods, and the Provisioner's
// NodeHash (v1alpha1.AnnotationProvisionerHash). The Provisioner's requirements on those
// keys are narrowed to the plan's values. Its name is generated from the Provisioner's.
func NodeClaimFor(n *PlannedNode) *v1alpha1.NodeClaim {
	prov := n.Template.Provisioner
	labels := n.Template.UserLabels()
	var reqs []v1alpha1.NodeSelectorRequirement
	for _, r := range prov.Spec.Requirements {
		_, labelled := labels[r.Key]
		switch {
		case labelled, r.Key == v1.LabelInstanceTypeStable, r.Key == v1.LabelTopologyZone, r.Key == v1alpha1.LabelCapacityType:
			// Narrowed below to what the plan chose.
		default:
			reqs = append(reqs, r)
		}
	}
	reqs = append(reqs,
		v1alpha1.NodeSelectorRequirement{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: n.InstanceTypeNames()},
		v1alpha1.NodeSelectorRequirement{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{n.Template.Offering.Zone}},
		v1alpha1.NodeSelectorRequirement{Key: v1alpha1.LabelCapacityType, Operator: v1.NodeSelectorOpIn, Values: []string{n.Template.Offering.CapacityType}},
	)
	reqs = append(reqs, v1alpha1.LabelRequirements(labels)...)
	nc := &v1alpha1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prov.Name + "-", Labels: map[string]string{v1alpha1.LabelProvisionerName: prov.Name},
			Annotations: map[string]string{v1alpha1.AnnotationProvisionerHash: prov.Spec.NodeHash()}},
		Spec: v1alpha1.NodeClaimSpec{
			Provisioner:   prov.Name,
			NodeClassRef:  prov.Spec.NodeClassRef,
			Requirements:  reqs,
			Resources:     v1alpha1.ResourceRequirements{Requests: n.Requests},
			Taints:        prov.Spec.Taints,
			StartupTaints: prov.Spec.StartupTaints,
		},
	}
	nc.Spec.Pods = v1alpha1.PodReferencesTo(n.Pods)
	return nc
}
