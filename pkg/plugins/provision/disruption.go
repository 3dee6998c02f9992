package provision

import (
	"context"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/disruption"
	"github.com/nodewright/nodewright/pkg/plan"
)

// disruptionController returns the disruption controller (pkg/disruption), which the
// lifecycle runs while it leads: it decides with the plan this plugin's rounds make
// (planInput: the profile's own Filter plugins, out-of-tree ones included, the in-flight
// claims and the ledger's usage), and keeps to the budgets through gate, with the
// lifecycle's emptiness and expiry.
func (p *Provision) disruptionController(gate *disruption.Gate) (*disruption.Controller, error) {
	informers := p.handle.SharedInformerFactory()
	pdbs := informers.Policy().V1().PodDisruptionBudgets()
	// Registered now so that the scheduler starts it with its own informers.
	pdbs.Informer()
	return disruption.NewController(disruption.Options{
		Kube:     p.handle.ClientSet(),
		Recorder: p.handle.EventRecorder(),
		Dynamic:  p.opts.Dynamic,
		Clock:    p.opts.Clock,
		Gate:     gate,
		Input: func(ctx context.Context) (*plan.Input, error) {
			return p.planInput(ctx, p.pendingPods(klog.FromContext(ctx)))
		},
		Claims: p.allClaims,
		PDBs:   func() ([]*policyv1.PodDisruptionBudget, error) { return pdbs.Lister().List(labels.Everything()) },
		Classes: func(ctx context.Context) ([]*v1alpha1.EC2NodeClass, error) {
			return listTyped[v1alpha1.EC2NodeClass](ctx, p, v1alpha1.EC2NodeClassGVR)
		},
		Interval:        p.args.DisruptionInterval.Duration,
		ValidationDelay: p.args.DisruptionValidationDelay.Duration,
	})
}

// allClaims returns every NodeClaim in the cache, those being deleted too (the ledger
// forgets those).
func (p *Provision) allClaims() []*v1alpha1.NodeClaim {
	if p.claimStore == nil {
		return nil
	}
	var out []*v1alpha1.NodeClaim
	for _, obj := range p.claimStore.List() {
		if nc, ok := toNodeClaim(obj); ok {
			out = append(out, nc)
		}
	}
	return out
}
