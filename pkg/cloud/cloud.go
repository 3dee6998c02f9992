package cloud

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// Provider launches and terminates nodes' instances. Implementations are safe for concurrent
// use, and every method honours ctx's deadline.
type Provider interface {
	// InstanceTypes returns every instance type nodeClass can launch, sorted by name: its
	// labels, its capacity, its allocatable under kubelet (nil means the defaults), and its
	// offerings in the zones of nodeClass's subnets, each with its price and whether it can be
	// launched now (an offering that recently ran out of capacity is unavailable for a while).
	// It fails with a NodeClassNotReady error when the node class's selectors resolve to no
	// subnet or security group.
	InstanceTypes(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass, kubelet *v1alpha1.KubeletConfiguration) ([]*InstanceType, error)

	// InstanceType returns the instance type named name as InstanceTypes describes it, nil
	// if InstanceTypes has no such type, without describing the others: what a node that
	// registers is labelled with, once per node.
	InstanceType(ctx context.Context, nodeClass *v1alpha1.EC2NodeClass, kubelet *v1alpha1.KubeletConfiguration, name string) (*InstanceType, error)

	// Create launches one instance for nodeClaim: one of the instance types, zones and
	// capacity types its requirements allow, the cheapest available first, with the labels
	// (requirements with operator In and one value that are not well-known labels), taints and
	// startup taints of its spec, and kubelet's settings. It is idempotent: calling it again
	// for the same NodeClaim UID returns the instance the first call launched, never a second
	// one. It fails with an InsufficientCapacity error when no allowed offering has capacity,
	// and a NodeClassNotReady error when nodeClass cannot be resolved.
	Create(ctx context.Context, nodeClaim *v1alpha1.NodeClaim, nodeClass *v1alpha1.EC2NodeClass, kubelet *v1alpha1.KubeletConfiguration) (*Instance, error)

	// Get returns the instance with the providerID (aws:///<zone>/<instance-id>). It fails with
	// a NotFound error when the instance does not exist or has terminated.
	Get(ctx context.Context, providerID string) (*Instance, error)

	// List returns every instance of this cluster that is not terminated, whoever launched it:
	// garbage collection compares it with the NodeClaims.
	List(ctx context.Context) ([]*Instance, error)

	// Delete terminates the instance with the providerID. Deleting an instance that is
	// already terminating succeeds; once it is gone, Delete fails with a NotFound error, so
	// callers can tell "done" from "in progress".
	Delete(ctx context.Context, providerID string) error
}

// InterruptionQueue reports that the cloud is about to take instances away.
type InterruptionQueue interface {
	// Receive waits up to a short poll interval for messages and returns them; it returns an
	// empty slice, not an error, when there are none. Messages it cannot parse are returned
	// with Kind InterruptionUnknown so they can be deleted rather than redelivered forever.
	Receive(ctx context.Context) ([]InterruptionMessage, error)
	// Delete removes a handled message from the queue.
	Delete(ctx context.Context, msg InterruptionMessage) error
}

// InstanceType is a kind of machine the cloud offers.
type InstanceType struct {
	// Name is the cloud's name, e.g. m5.large.
	Name string
	// Labels are the values of the well-known labels (v1alpha1.WellKnownLabels) that a node of
	// this type carries whatever its offering: arch, os, family, size, cpu, memory, GPU,
	// category, generation, hypervisor, network bandwidth, local NVMe. Zone and capacity type
	// come from the Offering.
	Labels map[string]string
	// Capacity is what the node reports as capacity: cpu, memory, pods, GPUs.
	Capacity corev1.ResourceList
	// Overhead is what the kubelet holds back; Allocatable is Capacity minus Overhead.
	Overhead Overhead
	// Offerings are the zone and capacity type combinations it can be launched in.
	Offerings []Offering
	// NodeCost is what a node of this type costs besides its instance, whatever its
	// offering, in USD per hour: on AWS, the EBS volumes its node class gives it.
	NodeCost float64
	// SurplusCPUPrice, for a burstable type, is what each core used above BaselineCPU, the
	// cores it sustains, costs in USD per hour (on AWS, unlimited mode's surplus credits);
	// 0 for other types.
	BaselineCPU, SurplusCPUPrice float64
}

