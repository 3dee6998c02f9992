// Package sandbox runs a local Kubernetes control plane for nodewright: a real etcd,
// kube-apiserver and kube-controller-manager, and kwok playing the kubelet of every node.
// `nodewright sandbox` and the integration tests under test/integration both use it, so the
// cluster users try nodewright on is the cluster it is tested on.
//
// The binaries are built into bin/ by `make tools` from the versions go.mod pins; this
// package only starts them (never downloads anything), waits until each is healthy, writes
// an admin kubeconfig, and stops them all on Stop. Every process runs in its own process
// group and is killed by the kernel if the process that started it dies, so neither Ctrl-C
// nor a crash leaves a process behind.
//
// It must not import the scheduler, the plugin or pkg/aws: it is the cluster, not the
// software under test.
package sandbox
