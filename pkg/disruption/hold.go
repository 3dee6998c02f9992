package disruption

import (
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
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

// Held returns why pod may not go on the node of nc now; "" if it may. A replacement's claim
// holds its node's room for the pods moved to it (AnnotationHeldPods, by HoldKey) until
// AnnotationHeldUntil: until then only those pods, as many of each key as were moved, and
// pods that go with the node, may go there, unless all the held pods are there already.
// onNode are the pods on the node. A claim that holds nothing, or whose annotations do not
// parse, holds nothing.
func Held(nc *v1alpha1.NodeClaim, pod *v1.Pod, onNode []*v1.Pod, now time.Time) string {
	if plan.GoesWithNode(pod) {
		return ""
	}
	held, waiting := waitingFor(nc, onNode, now)
	if waiting == 0 || held[HoldKey(pod)] > 0 {
		return ""
	}
	return fmt.Sprintf("node held until %s for %d pod(s) moved to it from %s", nc.Annotations[v1alpha1.AnnotationHeldUntil], waiting, nc.Annotations[v1alpha1.AnnotationReplaces])
}

// Waiting returns how many of the pods nc's node holds room for (Held) are not on it yet,
// onNode being the pods on it; 0 once the hold is over.
func Waiting(nc *v1alpha1.NodeClaim, onNode []*v1.Pod, now time.Time) int {
	_, waiting := waitingFor(nc, onNode, now)
	return waiting
}

// waitingFor returns, by hold key, the pods nc's node still holds room for at now, and their
// number.
func waitingFor(nc *v1alpha1.NodeClaim, onNode []*v1.Pod, now time.Time) (map[string]int, int) {
	if !Holding(nc, now) {
		return nil, 0
	}
	var held map[string]int
	if err := json.Unmarshal([]byte(nc.Annotations[v1alpha1.AnnotationHeldPods]), &held); err != nil {
		return nil, 0
	}
	for _, p := range onNode {
		if key := HoldKey(p); held[key] > 0 {
			held[key]--
		}
	}
	waiting := 0
	for _, n := range held {
		waiting += n
	}
	return held, waiting
}

// Holding reports whether nc's node holds room for moved pods at now (AnnotationHeldPods,
// until AnnotationHeldUntil): emptiness leaves it alone meanwhile, since the pods it waits
// for are on their way.
func Holding(nc *v1alpha1.NodeClaim, now time.Time) bool {
	if _, ok := nc.Annotations[v1alpha1.AnnotationHeldPods]; !ok {
		return false
	}
	until, err := time.Parse(time.RFC3339, nc.Annotations[v1alpha1.AnnotationHeldUntil])
	return err == nil && now.Before(until)
}

// HeldFor reports whether nc holds room for pods like pod (its HoldKey), whether or not they
// are there yet.
func HeldFor(nc *v1alpha1.NodeClaim, pod *v1.Pod) bool {
	key := HoldKey(pod)
	if key == "" {
		return false
	}
	var held map[string]int
	if err := json.Unmarshal([]byte(nc.Annotations[v1alpha1.AnnotationHeldPods]), &held); err != nil {
		return false
	}
	return held[key] > 0
}
