package integration

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// Valid objects the invalid ones of TestAPIRejectsInvalidObjects are patched from.
const (
	validProvisioner = `
apiVersion: nodewright.dev/v1alpha1
kind: Provisioner
metadata: {name: invalid}
spec:
  nodeClassRef: {name: default}
  requirements: [{key: nodewright.dev/capacity-type, operator: In, values: [spot]}]
  labels: {team: web}
  kubelet: {maxPods: 110}
`
	validEC2NodeClass = `
apiVersion: nodewright.dev/v1alpha1
kind: EC2NodeClass
metadata: {name: invalid}
spec:
  subnetSelector: {tags: {nodewright.dev/discovery: my-cluster}}
  securityGroupSelector: {tags: {nodewright.dev/discovery: my-cluster}}
  instanceProfile: NodewrightNodeInstanceProfile-my-cluster
`
	validNodeClaim = `
apiVersion: nodewright.dev/v1alpha1
kind: NodeClaim
metadata: {name: immutable}
spec:
  provisioner: default
  nodeClassRef: {name: default}
  requirements: [{key: node.kubernetes.io/instance-type, operator: In, values: [t3a.2xlarge, c5a.2xlarge]}]
  pods: [{namespace: default, name: inflate-1}]
`
)

// TestAPIRejectsInvalidObjects creates invalid objects (dry run) and checks that the apiserver
// refuses each with the reason on the offending field's path.
func TestAPIRejectsInvalidObjects(t *testing.T) {
	const (
		invalid      = metav1.CauseTypeFieldValueInvalid
		required     = metav1.CauseTypeFieldValueRequired
		forbidden    = metav1.CauseType(field.ErrorTypeForbidden)
		notSupported = metav1.CauseTypeFieldValueNotSupported
	)
	tests := []struct {
		name  string
		base  string
		patch string // a JSON merge patch in YAML flow style; null removes a field
		want  metav1.StatusCause
	}{
		// Provisioner requirements.
		{"unknown operator", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/capacity-type, operator: Equals, values: [spot]}]}}`,
			metav1.StatusCause{Type: notSupported, Field: "spec.requirements[0].operator", Message: `supported values: "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"`}},
		{"Gt with two values", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/instance-cpu, operator: Gt, values: ["2", "4"]}]}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.requirements[0].values", Message: "operators Gt and Lt need exactly one integer value"}},
		{"Lt with a word", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/instance-memory, operator: Lt, values: [lots]}]}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.requirements[0].values", Message: "operators Gt and Lt need exactly one integer value"}},
		{"Gt without values", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/instance-cpu, operator: Gt}]}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.requirements[0].values", Message: "operators Gt and Lt need exactly one integer value"}},
		{"Gt on a label that is not an integer", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/instance-family, operator: Gt, values: ["5"]}]}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.requirements[0].operator", Message: "operators Gt and Lt compare integers"}},
		{"In without values", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/capacity-type, operator: In}]}}`,
			metav1.StatusCause{Type: required, Field: "spec.requirements[0].values", Message: "operators In and NotIn need at least one value"}},
		{"NotIn with empty values", validProvisioner, `{spec: {requirements: [{key: topology.kubernetes.io/zone, operator: NotIn, values: []}]}}`,
			metav1.StatusCause{Type: required, Field: "spec.requirements[0].values", Message: "operators In and NotIn need at least one value"}},
		{"Exists with values", validProvisioner, `{spec: {requirements: [{key: kubernetes.io/arch, operator: Exists, values: [amd64]}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].values", Message: "operators Exists and DoesNotExist take no values"}},
		{"requirement on the hostname", validProvisioner, `{spec: {requirements: [{key: kubernetes.io/hostname, operator: In, values: [node-1]}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].key", Message: `label "kubernetes.io/hostname" is restricted`}},
		{"requirement on the provisioner name", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/provisioner-name, operator: In, values: [other]}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].key", Message: "managed by nodewright"}},
		{"requirement on the nodeclaim label", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/nodeclaim, operator: Exists}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].key", Message: "managed by nodewright"}},
		{"requirement on an unknown nodewright.dev label", validProvisioner, `{spec: {requirements: [{key: nodewright.dev/instance-colour, operator: In, values: [red]}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].key", Message: `label domain "nodewright.dev" is restricted`}},
		{"requirement on a kubernetes.io label", validProvisioner, `{spec: {requirements: [{key: kubernetes.io/role, operator: In, values: [worker]}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].key", Message: `label domain "kubernetes.io" is restricted`}},
		{"requirement on a k8s.io label", validProvisioner, `{spec: {requirements: [{key: kops.k8s.io/instancegroup, operator: In, values: [nodes]}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].key", Message: `label domain "k8s.io" is restricted`}},
		{"requirement key not a label key", validProvisioner, `{spec: {requirements: [{key: "team name", operator: Exists}]}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.requirements[0].key", Message: "should match"}},
		{"requirement value not a label value", validProvisioner, `{spec: {requirements: [{key: team, operator: In, values: ["web team"]}]}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.requirements[0].values[0]", Message: "should match"}},

		// Provisioner labels, taints, limits, TTLs, weight, kubelet and nodeClassRef.
		{"label on the hostname", validProvisioner, `{spec: {labels: {kubernetes.io/hostname: node-1}}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.labels", Message: `label "kubernetes.io/hostname" is restricted`}},
		{"label on the nodeclaim label", validProvisioner, `{spec: {labels: {nodewright.dev/nodeclaim: mine}}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.labels", Message: "managed by nodewright"}},
		{"label key not a label key", validProvisioner, `{spec: {labels: {"-team": web}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.labels", Message: "label keys must be qualified names"}},
		{"label value not a label value", validProvisioner, `{spec: {labels: {team: "web team"}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.labels.team", Message: "should match"}},
		{"taint effect unknown", validProvisioner, `{spec: {taints: [{key: dedicated, value: ml, effect: Sometimes}]}}`,
			metav1.StatusCause{Type: notSupported, Field: "spec.taints[0].effect", Message: `supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`}},
		{"startup taint effect unknown", validProvisioner, `{spec: {startupTaints: [{key: cni-not-ready, effect: NoLaunch}]}}`,
			metav1.StatusCause{Type: notSupported, Field: "spec.startupTaints[0].effect", Message: "supported values"}},
		{"taint without a key", validProvisioner, `{spec: {taints: [{value: ml, effect: NoSchedule}]}}`,
			metav1.StatusCause{Type: required, Field: "spec.taints[0].key"}},
		{"weight 0", validProvisioner, `{spec: {weight: 0}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.weight", Message: "should be greater than or equal to 1"}},
		{"weight 101", validProvisioner, `{spec: {weight: 101}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.weight", Message: "should be less than or equal to 100"}},
		{"nodeCost negative", validProvisioner, `{spec: {nodeCost: "-0.01"}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.nodeCost", Message: "should match"}},
		{"nodeCost not a decimal", validProvisioner, `{spec: {nodeCost: "1e-3"}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.nodeCost", Message: "should match"}},
		{"negative ttlSecondsAfterEmpty", validProvisioner, `{spec: {ttlSecondsAfterEmpty: -1}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.ttlSecondsAfterEmpty", Message: "should be greater than or equal to 0"}},
		{"negative ttlSecondsUntilExpired", validProvisioner, `{spec: {ttlSecondsUntilExpired: -30}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.ttlSecondsUntilExpired", Message: "should be greater than or equal to 0"}},
		{"negative cpu limit", validProvisioner, `{spec: {limits: {cpu: "-1"}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.limits", Message: "limits must not be negative"}},
		{"negative gpu limit", validProvisioner, `{spec: {limits: {nvidia.com/gpu: -4}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.limits", Message: "limits must not be negative"}},
		{"limit not a quantity", validProvisioner, `{spec: {limits: {memory: lots}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.limits.memory", Message: "should match"}},
		{"no nodeClassRef", validProvisioner, `{spec: {nodeClassRef: null}}`,
			metav1.StatusCause{Type: required, Field: "spec.nodeClassRef"}},
		{"nodeClassRef without a name", validProvisioner, `{spec: {nodeClassRef: {name: null, kind: EC2NodeClass}}}`,
			metav1.StatusCause{Type: required, Field: "spec.nodeClassRef.name"}},
		{"nodeClassRef to another kind", validProvisioner, `{spec: {nodeClassRef: {kind: AWSNodeTemplate}}}`,
			metav1.StatusCause{Type: notSupported, Field: "spec.nodeClassRef.kind", Message: `supported values: "EC2NodeClass"`}},
		{"no spec", validProvisioner, `{spec: null}`,
			metav1.StatusCause{Type: required, Field: "spec"}},
		{"negative maxPods", validProvisioner, `{spec: {kubelet: {maxPods: -1}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.kubelet.maxPods", Message: "should be greater than or equal to 0"}},
		{"systemReserved of gpus", validProvisioner, `{spec: {kubelet: {systemReserved: {nvidia.com/gpu: "1"}}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.kubelet.systemReserved", Message: "only cpu, memory, ephemeral-storage and pid can be reserved"}},
		{"negative kubeReserved", validProvisioner, `{spec: {kubelet: {kubeReserved: {cpu: -100m}}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.kubelet.kubeReserved", Message: "reservations must not be negative"}},
		{"unknown eviction signal", validProvisioner, `{spec: {kubelet: {evictionHard: {cpu.available: 10%}}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.kubelet.evictionHard", Message: "eviction signals must be"}},
		{"eviction threshold not a quantity", validProvisioner, `{spec: {kubelet: {evictionHard: {memory.available: lots}}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.kubelet.evictionHard.memory.available", Message: "should match"}},

		// EC2NodeClass.
		{"subnetSelector that selects nothing", validEC2NodeClass, `{spec: {subnetSelector: {tags: null}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.subnetSelector", Message: "exactly one of the fields in [tags ids] must be set"}},
		{"securityGroupSelector with empty tags", validEC2NodeClass, `{spec: {securityGroupSelector: {tags: {nodewright.dev/discovery: null}}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.securityGroupSelector.tags", Message: "should have at least 1 properties"}},
		{"subnetSelector by tags and ids", validEC2NodeClass, `{spec: {subnetSelector: {ids: [subnet-0a1b2c3d]}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.subnetSelector", Message: "exactly one of the fields in [tags ids] must be set"}},
		{"subnet ID of a VPC", validEC2NodeClass, `{spec: {subnetSelector: {tags: null, ids: [vpc-0a1b2c3d]}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.subnetSelector.ids[0]", Message: "should match"}},
		{"no securityGroupSelector", validEC2NodeClass, `{spec: {securityGroupSelector: null}}`,
			metav1.StatusCause{Type: required, Field: "spec.securityGroupSelector"}},
		{"instanceProfile and role", validEC2NodeClass, `{spec: {role: NodewrightNodeRole}}`,
			metav1.StatusCause{Type: invalid, Field: "spec", Message: "exactly one of the fields in [instanceProfile role] must be set"}},
		{"neither instanceProfile nor role", validEC2NodeClass, `{spec: {instanceProfile: null}}`,
			metav1.StatusCause{Type: invalid, Field: "spec", Message: "exactly one of the fields in [instanceProfile role] must be set"}},
		{"unknown amiFamily", validEC2NodeClass, `{spec: {amiFamily: Ubuntu}}`,
			metav1.StatusCause{Type: notSupported, Field: "spec.amiFamily", Message: `supported values: "AL2023", "Bottlerocket", "Custom"`}},
		{"Custom without amiSelector", validEC2NodeClass, `{spec: {amiFamily: Custom}}`,
			metav1.StatusCause{Type: required, Field: "spec.amiSelector", Message: "amiFamily Custom needs an amiSelector"}},
		{"amiSelector that selects nothing", validEC2NodeClass, `{spec: {amiSelector: {owner: self}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.amiSelector", Message: "an AMI selector needs tags, ids or a name"}},
		{"IMDSv1 tokens sometimes", validEC2NodeClass, `{spec: {metadataOptions: {httpTokens: sometimes}}}`,
			metav1.StatusCause{Type: notSupported, Field: "spec.metadataOptions.httpTokens", Message: `supported values: "required", "optional"`}},
		{"hop limit 0", validEC2NodeClass, `{spec: {metadataOptions: {httpPutResponseHopLimit: 0}}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.metadataOptions.httpPutResponseHopLimit", Message: "should be greater than or equal to 1"}},
		{"tag managed by nodewright", validEC2NodeClass, `{spec: {tags: {nodewright.dev/cluster: other}}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.tags", Message: "managed by nodewright"}},
		{"kubernetes.io/cluster tag", validEC2NodeClass, `{spec: {tags: {kubernetes.io/cluster/other: owned}}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.tags", Message: `tags "kubernetes.io/cluster/*" are managed by nodewright`}},
		{"unknown volume type", validEC2NodeClass, `{spec: {blockDeviceMappings: [{deviceName: /dev/xvda, ebs: {volumeType: gp9}}]}}`,
			metav1.StatusCause{Type: notSupported, Field: "spec.blockDeviceMappings[0].ebs.volumeType", Message: "supported values"}},
		{"two root volumes", validEC2NodeClass, `{spec: {blockDeviceMappings: [{deviceName: /dev/xvda, rootVolume: true}, {deviceName: /dev/xvdb, rootVolume: true}]}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.blockDeviceMappings", Message: "at most one block device mapping can be the root volume"}},

		// NodeClaim.
		{"NodeClaim without a provisioner", validNodeClaim, `{spec: {provisioner: null}}`,
			metav1.StatusCause{Type: required, Field: "spec.provisioner"}},
		{"NodeClaim without requirements", validNodeClaim, `{spec: {requirements: []}}`,
			metav1.StatusCause{Type: invalid, Field: "spec.requirements", Message: "should have at least 1 items"}},
		{"NodeClaim requirement on the hostname", validNodeClaim, `{spec: {requirements: [{key: kubernetes.io/hostname, operator: In, values: [node-1]}]}}`,
			metav1.StatusCause{Type: forbidden, Field: "spec.requirements[0].key", Message: `label "kubernetes.io/hostname" is restricted`}},
		{"NodeClaim pod without a name", validNodeClaim, `{spec: {pods: [{namespace: default}]}}`,
			metav1.StatusCause{Type: required, Field: "spec.pods[0].name"}},
	}
	_, ctx := ktesting.NewTestContext(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := patched(t, tc.base, tc.patch)
			_, err := resourceClient(t, obj).Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			assertInvalid(t, err, tc.want)
		})
	}
	t.Logf("%d invalid objects rejected", len(tests))
}

// TestAPILabelKeyRulesMatchGo checks that v1alpha1.ValidateLabelKey, which `nodewright
// migrate` uses, agrees with the CRD's CEL rules on which label keys a requirement may use.
func TestAPILabelKeyRulesMatchGo(t *testing.T) {
	keys := []string{
		"team", "example.com/pool", "karpenter.sh/capacity-type",
		"kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "kubernetes.io/role",
		"beta.kubernetes.io/arch", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
		"topology.kubernetes.io/rack", "node.kubernetes.io/instance-type", "node.kubernetes.io/lifecycle",
		"node-restriction.kubernetes.io/team", "kops.k8s.io/instancegroup",
		"nodewright.dev/capacity-type", "nodewright.dev/instance-gpu-name", "nodewright.dev/instance-category",
		"nodewright.dev/instance-local-nvme", "nodewright.dev/provisioner-name",
		"nodewright.dev/nodeclaim", "nodewright.dev/instance-colour", "team.nodewright.dev/pool",
	}
	_, ctx := ktesting.NewTestContext(t)
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			obj := patched(t, validProvisioner, fmt.Sprintf("{spec: {requirements: [{key: %q, operator: Exists}]}}", key))
			_, apiErr := resourceClient(t, obj).Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			goErr := v1alpha1.ValidateLabelKey(key)
			if (apiErr == nil) != (goErr == nil) {
				t.Errorf("the apiserver says %v, ValidateLabelKey says %v", apiErr, goErr)
			}
		})
	}
}
