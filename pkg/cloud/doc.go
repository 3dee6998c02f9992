// Package cloud is the small interface between nodewright and a cloud: what instance types
// exist and what they cost, launch an instance for a NodeClaim, find, list and terminate
// instances, and read the interruption queue. The Provision plugin and pkg/lifecycle use it;
// pkg/aws implements it on EC2.
//
// It holds only domain types: it must not import the AWS SDK, the scheduler or client-go.
package cloud