// SurplusCost is what a node of it pays per hour, beyond its price, for cpu cores requested on
// it (by all its pods, DaemonSet pods too): the cores above BaselineCPU at SurplusCPUPrice; 0
// for a type that is not burstable.
func (it *InstanceType) SurplusCost(cpu float64) float64 {
	return it.SurplusCPUPrice * max(0, cpu-it.BaselineCPU)
}

// Overhead is the part of a node's capacity that pods cannot request.
type Overhead struct {
	KubeReserved      corev1.ResourceList
	SystemReserved    corev1.ResourceList
	EvictionThreshold corev1.ResourceList
}

// Total is the sum of the overhead's parts.
func (o Overhead) Total() corev1.ResourceList {
	total := corev1.ResourceList{}
	for _, list := range []corev1.ResourceList{o.KubeReserved, o.SystemReserved, o.EvictionThreshold} {
		for name, q := range list {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
	}
	return total
}

// Allocatable is what pods on a node of this type can request: Capacity minus Overhead,
// never negative.
func (it *InstanceType) Allocatable() corev1.ResourceList {
	out := corev1.ResourceList{}
	overhead := it.Overhead.Total()
	for name, q := range it.Capacity {
		q = q.DeepCopy()
		if o, ok := overhead[name]; ok {
			q.Sub(o)
		}
		if q.Sign() < 0 {
			q = resource.Quantity{Format: q.Format}
		}
		out[name] = q
	}
	return out
}

// Offering is an instance type in one zone with one capacity type.
type Offering struct {
	Zone string
	// CapacityType is v1alpha1.CapacityTypeSpot or v1alpha1.CapacityTypeOnDemand.
	CapacityType string
	// Price is the hourly price in USD.
	Price float64
	// Available is false while the cloud has reported no capacity for it.
	Available bool
}

// Instance is a launched machine.
type Instance struct {
	// ProviderID is the Node's spec.providerID: aws:///<zone>/<instance-id>.
	ProviderID string
	// ID is the cloud's instance ID, e.g. i-0123456789abcdef0.
	ID           string
	InstanceType string
	Zone         string
	CapacityType string
	ImageID      string
	// NodeName is the name the node registers with (the private DNS name on EC2).
	NodeName string
	// State is the cloud's lifecycle state: pending, running, shutting-down, ...
	State      string
	LaunchTime time.Time
	// NodeClaim and Provisioner are the names the instance was tagged with at launch.
	NodeClaim   string
	Provisioner string
}

// InterruptionKind says what an interruption message announces.
type InterruptionKind string

// Interruption kinds.
const (
	// InterruptionSpot is a spot interruption warning: the instance goes in two minutes.
	InterruptionSpot InterruptionKind = "SpotInterruption"
	// InterruptionRebalance is a rebalance recommendation: the instance is at elevated risk.
	InterruptionRebalance InterruptionKind = "RebalanceRecommendation"
	// InterruptionScheduledChange is a scheduled maintenance event for the instance.
	InterruptionScheduledChange InterruptionKind = "ScheduledChange"
	// InterruptionStateChange is an instance state change (stopping, terminated, ...).
	InterruptionStateChange InterruptionKind = "StateChange"
	// InterruptionUnknown is a message that could not be parsed.
	InterruptionUnknown InterruptionKind = "Unknown"
)

// InterruptionMessage is one message of the interruption queue.
type InterruptionMessage struct {
	Kind InterruptionKind
	// InstanceIDs are the instances the message is about.
	InstanceIDs []string
	// State is the new state of an InterruptionStateChange.
	State string
	// Time is when the event happened.
	Time time.Time
	// Handle is the queue's receipt handle, for Delete.
	Handle string
}
