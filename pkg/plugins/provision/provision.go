package provision

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
)

// Name is the plugin's name in the scheduler's registry and in KubeSchedulerConfiguration.
const Name = "Provision"

// Provision is the PostFilter plugin that will provision nodes for pods no existing node can
// host.
//
// In this version it registers, reads and validates its arguments, and provisions nothing:
// PostFilter reports every pod it sees as unschedulable, so the pod waits in the queue as it
// would without the plugin. Planning, NodeClaims and nomination come with the provisioning
// work (see DESIGN.md).
type Provision struct {
	args   *Args
	handle fwk.Handle
}

var _ fwk.PostFilterPlugin = &Provision{}

// New builds the plugin from its pluginConfig args. Invalid args are an error naming the
// field, which makes the scheduler exit at start-up rather than run misconfigured.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := decodeArgs(obj)
	if err != nil {
		return nil, err
	}
	args.SetDefaults()
	if errs := args.Validate(); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	klog.FromContext(ctx).V(2).Info("Provision plugin configured",
		"clusterName", args.ClusterName, "region", args.Region, "endpoint", args.Endpoint,
		"batchIdleDuration", args.BatchIdleDuration.Duration, "batchMaxDuration", args.BatchMaxDuration.Duration)
	return &Provision{args: args, handle: h}, nil
}

// Name returns the plugin's name.
func (p *Provision) Name() string { return Name }

// PostFilter is called when the pod fits no existing node. Provisioning is not built yet, so
// it leaves the pod unschedulable and says so in the status the scheduler records.
func (p *Provision) PostFilter(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, _ fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	klog.FromContext(ctx).V(4).Info("Pod fits no existing node; provisioning is not enabled in this build", "pod", klog.KObj(pod))
	return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: node provisioning is not enabled in this build", Name))
}
