// Package provision is the Provision PostFilter plugin of nodewright-scheduler.
//
// When a pod fails Filter on every existing node, the scheduler calls PostFilter; Provision's
// job is to decide which new EC2 nodes would host the pending pods, checked with the
// profile's own Filter plugins on template nodes, to record each decision as a NodeClaim and
// to nominate the pods onto the nodes when they register (see DESIGN.md, "Data flow: scale up").
//
// The plugin decides; it does not launch. It must not import the AWS SDK or pkg/aws: cloud
// calls go through pkg/cloud, and launching is pkg/lifecycle's job.
package provision
