package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// testKey is the label of the user's the tests below give Provisioners and select pods by.
const testKey = "test-key"

// requiring returns a pod edit that requires the node's testKey to satisfy op on values.
func requiring(op corev1.NodeSelectorOperator, values ...string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: testKey, Operator: op, Values: values}},
			}}},
		}}
	}
}

// labelledPod is a pod of the env requesting 1 CPU, with edit (may be nil) applied.
func (env *provisionEnv) labelledPod(name string, edit func(*corev1.PodSpec)) *corev1.Pod {
	pod := env.pod(name, "1").Obj()
	if edit != nil {
		edit(&pod.Spec)
	}
	return pod
}

// registeredNodes waits until each pod named in names is reserved on a NodeClaim of the
// env whose Node has registered and been labelled by the lifecycle, and returns those Nodes
// by pod name. The pods need not be bound: a Node that lacks a label the plan gave it is
// what keeps them pending. It fails the test, naming them, if some pods have no such Node
// within 90 seconds.
func (env *provisionEnv) registeredNodes(names ...string) map[string]*corev1.Node {
	env.t.Helper()
	out := map[string]*corev1.Node{}
	err := wait.PollUntilContextTimeout(env.ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		claims, err := framework.ListNodeClaims(ctx, env.t)
		if err != nil {
			return false, err
		}
		for _, nc := range claims {
			if nc.Spec.Provisioner != env.ns || nc.Status.NodeName == "" {
				continue
			}
			for _, ref := range nc.ReservedPods() {
				if !slices.Contains(names, ref.Name) || out[ref.Name] != nil {
					continue
				}
				node, err := env.client.CoreV1().Nodes().Get(ctx, nc.Status.NodeName, metav1.GetOptions{})
				if err != nil || node.Labels[v1alpha1.LabelNodeClaim] != nc.Name {
					continue
				}
				out[ref.Name] = node
			}
		}
		return len(out) == len(names), nil
	})
	if err != nil {
		var missing []string
		for _, name := range names {
			if out[name] == nil {
				missing = append(missing, name)
			}
		}
		env.t.Errorf("pods %v have no registered node of a nodeclaim: %v", missing, err)
	}
	return out
}

// TestProvisionLabels is issue 13's second defect: every label a node is planned with, from
// the Provisioner's labels or its requirements on keys of the user's, is on the NodeClaim,
// in the kubelet's --node-labels and on the Node, and the pods planned onto it run there.
// A requirement allowing several values gives each node the one its pods select, and a pod
// whose node selection the Provisioner's labels exclude is not planned, with an event
// saying why.
func TestProvisionLabels(t *testing.T) {
	oneOf := func(values ...string) func(string) bool {
		return func(v string) bool { return slices.Contains(values, v) }
	}
	tests := []struct {
		name string
		spec v1alpha1.ProvisionerSpec
		pods map[string]func(*corev1.PodSpec)
		// want says, by pod, which values of testKey its node may have; a node without the
		// label fails.
		want map[string]func(string) bool
		// unplannable, when set, is a pod that must get no node, and wantEvent the
		// FailedProvisioning event it gets instead.
		unplannable string
		wantEvent   string
	}{
		{
			name: "provisioner labels",
			spec: v1alpha1.ProvisionerSpec{
				Requirements: []v1alpha1.NodeSelectorRequirement{requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot)},
				Labels:       map[string]v1alpha1.LabelValue{testKey: "test-value"},
			},
			pods: map[string]func(*corev1.PodSpec){
				"in-several":    requiring(corev1.NodeSelectorOpIn, "test-value", "another-value"),
				"not-in-other":  requiring(corev1.NodeSelectorOpNotIn, "another-value"),
				"unconstrained": nil,
				// The Provisioner labels every node test-key=test-value.
				"not-in-own": requiring(corev1.NodeSelectorOpNotIn, "test-value"),
			},
			want: map[string]func(string) bool{
				"in-several": oneOf("test-value"), "not-in-other": oneOf("test-value"), "unconstrained": oneOf("test-value"),
			},
			unplannable: "not-in-own",
			wantEvent:   "label test-key=test-value conflicts with the pod's node selector or affinity",
		},
		{
			name: "provisioner requirement with two values",
			spec: v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{
				requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot),
				requirement(testKey, "test-value", "another-value"),
			}},
			pods: map[string]func(*corev1.PodSpec){
				"select-test":    func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{testKey: "test-value"} },
				"select-another": func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{testKey: "another-value"} },
				"not-in-test":    requiring(corev1.NodeSelectorOpNotIn, "test-value"),
				"unconstrained":  nil,
				"in-third":       requiring(corev1.NodeSelectorOpIn, "third-value"),
			},
			want: map[string]func(string) bool{
				"select-test": oneOf("test-value"), "select-another": oneOf("another-value"),
				"not-in-test": oneOf("another-value"), "unconstrained": oneOf("test-value", "another-value"),
			},
			unplannable: "in-third",
			wantEvent:   "requirement test-key In [test-value another-value] conflicts with the pod's node selector or affinity",
		},
		{
			name: "provisioner requirement that the label exists",
			spec: v1alpha1.ProvisionerSpec{Requirements: []v1alpha1.NodeSelectorRequirement{
				requirement(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot),
				{Key: testKey, Operator: corev1.NodeSelectorOpExists},
			}},
			pods: map[string]func(*corev1.PodSpec){
				"select-test":   func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{testKey: "test-value"} },
				"unconstrained": nil,
			},
			want: map[string]func(string) bool{
				"select-test": oneOf("test-value"), "unconstrained": func(v string) bool { return v != "" },
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newProvisionEnv(t, tt.spec)
			var pods []*corev1.Pod
			var planned []string
			for name, edit := range tt.pods {
				pods = append(pods, env.labelledPod(name, edit))
				if name != tt.unplannable {
					planned = append(planned, name)
				}
			}
			env.createPods(pods)
			nodes := env.registeredNodes(planned...)
			for _, name := range planned {
				node := nodes[name]
				if node == nil {
					continue
				}
				value, has := node.Labels[testKey]
				if !has || !tt.want[name](value) {
					t.Errorf("pod %s was planned onto node %s with labels %v: %s = %q (present: %v)", name, node.Name, node.Labels, testKey, value, has)
				}
			}
			for _, nc := range env.claims() {
				if _, has := v1alpha1.RequirementLabels(nc.Spec.Requirements, nil)[testKey]; !has {
					t.Errorf("nodeclaim %s has no requirement %s In [<one value>]: %v", nc.Name, testKey, nc.Spec.Requirements)
				}
			}
			if tt.unplannable != "" {
				env.waitForEvent("FailedProvisioning", fmt.Sprintf("provisioner %q: %s", env.ns, tt.wantEvent))
				for _, nc := range env.claims() {
					if slices.ContainsFunc(nc.ReservedPods(), func(ref v1alpha1.PodReference) bool { return ref.Name == tt.unplannable }) {
						t.Errorf("pod %s is on nodeclaim %s, want none", tt.unplannable, nc.Name)
					}
				}
			}
			if t.Failed() {
				// The pods that lack their labels never run.
				return
			}
			env.runningPods(len(planned))
			env.assertNoStrandedPods()
		})
	}
}
