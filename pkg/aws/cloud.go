package aws

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/nodewright/nodewright/pkg/cloud"
)

var _ cloud.Factory = NewCloud

// NewCloud builds the EC2 cloud of cfg: the SDK clients (with cfg.Endpoint overriding AWS's
// endpoints), the Provider, whose prices it refreshes in the background until ctx ends, and,
// when cfg.InterruptionQueue names one, the SQS interruption queue.
//
// An endpoint with the http scheme is an emulator (every AWS endpoint is https): its
// requests are signed with fixed dummy credentials rather than by the default credential
// chain, which would otherwise look for an instance profile off the machine.
func NewCloud(ctx context.Context, cfg cloud.Config) (cloud.Provider, cloud.InterruptionQueue, error) {
	opts := ClientOptions{Region: cfg.Region, Endpoint: cfg.Endpoint}
	if u, err := url.Parse(cfg.Endpoint); cfg.Endpoint != "" && err == nil && u.Scheme == "http" {
		opts.Credentials = credentials.NewStaticCredentialsProvider("anonymous", "anonymous", "")
	}
	clients, err := NewClients(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("building AWS clients: %w", err)
	}
	provider, err := New(Options{
		Clients:           clients,
		ClusterName:       cfg.ClusterName,
		ClusterEndpoint:   cfg.ClusterEndpoint,
		ClusterCA:         cfg.ClusterCA,
		ClusterCIDR:       cfg.ClusterCIDR,
		KubernetesVersion: cfg.KubernetesVersion,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("building the EC2 provider: %w", err)
	}
	var queue cloud.InterruptionQueue
	if cfg.InterruptionQueue != "" {
		q, err := NewInterruptionQueue(InterruptionQueueOptions{SQS: clients.SQS, QueueName: cfg.InterruptionQueue})
		if err != nil {
			return nil, nil, fmt.Errorf("building the interruption queue: %w", err)
		}
		queue = q
	}
	go provider.Pricing().Start(ctx)
	return provider, queue, nil
}
