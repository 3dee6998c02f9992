package lifecycle

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Results of an eviction, the values of the evictions metric's result label.
const (
	evictionEvicted = "evicted"
	evictionBlocked = "blocked"
	evictionError   = "error"
)

// drain asks the Eviction API to evict every pod on node that draining must move (not
// DaemonSet, mirror or finished pods) and returns how many of them are still on the node.
// Pods are never deleted directly: an eviction honours PodDisruptionBudgets, and one a budget
// refuses (429 Too Many Requests) is simply asked again on the next pass.
func (t *terminator) drain(ctx context.Context, node *corev1.Node) (int, error) {
	pods, err := t.podsOnNode(ctx, node.Name)
	if err != nil {
		return 0, err
	}
	logger := klog.FromContext(ctx)
	remaining := 0
	var errs []error
	for _, pod := range pods {
		if !isEvictable(pod) {
			continue
		}
		remaining++
		if pod.DeletionTimestamp != nil {
			continue // evicted already, within its grace period
		}
		err := t.kube.CoreV1().Pods(pod.Namespace).EvictV1(ctx, &policyv1.Eviction{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		})
		switch {
		case err == nil:
			evictions.WithLabelValues(evictionEvicted).Inc()
			logger.V(4).Info("Evicted pod", "pod", klog.KObj(pod), "node", klog.KObj(node))
			t.recorder.Eventf(pod, node, corev1.EventTypeNormal, eventEvicted, actionEvict, "Evicted to drain node %s", node.Name)
		case apierrors.IsNotFound(err):
			remaining--
		case apierrors.IsTooManyRequests(err):
			evictions.WithLabelValues(evictionBlocked).Inc()
			logger.V(2).Info("Eviction refused by a disruption budget, will retry", "pod", klog.KObj(pod), "node", klog.KObj(node))
			t.recorder.Eventf(node, pod, corev1.EventTypeWarning, eventEvictionBlocked, actionEvict, "Eviction of pod %s/%s refused: %v", pod.Namespace, pod.Name, err)
		default:
			evictions.WithLabelValues(evictionError).Inc()
			errs = append(errs, fmt.Errorf("evicting pod %s/%s: %w", pod.Namespace, pod.Name, err))
		}
	}
	return remaining, errors.Join(errs...)
}
