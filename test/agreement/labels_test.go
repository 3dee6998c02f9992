package agreement_test

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/lifecycle"
	"github.com/nodewright/nodewright/pkg/plan"
)

// TestNodeLabelsAgree checks that the plan, the NodeClaim, the registration and the launch
// agree on the labels a node carries. Each reads them from the Provisioner or the NodeClaim
// with v1alpha1.RequirementLabels and a key filter of its own: the plan's template node
// (plan.NewTemplate, from ProvisionerSpec.NodeLabels and the values chosen for the pods),
// the NodeClaim written for it (plan.NodeClaimFor), the labels the lifecycle puts on the
// Node when it registers (lifecycle.PlannedLabels) and those the launch passes the kubelet
// (aws.KubeletLabels). The scheduler places pods on the template node: a label of the user's
// it carries that the Node lacks, or the other way round, leaves pods planned for a node they
// cannot run on, or on a node they avoid.
func TestNodeLabelsAgree(t *testing.T) {
	spot := cloud.Offering{Zone: "us-east-1b", CapacityType: v1alpha1.CapacityTypeSpot, Price: 0.035, Available: true}
	onDemand := cloud.Offering{Zone: "us-east-1a", CapacityType: v1alpha1.CapacityTypeOnDemand, Price: 0.096, Available: true}
	tests := []struct {
		name         string
		requirements []v1alpha1.NodeSelectorRequirement
		labels       map[string]v1alpha1.LabelValue
		offering     cloud.Offering
		// chosen are the values the plan chose for the pods on the keys of the user's the
		// requirements leave open (several values, Exists).
		chosen map[string]string
		// wantUser are the labels of the user's the template node carries, as the API
		// documents them (ProvisionerSpec.Labels, NodeSelectorRequirement.Key). They are
		// stated here, not only compared between components, so that a label every component
		// drops alike fails the test too.
		wantUser map[string]string
	}{
		{
			name: "requirements and labels",
			requirements: []v1alpha1.NodeSelectorRequirement{
				// Well-known keys: the instance type and offering decide them.
				in(corev1.LabelTopologyZone, "us-east-1a", "us-east-1b"),
				in(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand),
				in(corev1.LabelInstanceTypeStable, "m5.large", "m5.xlarge"),
				in(corev1.LabelArchStable, "amd64"),
				in(corev1.LabelOSStable, "linux"),
				in(corev1.LabelTopologyRegion, "us-east-1"),
				{Key: v1alpha1.LabelInstanceCPU, Operator: corev1.NodeSelectorOpGt, Values: []string{"1"}},
				in(v1alpha1.LabelInstanceCategory, "m", "c"),
				{Key: v1alpha1.LabelInstanceGeneration, Operator: corev1.NodeSelectorOpGt, Values: []string{"4"}},
				in(v1alpha1.LabelInstanceHypervisor, "nitro"),
				{Key: v1alpha1.LabelInstanceNetworkBandwidth, Operator: corev1.NodeSelectorOpLt, Values: []string{"10000"}},
				{Key: v1alpha1.LabelInstanceLocalNVMe, Operator: corev1.NodeSelectorOpDoesNotExist},
				// Keys of the user's fixed by one value; the kubelet may set all but the
				// node-restriction one.
				in("team", "payments"),
				in("example.com/tier", "gold"),
				in("node.kubernetes.io/pool", "batch"),
				in("node-restriction.kubernetes.io/dedicated", "payments"),
				// Keys of the user's left open: the plan chooses a value for the pods.
				in("example.com/rack", "r1", "r2"),
				in("node-restriction.kubernetes.io/group", "g1", "g2"),
				{Key: "example.com/driver", Operator: corev1.NodeSelectorOpExists},
				// Keys of the user's that give a node no label.
				{Key: "example.com/legacy", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"yes"}},
				{Key: "example.com/spare", Operator: corev1.NodeSelectorOpDoesNotExist},
				// Keys nodewright or the kubelet set. The CRD rejects them; the components
				// must not take them from the requirements all the same.
				in(corev1.LabelHostname, "pinned"),
				in(v1alpha1.LabelProvisionerName, "other"),
				in(v1alpha1.LabelNodeClaim, "other"),
			},
			labels: map[string]v1alpha1.LabelValue{
				"env":                                   "prod",
				"team":                                  "platform", // the requirement's value wins
				"node.kubernetes.io/owner":              "alice",
				"node-restriction.kubernetes.io/secure": "true",
				// Well-known and restricted keys: the instance, nodewright and the kubelet
				// decide them, whatever the labels say.
				v1alpha1.LabelInstanceFamily:  "c5",
				corev1.LabelTopologyZone:      "us-east-1c",
				corev1.LabelHostname:          "pinned",
				v1alpha1.LabelProvisionerName: "other",
			},
			offering: spot,
			chosen: map[string]string{
				"example.com/rack":                     "r2",
				"node-restriction.kubernetes.io/group": "g1",
				"example.com/driver":                   "535",
			},
			wantUser: map[string]string{
				"env":                                   "prod",
				"team":                                  "payments",
				"node.kubernetes.io/owner":              "alice",
				"node-restriction.kubernetes.io/secure": "true",
				"example.com/tier":                      "gold",
				"node.kubernetes.io/pool":               "batch",
				"node-restriction.kubernetes.io/dedicated": "payments",
				"example.com/rack":                         "r2",
				"node-restriction.kubernetes.io/group":     "g1",
				"example.com/driver":                       "535",
			},
		},
		{
			name: "labels only",
			requirements: []v1alpha1.NodeSelectorRequirement{
				in(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeOnDemand),
			},
			labels: map[string]v1alpha1.LabelValue{
				"team":                                  "payments",
				"node.kubernetes.io/pool":               "batch",
				"node-restriction.kubernetes.io/secure": "true",
				v1alpha1.LabelNodeClaim:                 "other",
			},
			offering: onDemand,
			wantUser: map[string]string{
				"team":                                  "payments",
				"node.kubernetes.io/pool":               "batch",
				"node-restriction.kubernetes.io/secure": "true",
			},
		},
		{
			name: "nothing of the user's",
			requirements: []v1alpha1.NodeSelectorRequirement{
				in(corev1.LabelArchStable, "amd64"),
				{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"us-east-1c"}},
			},
			offering: onDemand,
			wantUser: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, _ := ktesting.NewTestContext(t)
			prov := &v1alpha1.Provisioner{
				ObjectMeta: metav1.ObjectMeta{Name: "default"},
				Spec: v1alpha1.ProvisionerSpec{
					NodeClassRef: v1alpha1.NodeClassReference{Name: "default"},
					Requirements: tc.requirements,
					Labels:       tc.labels,
				},
			}
			it := m5Large(spot, onDemand)
			template := plan.NewTemplate(logger, prov, it, tc.offering, "us-east-1", "planned-0", tc.chosen, nil)
			planned := &plan.PlannedNode{
				Name:     "planned-0",
				Template: template,
				Options:  []*plan.Template{template},
				Pods:     []*corev1.Pod{st.MakePod().Namespace("default").Name("web").UID("web").Obj()},
			}
			nc := plan.NodeClaimFor(planned)
			// The launch records the instance it launched: the template's type and offering.
			nc.Name = "default-x7k2p"
			nc.Status = v1alpha1.NodeClaimStatus{
				ProviderID:   "aws:///" + tc.offering.Zone + "/i-0123456789abcdef0",
				InstanceType: it.Name,
				Zone:         tc.offering.Zone,
				CapacityType: tc.offering.CapacityType,
			}

			onTemplate := template.Node().Labels
			onNode := lifecycle.PlannedLabels(nc, it)
			onKubelet := aws.KubeletLabels(nc, nc.Status.CapacityType)

			if diff := cmp.Diff(tc.wantUser, userLabels(onTemplate), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("labels of the user's on the template node (-want, +got):\n%s", diff)
			}
			if diff := cmp.Diff(userLabels(onTemplate), userLabels(onNode), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("labels of the user's the registration puts on the Node (-template node, +lifecycle):\n%s", diff)
			}
			wantKubelet := userLabels(onTemplate)
			maps.DeleteFunc(wantKubelet, func(key, _ string) bool { return !kubeletMaySet(key) })
			if diff := cmp.Diff(wantKubelet, userLabels(onKubelet), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("labels of the user's the launch passes the kubelet (-template node where the kubelet may set them, +launch):\n%s", diff)
			}
			// Every other label of the template node is on the Node, but its placeholder
			// hostname: the kubelet sets the node's own.
			for key, value := range onTemplate {
				if key != corev1.LabelHostname && onNode[key] != value && onKubelet[key] != value {
					t.Errorf("the template node has %s=%s; neither the registration nor the launch puts it on the Node", key, value)
				}
			}
			// Nor does any component contradict the template node.
			for key, value := range onNode {
				if want, ok := onTemplate[key]; !ok || value != want {
					t.Errorf("the registration puts %s=%s on the Node; the template node has %q (present: %v)", key, value, want, ok)
				}
			}
			for key, value := range onKubelet {
				if want, ok := onTemplate[key]; !ok || value != want {
					t.Errorf("the launch passes the kubelet %s=%s; the template node has %q (present: %v)", key, value, want, ok)
				}
				if !kubeletMaySet(key) {
					t.Errorf("the launch passes the kubelet %s, which the kubelet may not set: it would not start", key)
				}
			}
		})
	}
}

