package cloud

import "context"

// Config is what a cloud needs to know about the cluster to launch its nodes: where its API
// is, which cluster the nodes join and how they reach it. The Provision plugin fills it from
// its args and hands it to a Factory.
type Config struct {
	// ClusterName names the cluster: instances are tagged with it, and garbage collection
	// finds this cluster's instances by it.
	ClusterName string
	// Region is the cloud region nodes are launched in, e.g. us-east-1.
	Region string
	// Endpoint, when set, overrides the cloud API's endpoint, e.g. an emulator's URL. Empty
	// means the cloud's real endpoints for Region.
	Endpoint string
	// ClusterEndpoint is the kube-apiserver's https URL that new nodes join.
	ClusterEndpoint string
	// ClusterCA is the cluster's certificate authority as base64-encoded PEM, which new nodes
	// trust the kube-apiserver with.
	ClusterCA string
	// ClusterCIDR is the cluster's service CIDR, from which nodes derive the cluster DNS
	// address.
	ClusterCIDR string
	// KubernetesVersion is the control plane's "1.minor" version, e.g. "1.37", which selects
	// the node images.
	KubernetesVersion string
	// InterruptionQueue names the queue of interruption events. Empty disables interruption
	// handling.
	InterruptionQueue string
}

// Factory builds a cloud from cfg: the Provider, and the InterruptionQueue, which is nil when
// cfg.InterruptionQueue is empty. Background work the cloud needs (e.g. refreshing prices)
// runs until ctx ends. It lets callers that must not import a cloud's SDK (the Provision
// plugin) be given one by the binary's wiring.
type Factory func(ctx context.Context, cfg Config) (Provider, InterruptionQueue, error)
