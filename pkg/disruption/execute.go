package disruption

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// replacementPoll is how often a replacement's initialization is looked for.
const replacementPoll = 2 * time.Second

// execute carries d out, so that nothing is lost on the way:
//  1. each node's Provisioner's budget lets it go (Gate), or the decision waits;
//  2. each node's claim is marked Disrupting (reason and decision), then the node tainted
//     nodewright.dev/disrupted:NoSchedule, so no new pod goes there;
//  3. a replacement's NodeClaim is written, holding its room for the moved pods (Held), and
//     awaited until initialized;
//  4. the nodes' claims are deleted: the lifecycle cordons and drains them through the
//     Eviction API, which honours PodDisruptionBudgets, and terminates their instances.
//
// A failure before 4 undoes what was done: the taints and conditions go, the replacement is
// deleted, and the nodes stay. Each step is on the claims, so a process that stops midway
// leaves what the next one's recover finishes or undoes.
func (c *Controller) execute(ctx context.Context, d *Decision, s *state) error {
	logger := klog.FromContext(ctx)
	now := c.opts.Clock.Now()
	var taken []string
	for _, n := range d.Nodes {
		nc := s.claim(n.Claim)
		prov := s.cluster.Provisioners[nc.Spec.Provisioner]
		if ok, why := c.opts.Gate.Take(n.Claim, prov, s.claims, d.Reason, now); !ok {
			for _, name := range taken {
				c.opts.Gate.Release(name)
			}
			decisions.WithLabelValues(string(d.Reason), string(d.Method), resultBudget).Inc()
			logger.Info("Disruption waits for a disruption budget", "decision", d.String(), "reason", why)
			c.opts.Recorder.Eventf(nc, nil, v1.EventTypeNormal, eventDisruptionBlocked, actionDisrupt, "Not disrupted now: %s", why)
			return nil
		}
		taken = append(taken, n.Claim)
	}
	for _, n := range d.Nodes {
		if err := c.mark(ctx, n, d); err != nil {
			return c.undo(ctx, d.Nodes, "", d, fmt.Sprintf("marking node %s: %v", n.Node, err))
		}
	}
	logger.Info(d.logLine(), "reason", d.Reason, "why", d.Why, "savingsUSDPerHour", fmt.Sprintf("%.4f", d.Savings), "moves", len(d.Moves))
	for _, n := range d.Nodes {
		c.opts.Recorder.Eventf(s.cluster.Nodes[n.Node], s.claim(n.Claim), v1.EventTypeNormal, eventDisrupting, actionDisrupt,
			"%s: %s", d.Reason, d.String())
	}
	if d.Replacement != nil {
		name, err := c.launchReplacement(ctx, d)
		if err != nil {
			return c.undo(ctx, d.Nodes, "", d, fmt.Sprintf("writing the replacement: %v", err))
		}
		if err := c.awaitReplacement(ctx, name); err != nil {
			return c.undo(ctx, d.Nodes, name, d, err.Error())
		}
		if err := c.holdFrom(ctx, name, c.opts.Clock.Now()); err != nil {
			return c.undo(ctx, d.Nodes, name, d, err.Error())
		}
	}
	for i, n := range d.Nodes {
		if err := c.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Delete(ctx, n.Claim, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			// The claims deleted already are on their way; the others stay.
			undoErr := c.undo(ctx, d.Nodes[i:], "", d, fmt.Sprintf("deleting nodeclaim %s: %v", n.Claim, err))
			return undoErr
		}
	}
	decisions.WithLabelValues(string(d.Reason), string(d.Method), resultExecuted).Inc()
	nodesDisrupted.WithLabelValues(string(d.Reason)).Add(float64(len(d.Nodes)))
	savings.WithLabelValues(string(d.Reason)).Add(d.Savings)
	return nil
}

