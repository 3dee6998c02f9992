package v1alpha1

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
)

// The resources of nodewright's objects, for the dynamic client and dynamic informers through
// which they are read and written: the project has no generated clientset.
var (
	// NodeClaimGVR is the resource of NodeClaims.
	NodeClaimGVR = SchemeGroupVersion.WithResource("nodeclaims")
	// ProvisionerGVR is the resource of Provisioners.
	ProvisionerGVR = SchemeGroupVersion.WithResource("provisioners")
	// EC2NodeClassGVR is the resource of EC2NodeClasses.
	EC2NodeClassGVR = SchemeGroupVersion.WithResource("ec2nodeclasses")
)

// FromUnstructured converts an object the dynamic client or a dynamic informer returns into
// its type T (NodeClaim, Provisioner, EC2NodeClass). The result shares nothing with u, so
// callers may change it; the error names the object's kind and name.
func FromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return out, nil
}

// CreateNodeClaim writes nc through the dynamic client and returns it as stored, with its
// generated name: how the Provision plugin writes a planned node's claim and the disruption
// controller a replacement's. The claim is written with the termination finalizer, which the
// launch would otherwise add in a write of its own before its cloud call.
func CreateNodeClaim(ctx context.Context, client dynamic.Interface, nc *NodeClaim) (*NodeClaim, error) {
	if !slices.Contains(nc.Finalizers, TerminationFinalizer) {
		nc = nc.DeepCopy()
		nc.Finalizers = append(nc.Finalizers, TerminationFinalizer)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(nc)
	if err != nil {
		return nil, fmt.Errorf("converting nodeclaim: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(SchemeGroupVersion.String())
	u.SetKind("NodeClaim")
	u, err = client.Resource(NodeClaimGVR).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating nodeclaim for provisioner %s: %w", nc.Spec.Provisioner, err)
	}
	return FromUnstructured[NodeClaim](u)
}
