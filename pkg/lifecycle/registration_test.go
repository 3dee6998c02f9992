package lifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

func TestRegistration(t *testing.T) {
	startupTaint := v1alpha1.Taint{Key: "node.cilium.io/agent-not-ready", Effect: corev1.TaintEffectNoSchedule}
	withStartupTaint := func(nc *v1alpha1.NodeClaim) { nc.Spec.StartupTaints = []v1alpha1.Taint{startupTaint} }
	tainted := func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{startupTaint.Core()} }
	notReady := func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
	tests := []struct {
		name           string
		claimOpts      []func(*v1alpha1.NodeClaim)
		nodeOpts       []func(*corev1.Node)
		wantConditions map[string]metav1.ConditionStatus
	}{{
		name:           "ready node without startup taints registers and initializes",
		wantConditions: map[string]metav1.ConditionStatus{"Launched": "True", "Registered": "True", "Initialized": "True"},
	}, {
		name:           "initialization waits for the startup taint to go",
		claimOpts:      []func(*v1alpha1.NodeClaim){withStartupTaint},
		nodeOpts:       []func(*corev1.Node){tainted},
		wantConditions: map[string]metav1.ConditionStatus{"Launched": "True", "Registered": "True"},
	}, {
		name:           "startup taint removed: initialized",
		claimOpts:      []func(*v1alpha1.NodeClaim){withStartupTaint},
		wantConditions: map[string]metav1.ConditionStatus{"Launched": "True", "Registered": "True", "Initialized": "True"},
	}, {
		name:           "initialization waits for Ready",
		nodeOpts:       []func(*corev1.Node){notReady},
		wantConditions: map[string]metav1.ConditionStatus{"Launched": "True", "Registered": "True"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			nc := claim("a", tc.claimOpts...)
			providerID := e.launch(t, nc)
			launched(providerID)(nc)
			// The node joins under another name than the one expected: the providerID matches it.
			e.add(t, nc, node("joined", providerID, tc.nodeOpts...))
			r := &registrar{deps: e.deps, timeout: 15 * time.Minute}
			if _, err := r.reconcile(e.ctx, "a"); err != nil {
				t.Fatal(err)
			}
			got := e.getClaim(t, "a")
			if diff := cmp.Diff(tc.wantConditions, conditions(got)); diff != "" {
				t.Errorf("conditions (-want, +got):\n%s", diff)
			}
			if got.Status.NodeName != "joined" {
				t.Errorf("status.nodeName = %q, want the joined node's name", got.Status.NodeName)
			}
			n := e.getNode(t, "joined")
			// Without its Provisioner and EC2NodeClass, the node gets the labels of the launch.
			wantLabels := map[string]string{
				v1alpha1.LabelNodeClaim: "a", v1alpha1.LabelProvisionerName: "default",
				corev1.LabelInstanceTypeStable: "m5.large", corev1.LabelTopologyZone: "us-east-1a", v1alpha1.LabelCapacityType: "spot",
			}
			if diff := cmp.Diff(wantLabels, n.Labels); diff != "" {
				t.Errorf("node labels (-want, +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{v1alpha1.TerminationFinalizer}, n.Finalizers); diff != "" {
				t.Errorf("node finalizers (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestRegistrationLabelsNodeAsPlanned checks that the joined Node gets the labels the pods
// planned onto it may select: its instance type's well-known labels, its offering's, and the
// claim's single-valued In requirements; labels the kubelet set keep their values.
func TestRegistrationLabelsNodeAsPlanned(t *testing.T) {
	e := newEnv(t)
	e.cloud.Types = []*cloud.InstanceType{{
		Name: "m5.large",
		Labels: map[string]string{
			corev1.LabelInstanceTypeStable: "m5.large", corev1.LabelArchStable: "amd64", corev1.LabelOSStable: "linux",
			corev1.LabelTopologyRegion: "us-east-1", v1alpha1.LabelInstanceFamily: "m5", v1alpha1.LabelInstanceSize: "large",
			v1alpha1.LabelInstanceCPU: "2", v1alpha1.LabelInstanceMemory: "8192", v1alpha1.LabelInstanceGPUCount: "0",
		},
		Offerings: []cloud.Offering{{Zone: "us-east-1a", CapacityType: v1alpha1.CapacityTypeSpot, Price: 0.04, Available: true}},
	}}
	nc := claim("a", func(nc *v1alpha1.NodeClaim) {
		nc.Spec.Requirements = append(nc.Spec.Requirements,
			v1alpha1.NodeSelectorRequirement{Key: "team", Operator: corev1.NodeSelectorOpIn, Values: []string{"payments"}},
			v1alpha1.NodeSelectorRequirement{Key: "tier", Operator: corev1.NodeSelectorOpIn, Values: []string{"web", "batch"}},
			v1alpha1.NodeSelectorRequirement{Key: "spare", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"true"}},
			v1alpha1.NodeSelectorRequirement{Key: v1alpha1.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{"spot", "on-demand"}},
		)
	})
	providerID := e.launch(t, nc)
	launched(providerID)(nc)
	e.add(t, nc, provisioner("default"), nodeClass("default"))
	// The kubelet set its hostname, os and a (made up) arch; the emulated cloud provider no zone.
	e.add(t, node("joined", providerID, func(n *corev1.Node) {
		n.Labels = map[string]string{corev1.LabelHostname: "joined", corev1.LabelOSStable: "linux", corev1.LabelArchStable: "kubelet-says"}
	}))
	r := &registrar{deps: e.deps, timeout: 15 * time.Minute}
	if _, err := r.reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		corev1.LabelHostname:           "joined",
		corev1.LabelOSStable:           "linux",
		corev1.LabelArchStable:         "kubelet-says",
		corev1.LabelInstanceTypeStable: "m5.large",
		corev1.LabelTopologyZone:       "us-east-1a",
		corev1.LabelTopologyRegion:     "us-east-1",
		v1alpha1.LabelCapacityType:     "spot",
		v1alpha1.LabelInstanceFamily:   "m5",
		v1alpha1.LabelInstanceSize:     "large",
		v1alpha1.LabelInstanceCPU:      "2",
		v1alpha1.LabelInstanceMemory:   "8192",
		v1alpha1.LabelInstanceGPUCount: "0",
		"team":                         "payments",
		v1alpha1.LabelNodeClaim:        "a",
		v1alpha1.LabelProvisionerName:  "default",
	}
	n := e.getNode(t, "joined")
	if diff := cmp.Diff(want, n.Labels); diff != "" {
		t.Errorf("node labels (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{v1alpha1.TerminationFinalizer}, n.Finalizers); diff != "" {
		t.Errorf("node finalizers (-want, +got):\n%s", diff)
	}
}

// TestInitializationAfterTaintRemoved follows one node: tainted, then the taint is removed.
func TestInitializationAfterTaintRemoved(t *testing.T) {
	e := newEnv(t)
	taint := v1alpha1.Taint{Key: "example.com/not-ready", Effect: corev1.TaintEffectNoExecute}
	nc := claim("a", func(nc *v1alpha1.NodeClaim) { nc.Spec.StartupTaints = []v1alpha1.Taint{taint} })
	providerID := e.launch(t, nc)
	launched(providerID)(nc)
	e.add(t, nc, node("node-a", providerID, func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{taint.Core()} }))
	r := &registrar{deps: e.deps, timeout: 15 * time.Minute}
	if _, err := r.reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e.getClaim(t, "a").IsTrue(v1alpha1.ConditionInitialized) {
		t.Fatal("initialized while the startup taint is on the node")
	}
	n := e.getNode(t, "node-a")
	n.Spec.Taints = nil
	if _, err := e.kube.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(time.Minute)
	if _, err := r.reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	got := condition(e.getClaim(t, "a"), v1alpha1.ConditionInitialized)
	if got == nil || got.Status != metav1.ConditionTrue || !got.LastTransitionTime.Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("Initialized = %+v, want True since t0+1m", got)
	}
}

func TestRegistrationTimeout(t *testing.T) {
	e := newEnv(t)
	nc := claim("a")
	providerID := e.launch(t, nc)
	launched(providerID)(nc)
	e.add(t, nc)
	r := &registrar{deps: e.deps, timeout: 15 * time.Minute}

	e.clock.Step(10 * time.Minute)
	requeue, err := r.reconcile(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if requeue != 5*time.Minute { // 15m timeout - 10m since launch
		t.Errorf("requeue after %s, want 5m", requeue)
	}
	if !e.instanceExists(t, providerID) || e.getClaim(t, "a") == nil {
		t.Fatal("instance or nodeclaim removed before the registration timeout")
	}

	e.clock.Step(5 * time.Minute)
	if _, err := r.reconcile(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e.instanceExists(t, providerID) {
		t.Error("instance still exists after the registration timeout, want it terminated")
	}
	if e.getClaim(t, "a") != nil {
		t.Error("nodeclaim still exists after the registration timeout, want it deleted")
	}
}