// logLine says d as the seed's logs say a disruption.
func (d *Decision) logLine() string {
	via := "consolidation"
	if d.Reason == v1alpha1.DisruptionDrifted {
		via = "drift"
	}
	line := fmt.Sprintf("Disrupting node(s) via %s %s, terminating %d node(s) (%s)", via, d.Method, len(d.Nodes), names(d.Nodes))
	if r := d.Replacement; r != nil {
		line += fmt.Sprintf(" and replacing with %s node from types [%s]", r.Template.Offering.CapacityType, strings.Join(r.InstanceTypeNames(), ", "))
	}
	return line + fmt.Sprintf(", saving %.4f USD/h", d.Savings)
}

// mark sets n's claim Disrupting and taints its node.
func (c *Controller) mark(ctx context.Context, n Candidate, d *Decision) error {
	if err := c.updateClaimStatus(ctx, n.Claim, func(nc *v1alpha1.NodeClaim) bool {
		return c.setCondition(nc, metav1.Condition{Type: v1alpha1.ConditionDisrupting, Status: metav1.ConditionTrue,
			Reason: string(d.Reason), Message: d.String()})
	}); err != nil {
		return err
	}
	return c.updateNode(ctx, n.Node, func(node *v1.Node) bool {
		if slices.ContainsFunc(node.Spec.Taints, isDisruptedTaint) {
			return false
		}
		node.Spec.Taints = append(node.Spec.Taints, v1.Taint{Key: v1alpha1.TaintDisrupted, Effect: v1.TaintEffectNoSchedule})
		return true
	})
}

// undo takes the taint and the condition off nodes, releases them to the Gate, and deletes
// the replacement named replacement, if any; it records why and returns nil, since what was
// to be undone is.
func (c *Controller) undo(ctx context.Context, nodes []Candidate, replacement string, d *Decision, why string) error {
	logger := klog.FromContext(ctx)
	if ctx.Err() != nil {
		// Stopping, or no longer the leader: the next leader's recover finishes or undoes it.
		logger.Info("Disruption interrupted midway; the next leader finishes or undoes it", "decision", d.String())
		return nil
	}
	logger.Info("Disruption failed; undoing it", "decision", d.String(), "reason", why)
	decisions.WithLabelValues(string(d.Reason), string(d.Method), resultFailed).Inc()
	var errs []error
	if replacement != "" {
		if err := c.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Delete(ctx, replacement, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting replacement %s: %w", replacement, err))
		}
	}
	for _, n := range nodes {
		if err := c.unmark(ctx, n.Node, n.Claim); err != nil {
			errs = append(errs, err)
		}
		c.opts.Gate.Release(n.Claim)
		if node, err := c.opts.Kube.CoreV1().Nodes().Get(ctx, n.Node, metav1.GetOptions{}); err == nil {
			c.opts.Recorder.Eventf(node, nil, v1.EventTypeWarning, eventDisruptionFailed, actionDisrupt, "Disruption undone: %s", why)
		}
	}
	if len(errs) > 0 {
		// The next pass's recover finishes the undoing.
		return fmt.Errorf("undoing a disruption: %v", errs)
	}
	return nil
}

