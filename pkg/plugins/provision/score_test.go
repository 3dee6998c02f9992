package provision

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fwk "k8s.io/kube-scheduler/framework"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/disruption"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// TestPreScoreSkipsUnlessRoomIsHeld: Score runs only for a pod a replacement holds room for,
// while it holds it; for every other pod PreScore skips it.
func TestPreScoreSkipsUnlessRoomIsHeld(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	p := newProvision(&deps{opts: Options{Clock: clk}, ledger: NewLedger()}, false)
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs-1", Controller: new(true)}
	moved := plantest.PendingPod("moved", "1").OwnerReference(owner.Name, appsv1.SchemeGroupVersion.WithKind("ReplicaSet")).
		Label(appsv1.DefaultDeploymentUniqueLabelKey, "1").Obj()
	moved.OwnerReferences = []metav1.OwnerReference{owner}
	other := plantest.PendingPod("other", "1").Obj()
	preScore := func(pod *v1.Pod) fwk.Code {
		return p.PreScore(context.Background(), nil, pod, nil).Code()
	}
	if preScore(moved) != fwk.Skip || preScore(other) != fwk.Skip {
		t.Fatal("Score runs with no claim holding room")
	}
	held, err := json.Marshal(map[string]int{disruption.HoldKey(moved): 1})
	if err != nil {
		t.Fatal(err)
	}
	nc := plantest.Claim("replacement", "node-1")
	nc.Annotations = map[string]string{v1alpha1.AnnotationHeldPods: string(held),
		v1alpha1.AnnotationHeldUntil: clk.Now().Add(time.Minute).UTC().Format(time.RFC3339)}
	p.ledger.Set(nc)
	if preScore(moved) != fwk.Success {
		t.Error("Score skipped for a pod a replacement holds room for")
	}
	if preScore(other) != fwk.Skip {
		t.Error("Score runs for a pod no replacement holds room for")
	}
	clk.Step(2 * time.Minute)
	if preScore(moved) != fwk.Skip {
		t.Error("Score runs after the hold ended")
	}
	clk.Step(-2 * time.Minute)
	p.ledger.Delete(nc.Name)
	if preScore(moved) != fwk.Skip {
		t.Error("Score runs after the holding claim went")
	}
}
