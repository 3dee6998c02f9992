// Package lifecycle acts on the NodeClaims the Provision plugin writes and on the Nodes they
// become: it launches their instances, follows each Node through registration and
// initialization, deletes nodes that stay empty or grow too old, drains and terminates nodes
// being deleted, garbage-collects instances and NodeClaims that lost each other, and reacts
// to the cloud's interruption warnings. Only the replica holding the lifecycle's Lease acts.
//
// Its controllers are driven by shared informers and work queues; each reconcile function
// reads what it needs through the API clients and an injected clock, so it can be unit-tested
// with fake clientsets, pkg/cloud/fake and a fake clock.
//
// It talks to the cloud only through pkg/cloud: it must not import the AWS SDK, pkg/aws or
// the scheduler (pkg/plugins, k8s.io/kubernetes/pkg/scheduler).
package lifecycle
