// Package migrate converts Karpenter's objects into nodewright's: the seed's karpenter.sh/v1alpha5
// Provisioner (with an inline `provider:` or a providerRef to a karpenter.k8s.aws/v1alpha1
// AWSNodeTemplate), and karpenter.sh/v1 NodePools with karpenter.k8s.aws/v1 EC2NodeClasses,
// become nodewright.dev/v1alpha1 Provisioners and EC2NodeClasses, with Karpenter's well-known
// label keys mapped to nodewright's. It is what `nodewright migrate` runs.
//
// Karpenter's objects are read as unstructured maps, not through Karpenter's Go types, so
// nodewright does not depend on Karpenter. Every field read is removed from the map; whatever
// is left at the end, and every field read that nodewright cannot express, becomes a Warning
// with the field's path and the reason, so nothing is dropped silently. Only what is not
// configuration is left out without a warning: status, and the metadata the apiserver sets
// (uid, resourceVersion, generation, creationTimestamp, managedFields, ...).
//
// It imports pkg/apis and apimachinery only: no client, no cluster.
package migrate
