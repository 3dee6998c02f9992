package disruption

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestHeld(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	pod := func(name, rs, hash string) *v1.Pod {
		p := st.MakePod().Namespace("default").Name(name).OwnerReference(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet")).
			Label(appsv1.DefaultDeploymentUniqueLabelKey, hash).Obj()
		p.OwnerReferences[0].UID = types.UID("uid-" + rs)
		return p
	}
	web, api := pod("web-1", "web", "a1"), pod("api-1", "api", "b1")
	nc := &v1alpha1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "replacement", Annotations: map[string]string{
		v1alpha1.AnnotationHeldPods:  `{"` + HoldKey(web) + `":2}`,
		v1alpha1.AnnotationHeldUntil: now.Add(time.Minute).Format(time.RFC3339),
		v1alpha1.AnnotationReplaces:  "old-1,old-2",
	}}}
	daemon := st.MakePod().Namespace("kube-system").Name("ds").OwnerReference("ds", appsv1.SchemeGroupVersion.WithKind("DaemonSet")).Obj()
	for _, tc := range []struct {
		name   string
		pod    *v1.Pod
		onNode []*v1.Pod
		at     time.Time
		held   bool
	}{
		{name: "a pod of the held kind", pod: web, at: now},
		{name: "another pod of the held kind, one there", pod: pod("web-2", "web", "a1"), onNode: []*v1.Pod{pod("web-3", "web", "a1")}, at: now},
		{name: "a third, both there: the hold is over", pod: pod("web-4", "web", "a1"), onNode: []*v1.Pod{pod("web-2", "web", "a1"), pod("web-3", "web", "a1")}, at: now},
		{name: "another kind while held", pod: api, at: now, held: true},
		{name: "the same Deployment's next revision is another kind", pod: pod("web-9", "web", "a2"), at: now, held: true},
		{name: "another kind once the hold ends", pod: api, at: now.Add(time.Minute)},
		{name: "a DaemonSet pod", pod: daemon, at: now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why := Held(nc, tc.pod, tc.onNode, tc.at)
			if (why != "") != tc.held {
				t.Fatalf("Held = %q, want held %v", why, tc.held)
			}
			if tc.held && !strings.Contains(why, "from old-1,old-2") {
				t.Errorf("Held = %q, want it to name the nodeclaims replaced", why)
			}
		})
	}
	if !Holding(nc, now) || Holding(nc, now.Add(time.Minute)) {
		t.Error("Holding: want true before held-until, false from it")
	}
	if !HeldFor(nc, web) || HeldFor(nc, api) {
		t.Error("HeldFor: want web's kind held, api's not")
	}
	if Holding(&v1alpha1.NodeClaim{}, now) || Held(&v1alpha1.NodeClaim{}, api, nil, now) != "" {
		t.Error("a claim holding nothing holds")
	}
}
