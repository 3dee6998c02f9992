package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// claimWriter writes what a round decided: a NodeClaim per planned node, with its pods
// reserved on it, and the pods planned into launched claims' spare room. A claim is written
// before any cloud call, so that a crash never loses track of a launch.
type claimWriter struct {
	*deps
	// placing leaves out of a claim the pods the scheduler is placing meanwhile.
	placing *placing
	// trigger asks for a round, for pods whose reservation could not be written.
	trigger func()
}

// claimWriters is how many NodeClaims a round creates at once: each create waits on the
// apiserver far longer than it computes, and a round of 1,000 pods writes some 200.
const claimWriters = 8

// writeClaims creates one NodeClaim per planned node, claimWriters at a time, and records the
// reservations at once, so that PostFilter sees them before the informer does. It returns
// the names of the claims written and how many could not be.
func (w *claimWriter) writeClaims(ctx context.Context, result *plan.Result) (written []string, failed int) {
	work := make(chan *plan.PlannedNode)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(claimWriters, len(result.Nodes)) {
		wg.Go(func() {
			for n := range work {
				name, ok := w.writeClaim(ctx, n)
				mu.Lock()
				if name != "" {
					written = append(written, name)
				}
				if !ok {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	for _, n := range result.Nodes {
		work <- n
	}
	close(work)
	wg.Wait()
	return written, failed
}

// writeClaim creates the NodeClaim of n and reserves its pods on it, and returns its name
// ("" if none was written: none was needed, or the write failed) and false if the write
// failed.
func (w *claimWriter) writeClaim(ctx context.Context, n *plan.PlannedNode) (string, bool) {
	logger := klog.FromContext(ctx)
	// A pod bound or gone since the round took it needs no new node, and a node none of
	// whose pods still wait is not launched. The round marked its pods as being reserved
	// when it took them, so no scheduling cycle is placing them (see placing); reserve
	// checks again, and they stay turned away by PreFilter until their reservation is in
	// the ledger.
	if still := w.placing.reserve(w.stillPending(n.Pods)); len(still) < len(n.Pods) {
		logger.V(2).Info("Pods of a planned node were bound, went, or entered a scheduling cycle, meanwhile", "planned", len(n.Pods), "pending", len(still))
		if len(still) == 0 {
			return "", true
		}
		n.Pods = still
	}
	nc, err := v1alpha1.CreateNodeClaim(ctx, w.opts.Dynamic, plan.NodeClaimFor(n))
	if err != nil {
		w.activatePods(logger, w.placing.reserved(n.Pods, false))
		// Its pods stay unreserved: the next round plans them again.
		logger.Error(err, "Writing the nodeclaim of a planned node", "provisioner", n.Template.Provisioner.Name,
			"instanceType", n.Template.InstanceType.Name, "pods", len(n.Pods))
		for _, pod := range n.Pods {
			w.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning",
				"%s: writing the nodeclaim: %v", Name, err)
		}
		return "", false
	}
	w.ledger.Set(nc)
	w.placing.reserved(n.Pods, true)
	nodesPlanned.WithLabelValues(nc.Spec.Provisioner, n.Template.InstanceType.Name).Inc()
	podsReserved.WithLabelValues(nc.Spec.Provisioner).Add(float64(len(n.Pods)))
	logger.V(2).Info("Created nodeclaim", "nodeClaim", klog.KObj(nc), "provisioner", nc.Spec.Provisioner,
		"instanceType", n.Template.InstanceType.Name, "zone", n.Template.Offering.Zone,
		"capacityType", n.Template.Offering.CapacityType, "pods", len(n.Pods))
	for _, pod := range n.Pods {
		w.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeNormal, "Reserved", "Provisioning",
			"%s: waiting for the node of nodeclaim %s", Name, nc.Name)
	}
	return nc.Name, true
}

// addToClaims reserves the pods the plan put into the spare room of launched NodeClaims on
// those claims: recorded in the claim's annotation first, so that a restart keeps them. A
// claim gone meanwhile, or a failed write, leaves its pods unreserved, to be planned again
// when the scheduler tries them next. So does a claim whose node registered while the round
// planned: its own pods may have bound since, and the scheduler placed other pods into the
// room they left (Filter holds a node only while a pod reserved there is pending), so the
// plan's spare room may be gone; the pods fit the node's free room by the plan, and the
// scheduler places them there or elsewhere. (Reserved anyway, a pod stranded on a node full
// of pods bound meanwhile, in a scale-up in waves.)
func (w *claimWriter) addToClaims(ctx context.Context, added []*plan.AddedPods) {
	logger := klog.FromContext(ctx)
	for _, a := range added {
		if nc, ok := w.ledger.Claim(a.Claim); ok && w.registered(nc) {
			logger.V(2).Info("Node of nodeclaim registered while the round planned; leaving the pods planned into its spare room to the scheduler",
				"nodeClaim", a.Claim, "node", nc.Status.NodeName, "pods", len(a.Pods))
			w.activatePods(logger, w.stillPending(a.Pods))
			continue
		}
		pods := w.placing.reserve(w.stillPending(a.Pods))
		if len(pods) == 0 {
			continue
		}
		refs := v1alpha1.PodReferencesTo(pods)
		err := recordAddedPods(ctx, w.opts.Dynamic, a.Claim, append(w.ledger.Added(a.Claim), refs...))
		recorded := err == nil && w.ledger.Add(a.Claim, refs)
		w.activatePods(logger, w.placing.reserved(pods, recorded))
		if err != nil {
			logger.Error(err, "Reserving pods in the spare room of a nodeclaim; planning them again", "nodeClaim", a.Claim, "pods", len(pods))
			for _, pod := range pods {
				w.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning",
					"%s: reserving the pod on nodeclaim %s: %v", Name, a.Claim, err)
			}
			continue
		}
		if !recorded {
			logger.V(2).Info("Nodeclaim gone before pods were reserved in its spare room; planning them again",
				"nodeClaim", a.Claim, "pods", len(pods))
			w.trigger()
			continue
		}
		nc, ok := w.ledger.Claim(a.Claim)
		if !ok {
			// Deleted just now: its deletion released the pods again.
			continue
		}
		podsReserved.WithLabelValues(nc.Spec.Provisioner).Add(float64(len(pods)))
		podsAddedToClaims.WithLabelValues(nc.Spec.Provisioner).Add(float64(len(pods)))
		logger.Info(fmt.Sprintf("Reserved %d pod(s) in the spare room of nodeclaim %s", len(pods), a.Claim),
			"nodeClaim", a.Claim, "node", nc.Status.NodeName, "instanceType", nc.Status.InstanceType, "zone", nc.Status.Zone)
		for _, pod := range pods {
			w.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeNormal, "Reserved", "Provisioning",
				"%s: waiting for the node of nodeclaim %s (%s, launched; planned into its spare room)", Name, a.Claim, nc.Status.InstanceType)
		}
		if nc.IsTrue(v1alpha1.ConditionRegistered) {
			// The node registered while the round planned: the claim's pods were activated
			// before these joined them.
			w.activatePods(logger, pods)
		}
	}
}

// registered reports whether nc's node has registered: the claim says so, or the scheduler's
// informer has its node.
func (w *claimWriter) registered(nc *v1alpha1.NodeClaim) bool {
	if nc.IsTrue(v1alpha1.ConditionRegistered) {
		return true
	}
	return nc.Status.NodeName != "" && w.nodeNamed(nc.Status.NodeName) != nil
}

// recordAddedPods writes refs, all the pods added to the spare room of the NodeClaim named
// name, into its annotation nodewright.dev/added-pods.
func recordAddedPods(ctx context.Context, client dynamic.Interface, name string, refs []v1alpha1.PodReference) error {
	value, err := json.Marshal(refs)
	if err != nil {
		return fmt.Errorf("encoding the pods added to nodeclaim %s: %w", name, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationAddedPods: string(value)}}})
	if err != nil {
		return fmt.Errorf("encoding the pods added to nodeclaim %s: %w", name, err)
	}
	if _, err := client.Resource(v1alpha1.NodeClaimGVR).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("recording the pods added to nodeclaim %s: %w", name, err)
	}
	return nil
}
