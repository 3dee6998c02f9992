// Package catalog is nodewright's copy of the EC2 instance-type facts it uses: vCPUs,
// memory, GPUs, architecture, ENI limits, max pods, hypervisor, network bandwidth, local
// NVMe storage and the us-east-1 Linux on-demand price of every instance type.
//
// The facts live in instance-types.json, embedded with go:embed and parsed once. The file is
// generated from the shared data set (../shared/data/ec2-instance-types.json next to the
// repository) and local-nvme.txt (an extract of Karpenter's instance-type reference) by
// hack/update-catalog.sh; README.md names the upstream sources. Do not edit it
// by hand: a test fails when it differs from the generator's output.
//
// The package is a leaf: it imports only the standard library, so the provider, the emulator
// and the tools can all use it. It must not import the AWS SDK, Kubernetes or any other
// nodewright package.
package catalog
