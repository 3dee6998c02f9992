package aws

import (
	"context"
	"strings"
	"testing"

	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
)

func TestNewCloud(t *testing.T) {
	env := newTestEnv(t, emulator.Options{})
	base := cloud.Config{
		ClusterName: testCluster, Region: emulator.Region, Endpoint: env.emulator.URL(),
		ClusterEndpoint: "https://127.0.0.1:6443", ClusterCA: "Y2E=", ClusterCIDR: "10.96.0.0/12", KubernetesVersion: "1.37",
	}
	tests := []struct {
		name      string
		edit      func(*cloud.Config)
		wantQueue bool
		wantErr   string
	}{
		{name: "no queue configured", edit: func(*cloud.Config) {}},
		{name: "queue configured", edit: func(c *cloud.Config) { c.InterruptionQueue = emulator.DefaultQueueName }, wantQueue: true},
		{name: "cluster endpoint missing", edit: func(c *cloud.Config) { c.ClusterEndpoint = "" }, wantErr: "building the EC2 provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := base
			tt.edit(&cfg)
			provider, queue, err := NewCloud(ctx, cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewCloud() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewCloud() error = %v", err)
			}
			if got := queue != nil; got != tt.wantQueue {
				t.Errorf("queue returned = %v, want %v", got, tt.wantQueue)
			}
			// The http endpoint is called with the dummy credentials: the emulator answers.
			types, err := provider.InstanceTypes(ctx, testNodeClass(), nil)
			if err != nil {
				t.Fatalf("InstanceTypes() error = %v", err)
			}
			if len(types) == 0 {
				t.Error("InstanceTypes() returned none")
			}
		})
	}
}
