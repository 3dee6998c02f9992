package emulator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

// stateCodes are EC2's numeric instance state codes.
var stateCodes = map[string]int{StatePending: 0, StateRunning: 16, StateShuttingDown: 32, StateTerminated: 48}

// Instance is a snapshot of an emulated EC2 instance, as Instances returns it.
type Instance struct {
	ID           string
	InstanceType string
	Zone         string
	SubnetID     string
	ImageID      string
	// CapacityType is CapacityTypeSpot or CapacityTypeOnDemand.
	CapacityType string
	// State is the state now: StatePending, StateRunning, StateShuttingDown or StateTerminated.
	State          string
	PrivateIP      string
	PrivateDNSName string
	LaunchTime     time.Time
	Tags           map[string]string
	// SecurityGroupIDs are the groups of the instance's network interface.
	SecurityGroupIDs []string
	// LaunchTemplateID and LaunchTemplateName name the template it was launched from.
	LaunchTemplateID   string
	LaunchTemplateName string
	// UserData is the decoded user data of the launch template.
	UserData string
	// MetadataOptions are the launch template's instance metadata options.
	MetadataOptions MetadataOptions
	FleetID         string
	ClientToken     string
	// NeverJoin is true when a fault keeps the instance from ever registering a Node.
	NeverJoin bool
	// NodeName is the Node the emulator registered for the instance, once it has.
	NodeName string
	// JoinError says why the instance cannot join, e.g. user data the kubelet would reject.
	JoinError string
}

// instance is the emulator's record of an instance. Its state is a function of the clock:
// pending until runningAt, running until terminateAt, shutting-down for TerminateLatency,
// then terminated.
type instance struct {
	Instance
	reservationID  string
	launchTemplate *launchTemplate
	runningAt      time.Time
	joinDelay      time.Duration // from running to the Node's creation, jitter included
	terminateAt    time.Time     // zero while no termination is scheduled
	stateReason    string
	interrupted    bool
}

func (i *instance) state(now time.Time, o Options) string {
	if !i.terminateAt.IsZero() && !now.Before(i.terminateAt) {
		if now.Before(i.terminateAt.Add(o.TerminateLatency)) {
			return StateShuttingDown
		}
		return StateTerminated
	}
	if now.Before(i.runningAt) {
		return StatePending
	}
	return StateRunning
}

// gone reports whether the instance is past its terminated retention: EC2 no longer knows it.
func (i *instance) gone(now time.Time, o Options) bool {
	return !i.terminateAt.IsZero() && !now.Before(i.terminateAt.Add(o.TerminateLatency+o.TerminatedRetention))
}

// terminate starts shutting the instance down at the latest at `at`.
func (i *instance) terminate(at time.Time, reason string) {
	if i.terminateAt.IsZero() || at.Before(i.terminateAt) {
		i.terminateAt = at
		i.stateReason = reason
	}
}

func (i *instance) snapshot(now time.Time, o Options) Instance {
	out := i.Instance
	out.State = i.state(now, o)
	out.Tags = maps.Clone(i.Tags)
	out.SecurityGroupIDs = slices.Clone(i.SecurityGroupIDs)
	return out
}

// Instances returns every instance EC2 still shows (terminated ones for
// Options.TerminatedRetention), in launch order.
func (e *Emulator) Instances() []Instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var out []Instance
	for _, inst := range e.state.visibleInstances(now, e.opts) {
		out = append(out, inst.snapshot(now, e.opts))
	}
	return out
}

// Instance returns the instance with the given ID, and whether EC2 still shows it.
func (e *Emulator) Instance(id string) (Instance, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.state.visibleInstances(now, e.opts)
	inst, ok := e.state.instances[id]
	if !ok {
		return Instance{}, false
	}
	return inst.snapshot(now, e.opts), true
}

// newInstanceID draws an instance ID. Callers hold e.mu.
func (e *Emulator) newID(prefix string) string {
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 17)
	for i := range b {
		b[i] = hexDigits[e.rand.IntN(16)]
	}
	return prefix + string(b)
}

// allocateIP draws a free private address in the subnet: one no instance of this emulator
// ever had, so that a new instance never takes the name of an old Node, or else one no live
// instance holds. Callers hold e.mu.
func (e *Emulator) allocateIP(sn *subnetState, now time.Time) (string, error) {
	n := sn.addressCount()
	// AWS reserves the first four addresses and the last one of every subnet.
	usable := n - 5
	start := e.rand.IntN(usable)
	live := map[string]bool{}
	for _, inst := range e.state.instances {
		if inst.state(now, e.opts) != StateTerminated {
			live[inst.PrivateIP] = true
		}
	}
	var reusable string
	for k := range usable {
		addr := sn.address(4 + (start+k)%usable).String()
		if !e.state.usedIPs[addr] {
			e.state.usedIPs[addr] = true
			return addr, nil
		}
		if reusable == "" && !live[addr] {
			reusable = addr
		}
	}
	if reusable == "" {
		return "", fmt.Errorf("subnet %s has no free address", sn.ID)
	}
	return reusable, nil
}

// privateDNSName is EC2's private DNS name for an address in us-east-1.
func privateDNSName(ip string) string {
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + ".ec2.internal"
}

// ProviderID returns the Kubernetes providerID of an instance: aws:///<zone>/<instance-id>.
func ProviderID(zone, instanceID string) string {
	return "aws:///" + zone + "/" + instanceID
}