// unmark takes the disrupted taint off the node named node (if it still exists) and the
// Disrupting condition off the claim named claim (likewise): the taint first, so that a
// tainted node always has a Disrupting claim for recover to find.
func (c *Controller) unmark(ctx context.Context, node, claim string) error {
	if err := c.updateNode(ctx, node, func(n *v1.Node) bool {
		before := len(n.Spec.Taints)
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, isDisruptedTaint)
		return len(n.Spec.Taints) != before
	}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if claim == "" {
		return nil
	}
	err := c.updateClaimStatus(ctx, claim, func(nc *v1alpha1.NodeClaim) bool {
		return meta.RemoveStatusCondition(&nc.Status.Conditions, v1alpha1.ConditionDisrupting)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// launchReplacement writes the NodeClaim of d's replacement, holding its room for the pods
// moved to it (AnnotationHeldPods) until they are evicted and HoldFor after, and returns its
// name. The claim reserves no pod (spec.pods): the pods it is for do not exist yet, their
// controllers create them once the old ones are evicted.
func (c *Controller) launchReplacement(ctx context.Context, d *Decision) (string, error) {
	nc := plan.NodeClaimFor(d.Replacement)
	nc.Spec.Pods = nil
	held := map[string]int{}
	for _, pod := range d.Replacement.Pods {
		if key := HoldKey(pod); key != "" {
			held[key]++
		}
	}
	heldJSON, err := json.Marshal(held)
	if err != nil {
		return "", err
	}
	claims := make([]string, len(d.Nodes))
	for i, n := range d.Nodes {
		claims[i] = n.Claim
	}
	nc.Annotations[v1alpha1.AnnotationReplaces] = strings.Join(claims, ",")
	nc.Annotations[v1alpha1.AnnotationHeldPods] = string(heldJSON)
	// Held while it launches, too; holdFrom shortens this once it is initialized.
	until := c.opts.Clock.Now().Add(c.opts.ReplacementTimeout + c.opts.HoldFor)
	nc.Annotations[v1alpha1.AnnotationHeldUntil] = until.UTC().Format(time.RFC3339)
	created, err := v1alpha1.CreateNodeClaim(ctx, c.opts.Dynamic, nc)
	if err != nil {
		return "", err
	}
	klog.FromContext(ctx).Info("Launching replacement", "nodeClaim", created.Name, "instanceTypes", d.Replacement.InstanceTypeNames(),
		"zone", d.Replacement.Template.Offering.Zone, "capacityType", d.Replacement.Template.Offering.CapacityType,
		"heldPods", len(d.Replacement.Pods), "replaces", claims)
	return created.Name, nil
}

// awaitReplacement waits until the claim named name is initialized; an error if it is
// deleted (its launch failed for good) or ReplacementTimeout passes first.
func (c *Controller) awaitReplacement(ctx context.Context, name string) error {
	deadline := c.opts.Clock.Now().Add(c.opts.ReplacementTimeout)
	for {
		u, err := c.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("replacement %s was deleted before it was initialized", name)
		case err != nil:
			klog.FromContext(ctx).V(2).Info("Reading the replacement", "nodeClaim", name, "err", err)
		default:
			nc, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](u)
			if err != nil {
				return err
			}
			if nc.DeletionTimestamp != nil {
				return fmt.Errorf("replacement %s is being deleted", name)
			}
			if nc.IsTrue(v1alpha1.ConditionInitialized) {
				return nil
			}
		}
		if !c.opts.Clock.Now().Before(deadline) {
			return fmt.Errorf("replacement %s not initialized within %s", name, c.opts.ReplacementTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.opts.Clock.After(replacementPoll):
		}
	}
}

// holdFrom makes the replacement named name hold its room until HoldFor after now.
func (c *Controller) holdFrom(ctx context.Context, name string, now time.Time) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		v1alpha1.AnnotationHeldUntil: now.Add(c.opts.HoldFor).UTC().Format(time.RFC3339)}}})
	if err != nil {
		return err
	}
	if _, err := c.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("holding the room of replacement %s: %w", name, err)
	}
	return nil
}

