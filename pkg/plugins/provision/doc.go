// Package provision is the Provision plugin of nodewright-scheduler (PreEnqueue, PreFilter,
// Filter, Score, PostFilter).
//
// When a pod fails Filter on every existing node, the scheduler calls PostFilter; Provision's
// job is to decide which new EC2 nodes would host the pending pods (pkg/plan, with the
// profile's own Filter plugins on template nodes), to record each decision as a NodeClaim,
// and to reserve the pods on it: PreFilter and Filter keep a reserved pod to its claim's node
// and other pods out of the room reserved there, and the pods are activated when the node
// registers (see docs/design.md, "Data flow: scale up").
//
// Where things are:
//   - postfilter.go, filter.go, enqueue.go: the scheduler's extension points; they read
//     state and trigger rounds, and write nothing but the batcher's trigger and a strand;
//   - round.go, batch.go: rounds, run off the scheduling goroutine once pods stop arriving,
//     triggered by PostFilter and by pods the scheduler marks unschedulable (PostFilter is
//     not called while the cluster has no node);
//   - hold.go (holds): PreEnqueue holds the pods no node has room for, not tried yet, until
//     their round ends and, reserved, until their node registers;
//   - write.go (claimWriter): the NodeClaims of a plan, written before any cloud call;
//   - ledger.go (Ledger): which pod is reserved on which NodeClaim, rebuilt from the claims;
//   - reserve.go (reservations): activating a claim's pods when its node registers, grace
//     retries, and which claims still hold room (a claim is settled once no pod reserved on
//     it is pending: checked when it is seen and when one of its pods binds or goes);
//   - conflict.go (conflicts): pods that must wait for a reserved pod they constrain;
//   - strand.go (strands): pods the node launched for them rejected;
//   - events.go: the informers' event handlers, which keep all of the above current;
//   - deps.go: what the parts share (the handle, options, args, ledger), set once in New.
//
// The plugin decides; it does not launch. It must not import the AWS SDK or pkg/aws: cloud
// calls go through pkg/cloud (the binary passes a cloud.Factory in Options), and launching is
// pkg/lifecycle's job, whose Manager the plugin runs alongside the scheduler, on the same
// caches of NodeClaims, Nodes and pods.
package provision
