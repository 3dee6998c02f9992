package lifecycle

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// orphans deletes the NodeClaims of Provisioners that are gone, as Karpenter removes the
// nodes of a deleted NodePool: a Provisioner's nodes go with it, empty or not, launched or
// not. Deleting a claim deletes its Node, which termination cordons and drains through the
// Eviction API (PodDisruptionBudgets respected) before it terminates the instance; a claim
// still launching has nothing to drain. Its keys are Provisioner names.
type orphans struct {
	*deps
}

// reconcile deletes every NodeClaim of the Provisioner named name if that Provisioner does
// not exist.
func (o *orphans) reconcile(ctx context.Context, name string) (time.Duration, error) {
	if _, err := o.objects.getProvisioner(ctx, name); !apierrors.IsNotFound(err) {
		return 0, err // it exists, or reading it failed
	}
	all, err := o.objects.listNodeClaims(ctx)
	if err != nil {
		return 0, err
	}
	var orphaned []*v1alpha1.NodeClaim
	for _, nc := range all {
		if nc.Spec.Provisioner == name && nc.DeletionTimestamp == nil {
			orphaned = append(orphaned, nc)
		}
	}
	if len(orphaned) == 0 {
		return 0, nil
	}
	// The cache may not have seen a Provisioner created a moment ago, whose first claims the
	// Provision plugin has just written: ask the API before deleting anything.
	if _, err := o.objects.client.Resource(v1alpha1.ProvisionerGVR).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		if err != nil {
			return 0, fmt.Errorf("getting provisioner %s: %w", name, err)
		}
		return 0, nil
	}
	logger := klog.FromContext(ctx)
	for _, nc := range orphaned {
		logger.Info("Deleting nodeclaim of a deleted provisioner", "nodeClaim", klog.KObj(nc), "provisioner", name, "node", nc.Status.NodeName)
		o.recorder.Eventf(nc, nil, corev1.EventTypeNormal, eventProvisionerDeleted, actionDelete, "Provisioner %s was deleted", name)
		nodeClaimsTerminated.WithLabelValues(append(claimLabelValues(nc), reasonProvisionerDeleted)...).Inc()
		if err := o.objects.deleteNodeClaim(ctx, nc.Name); err != nil {
			return 0, err
		}
	}
	return 0, nil
}
