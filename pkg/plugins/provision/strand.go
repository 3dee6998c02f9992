package provision

import (
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan"
)

// A pod is stranded when the node launched for it rejects it: its reservation's grace ran out
// with the scheduler's filters still turning it away from its claim's node (PostFilter). That
// breaks nodewright's promise, and planning the pod again the same way would launch the same
// mismatch again (a label the plan counted on and the node never got, a taint a DaemonSet's
// operator adds): so nodewright reports it, and holds the pod back.
const (
	// MaxStrands is how many times a pod may be stranded before nodewright stops planning
	// nodes for it: one launch, and at most one more of another shape.
	MaxStrands = 2
	// StrandBackoff is how long a stranded pod waits before it is planned again.
	StrandBackoff = time.Minute
	// StrandMemory is how long a strand counts. Past it, or once the Provisioner the pod was
	// stranded on changes (its generation), the pod is planned as if it never was: what
	// turned it away may have been fixed.
	StrandMemory = 30 * time.Minute
)

// strands are the pods stranded on nodes launched for them, by pod UID: what PostFilter and
// the rounds hold back and the shapes the plans avoid.
type strands struct {
	*deps
	mu sync.Mutex
	m  map[types.UID]*strand
}

func newStrands(d *deps) *strands { return &strands{deps: d, m: map[types.UID]*strand{}} }

// strand is what nodewright remembers of the strands of one pod.
type strand struct {
	count int
	last  time.Time
	// shapes are the shapes (see Template.Shape) of the nodes that rejected the pod: it is not
	// planned onto them again.
	shapes sets.Set[string]
	// namespace and name are the pod's, for prune.
	namespace, name string
	// provisioner is the Provisioner of the last strand, and generation its UID and
	// generation as the first round after the strand saw it ("" until then).
	provisioner, generation string
	// reason is the last rejection, as `NodeAffinity: node(s) didn't match ...`.
	reason string
}

// strandRelease records that pod, reserved on claim, was rejected by claim's node nodeName
// for as long as its reservation's grace (Args.ReservationGrace): it logs the mismatch at error level with the filter that
// failed, tells the pod in a Stranded event, counts it, and schedules the pod's next try for
// when its backoff ends.
func (ss *strands) strandRelease(logger klog.Logger, pod *v1.Pod, claim, nodeName string, statuses fwk.NodeToStatusReader) {
	plugin, reason := "unknown", "the scheduler gave no reason"
	if statuses != nil {
		if st := statuses.Get(nodeName); st != nil && !st.IsSuccess() {
			plugin, reason = st.Plugin(), strings.Join(st.Reasons(), ", ")
			if plugin == "" {
				plugin = "unknown"
			}
		}
	}
	var shape, provisioner string
	if nc, ok := ss.ledger.Claim(claim); ok {
		shape = plan.ShapeKey(nc.Spec.Provisioner, nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType)
		provisioner = nc.Spec.Provisioner
	}
	now := ss.opts.Clock.Now()
	ss.mu.Lock()
	s := ss.m[pod.UID]
	if s == nil || now.Sub(s.last) > StrandMemory {
		s = &strand{shapes: sets.New[string](), namespace: pod.Namespace, name: pod.Name}
		ss.m[pod.UID] = s
	}
	s.count++
	s.last = now
	s.shapes.Insert(shape)
	if s.provisioner != provisioner {
		s.provisioner, s.generation = provisioner, ""
	}
	s.reason = plugin + ": " + reason
	count := s.count
	ss.mu.Unlock()

	podsStranded.WithLabelValues(provisioner, plugin).Inc()
	logger.Error(nil, "Pod stranded: the node launched for it rejects it", "pod", klog.KObj(pod), "nodeClaim", claim,
		"node", nodeName, "shape", shape, "plugin", plugin, "reason", reason, "strands", count)
	next := fmt.Sprintf("planning it again in %s, not onto %s", StrandBackoff, shape)
	if count >= MaxStrands {
		next = fmt.Sprintf("stranded %d times: no node is planned for it until provisioner %s changes or %s pass", count, provisioner, StrandMemory)
	}
	ss.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "Stranded", "Provisioning",
		"%s: node %s of nodeclaim %s, launched for this pod, rejects it (%s: %s) %s after it registered; %s",
		Name, nodeName, claim, plugin, reason, ss.reservationGrace(), next)
	if count < MaxStrands {
		ss.afterFunc(StrandBackoff+time.Second, func() { ss.activatePods(logger, []*v1.Pod{pod}) })
	}
}

// strandHold returns why pod is not planned now, if it is held back by its strands: within
// StrandBackoff of its last, or stranded MaxStrands times (within StrandMemory, on a
// Provisioner that has not changed since). generations are the Provisioners' UIDs and
// generations, by name, when a round asks; PostFilter passes nil and judges by time alone.
func (ss *strands) strandHold(pod *v1.Pod, generations map[string]string) (string, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[pod.UID]
	if !ok {
		return "", false
	}
	if generations != nil {
		if s.generation == "" {
			s.generation = generations[s.provisioner]
		}
		if generations[s.provisioner] != s.generation {
			delete(ss.m, pod.UID)
			return "", false
		}
	}
	since := ss.opts.Clock.Since(s.last)
	switch {
	case since > StrandMemory:
		delete(ss.m, pod.UID)
		return "", false
	case s.count >= MaxStrands:
		return fmt.Sprintf("stranded %d times on nodes launched for it (last: %s); no node is planned for it until provisioner %s changes or %s pass",
			s.count, s.reason, s.provisioner, StrandMemory), true
	case since < StrandBackoff:
		return fmt.Sprintf("stranded on a node launched for it (%s); planning it again in %s", s.reason, (StrandBackoff - since).Round(time.Second)), true
	}
	return "", false
}

// avoidedShapes returns, by pod UID, the shapes each stranded pod must not be planned onto.
func (ss *strands) avoidedShapes() map[types.UID]sets.Set[string] {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := map[types.UID]sets.Set[string]{}
	for uid, s := range ss.m {
		out[uid] = s.shapes.Clone()
	}
	return out
}

// holdStranded splits pods into those to plan and those their strands hold back, with why;
// provs are the round's Provisioners.
func (ss *strands) holdStranded(pods []*v1.Pod, provs []*v1alpha1.Provisioner) ([]*v1.Pod, []*plan.Unplanned) {
	generations := map[string]string{}
	for _, prov := range provs {
		generations[prov.Name] = fmt.Sprintf("%s/%d", prov.UID, prov.Generation)
	}
	var toPlan []*v1.Pod
	var held []*plan.Unplanned
	for _, pod := range pods {
		if why, ok := ss.strandHold(pod, generations); ok {
			// Resolvable: PostFilter holds it while the hold lasts, and plans it after.
			held = append(held, &plan.Unplanned{Pod: pod, Reasons: []string{why}, Resolvable: true})
			continue
		}
		toPlan = append(toPlan, pod)
	}
	return toPlan, held
}

// prune forgets the strands of pods that are no longer pending.
func (ss *strands) prune() {
	pruneNotPending(ss.deps, &ss.mu, ss.m, func(st *strand) (string, string) { return st.namespace, st.name })
}
