package gang

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestJobGetsGangPodGroup: with the Workload gates on (sandbox.Options.Workloads), the
// apiserver serves PodGroups and the Job controller gives a Job that asks for gang
// scheduling a PodGroup of the gang's minCount, and its pods a schedulingGroup naming it:
// what `nodewright sandbox up --workloads` and the gang tests stand on.
func TestJobGetsGangPodGroup(t *testing.T) {
	ctx := t.Context()
	client := framework.Client(t)
	ns := framework.Namespace(ctx, t, client)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "train"},
		Spec: batchv1.JobSpec{
			Parallelism: ptr.To[int32](4),
			Completions: ptr.To[int32](4),
			Scheduling: &batchv1.JobSchedulingConfiguration{SchedulingPolicy: &schedulingv1alpha3.WorkloadPodGroupSchedulingPolicy{
				Gang: &schedulingv1alpha3.WorkloadPodGroupGangSchedulingPolicy{MinCount: ptr.To[int32](4)},
			}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				SchedulerName: "nodewright-scheduler",
				Containers:    []corev1.Container{{Name: "train", Image: "registry.k8s.io/pause:3.10"}},
			}},
		},
	}
	if _, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating job: %v", err)
	}
	var group string
	framework.Eventually(ctx, t, 60*time.Second, "a gang PodGroup of minCount 4 for the job", func(ctx context.Context) (bool, error) {
		groups, err := client.SchedulingV1beta1().PodGroups(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(groups.Items) != 1 {
			return false, err
		}
		pg := groups.Items[0]
		if gang := pg.Spec.SchedulingPolicy.Gang; gang == nil || gang.MinCount != 4 {
			t.Fatalf("PodGroup %s has scheduling policy %+v, want a gang of minCount 4", pg.Name, pg.Spec.SchedulingPolicy)
		}
		group = pg.Name
		return true, nil
	})
	framework.Eventually(ctx, t, 60*time.Second, "the job's 4 pods in PodGroup "+group, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 4 {
			return false, err
		}
		for _, pod := range pods.Items {
			if g := pod.Spec.SchedulingGroup; g == nil || ptr.Deref(g.PodGroupName, "") != group {
				t.Fatalf("pod %s has scheduling group %+v, want PodGroup %s", pod.Name, g, group)
			}
		}
		return true, nil
	})
}
