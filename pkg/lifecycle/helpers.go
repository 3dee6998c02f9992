package lifecycle

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/disruption"
)

// deps are what every controller uses.
type deps struct {
	kube kubernetes.Interface
	// nodes and pods (indexed by podNodeIndex) are the informers' caches once Run has started
	// them; nil reads through the API. Reads that decide a deletion go to the API. The pods
	// cache may lack finished pods (kube-scheduler's lists none): whoever reads it treats a
	// finished pod as one that is gone.
	nodes    corelisters.NodeLister
	pods     cache.Indexer
	objects  objects
	cloud    cloud.Provider
	clock    clock.Clock
	recorder events.EventRecorder
	// gate keeps emptiness and expiry, with consolidation and drift, within each
	// Provisioner's disruption budgets.
	gate *disruption.Gate
}

// setCondition sets a NodeClaim condition, stamping a transition with the injected clock
// (meta.SetStatusCondition would use the wall clock). It reports whether anything changed.
func (d *deps) setCondition(nc *v1alpha1.NodeClaim, condType string, status metav1.ConditionStatus, reason, message string) bool {
	old := meta.FindStatusCondition(nc.Status.Conditions, condType)
	if old != nil && old.Status == status && old.Reason == reason && old.Message == message {
		return false
	}
	meta.SetStatusCondition(&nc.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: nc.Generation,
		LastTransitionTime: metav1.NewTime(d.clock.Now()),
	})
	return true
}

// nodeForClaim returns the Node whose spec.providerID is nc's, or nil if none has joined.
func (d *deps) nodeForClaim(ctx context.Context, nc *v1alpha1.NodeClaim) (*corev1.Node, error) {
	if nc.Status.ProviderID == "" {
		return nil, nil
	}
	if nc.Status.NodeName != "" {
		node, err := d.getNode(ctx, nc.Status.NodeName)
		switch {
		case err == nil && node.Spec.ProviderID == nc.Status.ProviderID:
			return node, nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("getting node %s: %w", nc.Status.NodeName, err)
		}
	}
	// The expected name is the cloud's guess; the providerID is what identifies the node.
	if d.nodes != nil {
		nodes, err := d.nodes.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing nodes: %w", err)
		}
		for _, n := range nodes {
			if n.Spec.ProviderID == nc.Status.ProviderID {
				return n.DeepCopy(), nil
			}
		}
		return nil, nil
	}
	nodes, err := d.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodes.Items {
		if nodes.Items[i].Spec.ProviderID == nc.Status.ProviderID {
			return &nodes.Items[i], nil
		}
	}
	return nil, nil
}

// getNode returns a copy of the Node named name, from the cache once there is one.
func (d *deps) getNode(ctx context.Context, name string) (*corev1.Node, error) {
	if d.nodes != nil {
		node, err := d.nodes.Get(name)
		if err != nil {
			return nil, err
		}
		return node.DeepCopy(), nil
	}
	return d.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

// getPod returns the pod namespace/name, from the cache once there is one. Callers must not
// change it.
func (d *deps) getPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	if d.pods != nil {
		obj, exists, err := d.pods.GetByKey(namespace + "/" + name)
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
		}
		return obj.(*corev1.Pod), nil
	}
	return d.kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

// podNodeIndex indexes the pods cache by spec.nodeName.
const podNodeIndex = "nodewright.dev/nodeName"

func indexPodByNode(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return nil, nil
	}
	return []string{pod.Spec.NodeName}, nil
}

// cachedPodsOnNode is podsOnNode from the cache once there is one. Callers must not change
// the pods.
func (d *deps) cachedPodsOnNode(ctx context.Context, nodeName string) ([]*corev1.Pod, error) {
	if d.pods == nil {
		return d.podsOnNode(ctx, nodeName)
	}
	objs, err := d.pods.ByIndex(podNodeIndex, nodeName)
	if err != nil {
		return nil, fmt.Errorf("listing pods on node %s: %w", nodeName, err)
	}
	out := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		out = append(out, obj.(*corev1.Pod))
	}
	return out, nil
}

// claimForNode returns the NodeClaim node was launched for, by its label or else by
// providerID, or nil if nodewright did not launch it.
func (d *deps) claimForNode(ctx context.Context, node *corev1.Node) (*v1alpha1.NodeClaim, error) {
	if name := node.Labels[v1alpha1.LabelNodeClaim]; name != "" {
		nc, err := d.objects.getNodeClaim(ctx, name)
		switch {
		case err == nil:
			return nc, nil
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("getting nodeclaim %s: %w", name, err)
		}
	}
	if node.Spec.ProviderID == "" {
		return nil, nil
	}
	return d.objects.nodeClaimForProviderID(ctx, node.Spec.ProviderID)
}

// podsOnNode lists the pods bound to the node. The field selector keeps the apiserver's
// answer small; the filter makes the result right whoever answers (fake clientsets ignore
// field selectors).
func (d *deps) podsOnNode(ctx context.Context, nodeName string) ([]*corev1.Pod, error) {
	list, err := d.kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", nodeName).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing pods on node %s: %w", nodeName, err)
	}
	var out []*corev1.Pod
	for i := range list.Items {
		if list.Items[i].Spec.NodeName == nodeName {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// isDaemonSetPod reports whether a DaemonSet controls pod: it runs on every node and is not
// a reason to keep or drain one.
func isDaemonSetPod(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.Kind == "DaemonSet"
}

// isMirrorPod reports whether pod is the API's mirror of a kubelet's static pod, which
// cannot be evicted.
func isMirrorPod(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

// isTerminal reports whether pod has finished and holds nothing on its node.
func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// isEvictable reports whether draining a node must evict pod: not a DaemonSet or mirror
// pod, and not finished.
func isEvictable(pod *corev1.Pod) bool {
	return !isDaemonSetPod(pod) && !isMirrorPod(pod) && !isTerminal(pod)
}

// hasDoNotEvict reports whether pod asks nodewright not to disrupt its node.
func hasDoNotEvict(pod *corev1.Pod) bool {
	return disruption.DoNotDisrupt(pod.Annotations) != ""
}

// removeString returns list without s, and whether s was in it.
func removeString(list []string, s string) ([]string, bool) {
	if !slices.Contains(list, s) {
		return list, false
	}
	return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == s }), true
}
