// Package v1alpha1 is nodewright's API, group nodewright.dev, version v1alpha1: the
// cluster-scoped Provisioner (which nodes may be launched, cloud-neutral), EC2NodeClass (the
// AWS parts a Provisioner references) and NodeClaim (the ledger: one per node nodewright
// decided to launch, written before any cloud call), and the well-known labels, annotations
// and condition types they share.
//
// Validation lives in the CRDs that controller-gen generates from the markers in this package
// (OpenAPI and CEL x-kubernetes-validations, so the apiserver rejects a bad object with the
// offending field's path); `make generate` writes them to manifests/crds together with
// zz_generated.deepcopy.go, and `make verify` fails when either is stale.
//
// It must import nothing of nodewright: every other package imports it.
//
// +kubebuilder:object:generate=true
// +groupName=nodewright.dev
package v1alpha1
