package lifecycle

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// The resources of nodewright's objects, read and written through the dynamic client since
// the project has no generated clientset.
var (
	nodeClaimGVR    = v1alpha1.SchemeGroupVersion.WithResource("nodeclaims")
	provisionerGVR  = v1alpha1.SchemeGroupVersion.WithResource("provisioners")
	ec2NodeClassGVR = v1alpha1.SchemeGroupVersion.WithResource("ec2nodeclasses")
)

// listKinds maps nodewright's resources to their list kinds, as the fake dynamic client and
// dynamic informers need them.
var listKinds = map[schema.GroupVersionResource]string{
	nodeClaimGVR:    "NodeClaimList",
	provisionerGVR:  "ProvisionerList",
	ec2NodeClassGVR: "EC2NodeClassList",
}

// objects is a small typed client for NodeClaims, Provisioners and EC2NodeClasses over the
// dynamic client. All three are cluster-scoped.
type objects struct {
	client dynamic.Interface
}

func (o objects) getNodeClaim(ctx context.Context, name string) (*v1alpha1.NodeClaim, error) {
	u, err := o.client.Resource(nodeClaimGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured[v1alpha1.NodeClaim](u)
}

func (o objects) listNodeClaims(ctx context.Context) ([]*v1alpha1.NodeClaim, error) {
	list, err := o.client.Resource(nodeClaimGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodeclaims: %w", err)
	}
	out := make([]*v1alpha1.NodeClaim, 0, len(list.Items))
	for i := range list.Items {
		nc, err := fromUnstructured[v1alpha1.NodeClaim](&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, nc)
	}
	return out, nil
}

// updateNodeClaim writes nodeClaim's metadata and spec; the resourceVersion guards against
// overwriting a concurrent change.
func (o objects) updateNodeClaim(ctx context.Context, nodeClaim *v1alpha1.NodeClaim) (*v1alpha1.NodeClaim, error) {
	u, err := toUnstructured(nodeClaim, "NodeClaim")
	if err != nil {
		return nil, err
	}
	u, err = o.client.Resource(nodeClaimGVR).Update(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating nodeclaim %s: %w", nodeClaim.Name, err)
	}
	return fromUnstructured[v1alpha1.NodeClaim](u)
}

// updateNodeClaimStatus writes nodeClaim's status subresource.
func (o objects) updateNodeClaimStatus(ctx context.Context, nodeClaim *v1alpha1.NodeClaim) (*v1alpha1.NodeClaim, error) {
	u, err := toUnstructured(nodeClaim, "NodeClaim")
	if err != nil {
		return nil, err
	}
	u, err = o.client.Resource(nodeClaimGVR).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating status of nodeclaim %s: %w", nodeClaim.Name, err)
	}
	return fromUnstructured[v1alpha1.NodeClaim](u)
}

// deleteNodeClaim deletes the NodeClaim; one that is already gone counts as deleted.
func (o objects) deleteNodeClaim(ctx context.Context, name string) error {
	err := o.client.Resource(nodeClaimGVR).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting nodeclaim %s: %w", name, err)
	}
	return nil
}

func (o objects) getProvisioner(ctx context.Context, name string) (*v1alpha1.Provisioner, error) {
	u, err := o.client.Resource(provisionerGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured[v1alpha1.Provisioner](u)
}

func (o objects) getEC2NodeClass(ctx context.Context, name string) (*v1alpha1.EC2NodeClass, error) {
	u, err := o.client.Resource(ec2NodeClassGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured[v1alpha1.EC2NodeClass](u)
}

// nodeClaimForProviderID returns the NodeClaim whose status.providerID is providerID, or nil.
func (o objects) nodeClaimForProviderID(ctx context.Context, providerID string) (*v1alpha1.NodeClaim, error) {
	claims, err := o.listNodeClaims(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(claims, func(nc *v1alpha1.NodeClaim) bool { return nc.Status.ProviderID == providerID })
	if i < 0 {
		return nil, nil
	}
	return claims[i], nil
}

func fromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return out, nil
}

func toUnstructured(obj runtime.Object, kind string) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.SchemeGroupVersion.String())
	u.SetKind(kind)
	return u, nil
}
