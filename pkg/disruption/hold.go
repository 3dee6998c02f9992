package disruption

import (
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HoldKey identifies the pods a controller recreates alike, by which a consolidation holds
// room for a moved pod: the pod it moves is evicted and its controller creates another, with
// another name, which must find the room planned for the one it replaces. The key is the
// namespace, the controller (kind and UID) and the revision of the pod template it stamps
// (a ReplicaSet's pod-template-hash label, a StatefulSet's controller-revision-hash); "" for a
// pod no controller recreates, or one that goes with its node (plan.GoesWithNode).
func HoldKey(pod *v1.Pod) string {
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Kind == "DaemonSet" {
		return ""
	}
	revision := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if r, ok := pod.Labels[appsv1.ControllerRevisionHashLabelKey]; ok {
		revision = r
	}
	return pod.Namespace + "/" + owner.Kind + "/" + string(owner.UID) + "/" + revision
}
