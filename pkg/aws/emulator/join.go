package emulator

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

// defaultRootVolumeGiB is the ephemeral storage of a node whose launch template maps no volume.
const defaultRootVolumeGiB = 20

// gpuResources are the extended resources the device plugins of each GPU maker advertise.
var gpuResources = map[string]corev1.ResourceName{
	"nvidia": "nvidia.com/gpu",
	"amd":    "amd.com/gpu",
	"habana": "habana.ai/gaudi",
}

// joinLoop registers a Node for every instance that has been running for its join delay
// (Options.JoinDelay plus its jitter), until Close.
func (e *Emulator) joinLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stop
		cancel()
	}()
	ticker := e.clock.NewTicker(e.opts.JoinPollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-ticker.C():
			e.joinDue(ctx)
		}
	}
}

// pendingJoin is a Node to create for an instance.
type pendingJoin struct {
	instanceID string
	node       *corev1.Node
}

// maxConcurrentJoins is how many Nodes joinDue creates at once. Every instance has a kubelet
// of its own that registers its Node when it boots, at the same time as the others: 200
// instances launched in a burst register within a second, not one create after another (on
// a busy apiserver that took 16 s for 200).
const maxConcurrentJoins = 32

// joinDue creates the Nodes of the instances due to join, maxConcurrentJoins at a time. A
// failed create is retried on the next tick; user data the kubelet would reject marks the
// instance as never joining.
func (e *Emulator) joinDue(ctx context.Context) {
	log := e.log.WithName("join")
	e.mu.Lock()
	now := e.now()
	var due []pendingJoin
	for _, inst := range e.state.visibleInstances(now, e.opts) {
		if inst.NeverJoin || inst.NodeName != "" || inst.JoinError != "" || inst.state(now, e.opts) != StateRunning ||
			now.Before(inst.runningAt.Add(inst.joinDelay)) {
			continue
		}
		node, err := nodeFor(inst)
		if err != nil {
			inst.JoinError = err.Error()
			log.V(2).Info("Instance cannot join", "instance", inst.ID, "err", err)
			continue
		}
		node.Spec.Taints = append(node.Spec.Taints, e.state.faults.joinTaints...)
		due = append(due, pendingJoin{instanceID: inst.ID, node: node})
	}
	e.mu.Unlock()

	slots := make(chan struct{}, maxConcurrentJoins)
	var wg sync.WaitGroup
	for _, j := range due {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			name, err := e.register(ctx, j.node)
			if err != nil {
				log.Error(err, "Registering node", "instance", j.instanceID, "node", j.node.Name)
				return
			}
			e.mu.Lock()
			if inst, ok := e.state.instances[j.instanceID]; ok {
				inst.NodeName = name
			}
			e.mu.Unlock()
			log.V(2).Info("Registered node", "instance", j.instanceID, "node", name)
		})
	}
	wg.Wait()
}

// register creates the Node, or adopts one of the same name and providerID, as a restarting
// kubelet does.
func (e *Emulator) register(ctx context.Context, node *corev1.Node) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := e.kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, getErr := e.kube.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if getErr != nil {
			return "", fmt.Errorf("reading the existing node %s: %w", node.Name, getErr)
		}
		if existing.Spec.ProviderID != node.Spec.ProviderID {
			return "", fmt.Errorf("node %s exists with providerID %q, not %q", node.Name, existing.Spec.ProviderID, node.Spec.ProviderID)
		}
		return node.Name, nil
	}
	if err != nil {
		return "", fmt.Errorf("creating node %s: %w", node.Name, err)
	}
	return node.Name, nil
}