// recover finishes or undoes the disruptions a previous process left midway: a Disrupting
// claim not being deleted, whose replacement (if it has one) is initialized, is deleted as
// its decision said; one whose replacement is still launching, within ReplacementTimeout of
// its creation, waits for it (a replacement deleted while its launch is in flight could
// leave an instance for garbage collection); any other is undone, its replacement deleted. A
// node tainted disrupted whose claim is not Disrupting loses the taint. It reports whether
// a replacement is still awaited: the pass then decides nothing new.
func (c *Controller) recover(ctx context.Context) (bool, error) {
	logger := klog.FromContext(ctx)
	claims := c.opts.Claims()
	replacements := map[string]*v1alpha1.NodeClaim{}
	for _, nc := range claims {
		for name := range strings.SplitSeq(nc.Annotations[v1alpha1.AnnotationReplaces], ",") {
			if name != "" && nc.DeletionTimestamp == nil {
				replacements[name] = nc
			}
		}
	}
	var errs []error
	waiting := false
	disrupting := map[string]bool{}
	for _, nc := range claims {
		if !nc.IsTrue(v1alpha1.ConditionDisrupting) {
			continue
		}
		disrupting[nc.Status.NodeName] = true
		if nc.DeletionTimestamp != nil {
			continue
		}
		repl := replacements[nc.Name]
		decision := nc.Status.Conditions[slices.IndexFunc(nc.Status.Conditions, func(c metav1.Condition) bool { return c.Type == v1alpha1.ConditionDisrupting })].Message
		if repl != nil && !repl.IsTrue(v1alpha1.ConditionInitialized) && c.opts.Clock.Since(repl.CreationTimestamp.Time) < c.opts.ReplacementTimeout {
			logger.V(2).Info("A disruption a previous process left midway waits for its replacement", "nodeClaim", klog.KObj(nc), "replacement", repl.Name)
			waiting = true
			continue
		}
		if repl != nil && repl.IsTrue(v1alpha1.ConditionInitialized) || repl == nil && strings.HasPrefix(decision, string(MethodDelete)+" ") {
			logger.Info("Resuming a disruption a previous process left midway", "nodeClaim", klog.KObj(nc), "decision", decision)
			if repl != nil {
				if err := c.holdFrom(ctx, repl.Name, c.opts.Clock.Now()); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if err := c.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Delete(ctx, nc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		logger.Info("Undoing a disruption a previous process left midway", "nodeClaim", klog.KObj(nc), "decision", decision)
		if repl != nil {
			if err := c.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR).Delete(ctx, repl.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
				continue
			}
		}
		if err := c.unmark(ctx, nc.Status.NodeName, nc.Name); err != nil {
			errs = append(errs, err)
		}
	}
	nodes, err := c.opts.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelProvisionerName})
	if err != nil {
		return waiting, fmt.Errorf("listing nodes: %w", err)
	}
	for _, node := range nodes.Items {
		if slices.ContainsFunc(node.Spec.Taints, isDisruptedTaint) && !disrupting[node.Name] && node.DeletionTimestamp == nil {
			logger.Info("Removing a disrupted taint no disruption holds", "node", node.Name)
			if err := c.unmark(ctx, node.Name, ""); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return waiting, fmt.Errorf("%v", errs)
	}
	return waiting, nil
}

// isDisruptedTaint reports whether t is the taint of a node being disrupted.
func isDisruptedTaint(t v1.Taint) bool { return t.Key == v1alpha1.TaintDisrupted }

// setCondition sets cond on nc, stamped with the controller's clock; whether it changed.
func (c *Controller) setCondition(nc *v1alpha1.NodeClaim, cond metav1.Condition) bool {
	if old := meta.FindStatusCondition(nc.Status.Conditions, cond.Type); old != nil &&
		old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message {
		return false
	}
	cond.ObservedGeneration = nc.Generation
	cond.LastTransitionTime = metav1.NewTime(c.opts.Clock.Now())
	meta.SetStatusCondition(&nc.Status.Conditions, cond)
	return true
}

// updateClaimStatus reads the NodeClaim named name, applies change and, if it changed
// anything, writes its conditions; again on a conflict.
func (c *Controller) updateClaimStatus(ctx context.Context, name string, change func(*v1alpha1.NodeClaim) bool) error {
	res := c.opts.Dynamic.Resource(v1alpha1.NodeClaimGVR)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		nc, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](u)
		if err != nil {
			return err
		}
		if !change(nc) {
			return nil
		}
		// A merge patch of the conditions at the version read: a conflict if the claim
		// changed since (RBAC grants nodeclaims/status patch, not update).
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": nc.ResourceVersion},
			"status":   map[string]any{"conditions": nc.Status.Conditions},
		})
		if err != nil {
			return err
		}
		_, err = res.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		return err
	})
}

// updateNode reads the Node named name, applies change and, if it changed anything, writes
// it; again on a conflict.
func (c *Controller) updateNode(ctx context.Context, name string, change func(*v1.Node) bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := c.opts.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !change(node) {
			return nil
		}
		_, err = c.opts.Kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
}