// kubeletMaySet reports whether the kubelet accepts key in its --node-labels, by its own
// validation (options.ValidateKubeletFlags: in the kubernetes.io and k8s.io domains, the
// kubelet's own labels only; the NodeRestriction admission plugin holds its Node updates to
// the same). The kubelet's rule, not pkg/aws's, so that a change of the launch's filter
// fails the test instead of being followed by it.
func kubeletMaySet(key string) bool {
	return options.ValidateKubeletFlags(&options.KubeletFlags{NodeLabels: map[string]string{key: "x"}}) == nil
}

// userLabels returns the labels of the user's (v1alpha1.IsUserLabel) among labels.
func userLabels(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	maps.DeleteFunc(out, func(key, _ string) bool { return !v1alpha1.IsUserLabel(key) })
	return out
}

func in(key string, values ...string) v1alpha1.NodeSelectorRequirement {
	return v1alpha1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}
}

// m5Large is m5.large in us-east-1 as pkg/aws describes it, offered in offerings.
func m5Large(offerings ...cloud.Offering) *cloud.InstanceType {
	return &cloud.InstanceType{
		Name: "m5.large",
		Labels: map[string]string{
			corev1.LabelInstanceTypeStable: "m5.large",
			corev1.LabelTopologyRegion:     "us-east-1",
			corev1.LabelArchStable:         "amd64",
			corev1.LabelOSStable:           "linux",
			v1alpha1.LabelInstanceFamily:   "m5",
			v1alpha1.LabelInstanceSize:     "large",
			v1alpha1.LabelInstanceCPU:      "2",
			v1alpha1.LabelInstanceMemory:   "8192",
			v1alpha1.LabelInstanceGPUCount: "0",
			// No local NVMe: no label.
			v1alpha1.LabelInstanceCategory:         "m",
			v1alpha1.LabelInstanceGeneration:       "5",
			v1alpha1.LabelInstanceHypervisor:       "nitro",
			v1alpha1.LabelInstanceNetworkBandwidth: "750",
		},
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("2"),
			corev1.ResourceMemory: resource.MustParse("8Gi"),
			corev1.ResourcePods:   resource.MustParse("29"),
		},
		Offerings: offerings,
	}
}