// nodeFor builds the Node the instance's kubelet registers: named after the private DNS name,
// with the providerID, the well-known labels, the labels and taints of the user data, and
// capacity from the catalog. Callers hold e.mu.
func nodeFor(inst *instance) (*corev1.Node, error) {
	it, ok := catalog.Get(inst.InstanceType)
	if !ok {
		return nil, fmt.Errorf("instance type %s is not in the catalog", inst.InstanceType)
	}
	reg, err := parseUserData(inst.UserData)
	if err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	name := inst.PrivateDNSName
	// The kubelet sets hostname, os and arch; --node-labels may override them; the cloud
	// provider then sets the instance type and topology labels.
	labels := map[string]string{
		corev1.LabelHostname:   name,
		corev1.LabelOSStable:   "linux",
		corev1.LabelArchStable: it.Architecture,
	}
	maps.Copy(labels, reg.labels)
	labels[corev1.LabelInstanceTypeStable] = it.Name
	labels[corev1.LabelTopologyZone] = inst.Zone
	labels[corev1.LabelTopologyRegion] = Region

	capacity := nodeCapacity(it, inst, reg)
	allocatable := nodeAllocatable(capacity, reg)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{ProviderID: ProviderID(inst.Zone, inst.ID), Taints: reg.taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: inst.PrivateIP},
				{Type: corev1.NodeHostName, Address: name},
				{Type: corev1.NodeInternalDNS, Address: name},
			},
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:    it.Architecture,
				OperatingSystem: "linux",
				OSImage:         osImage(inst),
				SystemUUID:      strings.TrimPrefix(inst.ID, "i-"),
			},
		},
	}, nil
}

func osImage(inst *instance) string {
	if strings.Contains(inst.UserData, nodeConfigContentType) || strings.Contains(inst.UserData, "NodeConfig") {
		return "Amazon Linux 2023"
	}
	return ""
}

// nodeCapacity is the catalog's vCPUs, memory and max pods (or the kubelet's maxPods), the
// root volume as ephemeral storage, and the GPUs as their device plugin's extended resource.
func nodeCapacity(it catalog.InstanceType, inst *instance, reg *registration) corev1.ResourceList {
	pods := it.MaxPods
	if reg.maxPods > 0 {
		pods = reg.maxPods
	}
	rootGiB := defaultRootVolumeGiB
	if inst.launchTemplate != nil && len(inst.launchTemplate.BlockDeviceMappings) > 0 && inst.launchTemplate.BlockDeviceMappings[0].VolumeSizeGiB > 0 {
		rootGiB = inst.launchTemplate.BlockDeviceMappings[0].VolumeSizeGiB
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(it.VCPU), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(it.MemoryMiB*1024*1024, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(pods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(rootGiB)*1024*1024*1024, resource.BinarySI),
	}
	if gpu, ok := gpuResources[it.GPUManufacturer]; ok && it.GPU > 0 {
		capacity[gpu] = *resource.NewQuantity(int64(it.GPU), resource.DecimalSI)
	}
	return capacity
}

// nodeAllocatable is capacity minus kube-reserved, system-reserved and the hard eviction
// thresholds for memory.available and nodefs.available, as the kubelet computes it; without
// them in the user data it equals capacity.
func nodeAllocatable(capacity corev1.ResourceList, reg *registration) corev1.ResourceList {
	allocatable := capacity.DeepCopy()
	subtract := func(name corev1.ResourceName, q resource.Quantity) {
		v, ok := allocatable[name]
		if !ok {
			return
		}
		v.Sub(q)
		if v.Sign() < 0 {
			v = *resource.NewQuantity(0, v.Format)
		}
		allocatable[name] = v
	}
	for _, reserved := range []corev1.ResourceList{reg.kubeReserved, reg.systemReserved} {
		for name, q := range reserved {
			subtract(name, q)
		}
	}
	for signal, res := range map[string]corev1.ResourceName{"memory.available": corev1.ResourceMemory, "nodefs.available": corev1.ResourceEphemeralStorage} {
		threshold, ok := reg.evictionHard[signal]
		if !ok {
			continue
		}
		if pct, isPct := strings.CutSuffix(threshold, "%"); isPct {
			if f, err := strconv.ParseFloat(pct, 64); err == nil {
				c := capacity[res]
				subtract(res, *resource.NewQuantity(int64(float64(c.Value())*f/100), resource.BinarySI))
			}
			continue
		}
		if q, err := resource.ParseQuantity(threshold); err == nil {
			subtract(res, q)
		}
	}
	return allocatable
}
