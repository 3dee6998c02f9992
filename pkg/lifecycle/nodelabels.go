package lifecycle

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
)

// plannedLabels returns the labels the Provision plugin planned nc's Node to carry
// (PlannedLabels), with its instance type as the cloud describes it. The kubelet's user data
// sets only some of them, and a pod planned onto the node selects on any of them.
//
// The instance type's labels are left out, rather than the registration failing, when the
// claim's Provisioner or EC2NodeClass is gone or no longer resolves, or the cloud no longer
// lists the type: the launch's own values are still set.
func (r *registrar) plannedLabels(ctx context.Context, nc *v1alpha1.NodeClaim) (map[string]string, error) {
	it, err := r.instanceType(ctx, nc)
	if err != nil {
		return nil, err
	}
	return PlannedLabels(nc, it), nil
}

// PlannedLabels returns the labels the Provision plugin planned nc's Node to carry, where it
// is the cloud's description of nc's instance type, nil if there is none: the labels of the
// claim's requirements on every key but v1alpha1.RestrictedLabels (v1alpha1.RequirementLabels:
// the Provisioner's labels and the values the plan chose for its other requirements on keys
// of the user's, among them), the well-known labels of it, and the instance type, zone and
// capacity type nc's status says it was launched with. The registration puts on the Node
// those it lacks.
func PlannedLabels(nc *v1alpha1.NodeClaim, it *cloud.InstanceType) map[string]string {
	labels := v1alpha1.RequirementLabels(nc.Spec.Requirements, func(key string) bool { return !v1alpha1.RestrictedLabels.Has(key) })
	if it != nil {
		maps.Copy(labels, it.Labels)
	}
	// What was launched is what the node is, whatever the requirements allowed.
	for key, value := range map[string]string{
		corev1.LabelInstanceTypeStable: nc.Status.InstanceType,
		corev1.LabelTopologyZone:       nc.Status.Zone,
		v1alpha1.LabelCapacityType:     nc.Status.CapacityType,
	} {
		if value != "" {
			labels[key] = value
		}
	}
	return labels
}

// instanceType returns the cloud's description of nc's instance type, or nil when it cannot
// be had (see plannedLabels).
func (r *registrar) instanceType(ctx context.Context, nc *v1alpha1.NodeClaim) (*cloud.InstanceType, error) {
	if nc.Status.InstanceType == "" {
		return nil, nil
	}
	logger := klog.FromContext(ctx).WithValues("nodeClaim", klog.KObj(nc))
	var kubelet *v1alpha1.KubeletConfiguration
	provisioner, err := r.objects.getProvisioner(ctx, nc.Spec.Provisioner)
	switch {
	case err == nil:
		kubelet = provisioner.Spec.Kubelet
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("getting provisioner %s: %w", nc.Spec.Provisioner, err)
	}
	nodeClass, err := r.objects.getEC2NodeClass(ctx, nc.Spec.NodeClassRef.Name)
	if apierrors.IsNotFound(err) {
		logger.V(2).Info("No node class to describe the instance type with", "nodeClass", nc.Spec.NodeClassRef.Name)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting ec2nodeclass %s: %w", nc.Spec.NodeClassRef.Name, err)
	}
	it, err := r.cloud.InstanceType(ctx, nodeClass, kubelet, nc.Status.InstanceType)
	if cloud.IsNodeClassNotReady(err) {
		logger.V(2).Info("Node class does not resolve, the node gets no instance type labels", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describing instance type %s: %w", nc.Status.InstanceType, err)
	}
	if it == nil {
		logger.V(2).Info("Instance type no longer offered, the node gets no instance type labels", "instanceType", nc.Status.InstanceType)
	}
	return it, nil
}
