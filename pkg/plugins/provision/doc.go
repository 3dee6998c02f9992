// Package provision is the Provision PostFilter plugin of nodewright-scheduler.
//
// When a pod fails Filter on every existing node, the scheduler calls PostFilter; Provision's
// job is to decide which new EC2 nodes would host the pending pods (pkg/plan, with the
// profile's own Filter plugins on template nodes), to record each decision as a NodeClaim,
// and to reserve the pods on it: PreFilter and Filter keep a reserved pod to its claim's node
// and other pods out of the room reserved there, and the pods are activated when the node
// registers (see docs/design.md, "Data flow: scale up").
//
// Rounds run off the scheduling goroutine (round.go), triggered by PostFilter and by pods the
// scheduler marks unschedulable (PostFilter is not called while the cluster has no node).
// Informers on NodeClaims and Nodes keep the ledger and activate reserved pods when their
// node registers (watch.go).
//
// The plugin decides; it does not launch. It must not import the AWS SDK or pkg/aws: cloud
// calls go through pkg/cloud (the binary passes a cloud.Factory in Options), and launching is
// pkg/lifecycle's job, whose Manager the plugin runs alongside the scheduler.
package provision
