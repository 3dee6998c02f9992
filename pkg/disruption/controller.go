package disruption

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan"
)

// Defaults of Options.
const (
	// DefaultInterval: a pass plans a few times; a scale-down is seen within it.
	DefaultInterval = 10 * time.Second
	// DefaultValidationDelay: long enough for pods a scale-up is creating to show, and for
	// a burst of deletions to settle, before a decision is acted on.
	DefaultValidationDelay = 15 * time.Second
	// DefaultReplacementTimeout: a launch's retries (5 minutes) and a node's boot.
	DefaultReplacementTimeout = 10 * time.Minute
	// DefaultHoldFor: the moved pods' eviction, their controllers' new pods and their
	// scheduling take seconds; a drain that a PodDisruptionBudget slows takes longer, and
	// the room stays held while it lasts.
	DefaultHoldFor = 5 * time.Minute
)

// Options configure a Controller. Every func and client is required.
type Options struct {
	// Kube taints nodes and records events through Recorder.
	Kube     kubernetes.Interface
	Recorder events.EventRecorder
	// Dynamic writes NodeClaims.
	Dynamic dynamic.Interface
	// Clock tells the time of delays and budgets; nil means the real clock.
	Clock clock.Clock
	// Gate keeps disruptions within budgets, with the lifecycle's emptiness and expiry.
	Gate *Gate
	// Input returns the cluster as the scheduler plans it (plan.Input): its nodes and bound
	// pods, the in-flight claims' stand-ins, the Provisioners and their instance types, the
	// DaemonSets and the profile's plugins, with the scheduler's pending pods as Pods.
	Input func(ctx context.Context) (*plan.Input, error)
	// Claims returns every NodeClaim, from the cache.
	Claims func() []*v1alpha1.NodeClaim
	// PDBs lists the cluster's PodDisruptionBudgets, from the cache.
	PDBs func() ([]*policyv1.PodDisruptionBudget, error)
	// Classes lists the EC2NodeClasses.
	Classes func(ctx context.Context) ([]*v1alpha1.EC2NodeClass, error)

	// Interval is the time between passes.
	Interval time.Duration
	// ValidationDelay is how long after deciding a disruption it is decided again, on the
	// cluster as it is then, before it is carried out.
	ValidationDelay time.Duration
	// ReplacementTimeout is how long a replacement may take to be initialized before the
	// disruption is undone.
	ReplacementTimeout time.Duration
	// HoldFor is how long a replacement holds its room for the moved pods once they are
	// being evicted.
	HoldFor time.Duration
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	o.Interval = cmp.Or(o.Interval, DefaultInterval)
	o.ValidationDelay = cmp.Or(o.ValidationDelay, DefaultValidationDelay)
	o.ReplacementTimeout = cmp.Or(o.ReplacementTimeout, DefaultReplacementTimeout)
	o.HoldFor = cmp.Or(o.HoldFor, DefaultHoldFor)
	return o
}

func (o Options) validate() error {
	var errs field.ErrorList
	for name, set := range map[string]bool{"kube": o.Kube != nil, "recorder": o.Recorder != nil, "dynamic": o.Dynamic != nil,
		"gate": o.Gate != nil, "input": o.Input != nil, "claims": o.Claims != nil, "pdbs": o.PDBs != nil, "classes": o.Classes != nil} {
		if !set {
			errs = append(errs, field.Required(field.NewPath(name), "needed by the disruption controller"))
		}
	}
	for name, d := range map[string]time.Duration{"interval": o.Interval, "validationDelay": o.ValidationDelay,
		"replacementTimeout": o.ReplacementTimeout, "holdFor": o.HoldFor} {
		if d < 0 {
			errs = append(errs, field.Invalid(field.NewPath(name), d.String(), "must not be negative"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid disruption options: %w", errs.ToAggregate())
	}
	return nil
}

// Controller removes the nodes nodewright launched that the cluster can do without, and
// replaces drifted ones: each pass decides at most one disruption, in this order, the first
// that finds one ending the pass (empty nodes are the lifecycle's emptiness's):
//  1. a drifted node (Drifted, DriftedFromClass), deleted if its pods fit elsewhere, else
//     replaced by one new node;
//  2. consolidation (Consolidate): several nodes deleted, or replaced by one cheaper node;
//     failing that, one.
//
// It decides again after ValidationDelay and carries the decision out (execute.go). It runs
// on one goroutine, one decision at a time: a pass starts with no disruption of its own in
// flight, so a Disrupting claim not being deleted is one a previous process left midway,
// which the pass finishes or undoes (recover).
type Controller struct {
	opts Options
	// idle is the fingerprint of the cluster on which the last pass found nothing to do.
	idle string
	// lastWhy is why the last pass did nothing.
	lastWhy string
}

// NewController returns a Controller for opts, defaulted and validated.
func NewController(opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	registerMetrics()
	return &Controller{opts: opts}, nil
}

// Run makes passes until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("disruption")
	ctx = klog.NewContext(ctx, logger)
	logger.V(2).Info("Disruption controller started", "interval", c.opts.Interval, "validationDelay", c.opts.ValidationDelay)
	for {
		if err := c.pass(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Disruption pass failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-c.opts.Clock.After(c.opts.Interval):
		}
	}
}

// pass recovers what a previous process left midway, then decides one disruption, decides
// it again after the delay, and carries it out.
func (c *Controller) pass(ctx context.Context) error {
	start := c.opts.Clock.Now()
	defer func() { passDuration.Observe(c.opts.Clock.Since(start).Seconds()) }()
	waiting, err := c.recover(ctx)
	if err != nil {
		return fmt.Errorf("recovering disruptions left midway: %w", err)
	}
	if waiting {
		return nil
	}
	d, _, why, err := c.decide(ctx, nil)
	if err != nil || d == nil {
		// Said when it changes; again only at a higher verbosity.
		if why != "" {
			v := 2
			if why == c.lastWhy {
				v = 5
			}
			klog.FromContext(ctx).V(v).Info("No disruption", "reason", why)
		}
		c.lastWhy = why
		return err
	}
	klog.FromContext(ctx).V(2).Info("Disruption decided; deciding again after the delay", "decision", d.String(), "delay", c.opts.ValidationDelay)
	select {
	case <-ctx.Done():
		return nil
	case <-c.opts.Clock.After(c.opts.ValidationDelay):
	}
	again, s, why, err := c.decide(ctx, d)
	if err != nil {
		return err
	}
	if again == nil {
		decisions.WithLabelValues(string(d.Reason), string(d.Method), resultInvalidated).Inc()
		klog.FromContext(ctx).Info("Disruption no longer holds; not carried out", "decision", d.String(), "reason", why)
		return nil
	}
	return c.execute(ctx, again, s)
}

// state is what a pass decides on.
type state struct {
	in      *plan.Input
	claims  []*v1alpha1.NodeClaim
	cluster Cluster
	classes map[string]*v1alpha1.EC2NodeClass
	// budgeted says which candidates the budgets held back.
	budgeted []string
}

// observe reads the cluster now.
func (c *Controller) observe(ctx context.Context) (*state, error) {
	in, err := c.opts.Input(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster: %w", err)
	}
	pdbs, err := c.opts.PDBs()
	if err != nil {
		return nil, fmt.Errorf("listing PodDisruptionBudgets: %w", err)
	}
	classes, err := c.opts.Classes(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing EC2NodeClasses: %w", err)
	}
	s := &state{in: in, claims: c.opts.Claims(), classes: map[string]*v1alpha1.EC2NodeClass{}}
	for _, class := range classes {
		s.classes[class.Name] = class
	}
	s.cluster = Cluster{Claims: s.claims, Nodes: map[string]*v1.Node{}, Pods: map[string][]*v1.Pod{}, PDBs: pdbs,
		Provisioners: map[string]*v1alpha1.Provisioner{}, InstanceTypes: in.InstanceTypes}
	// A replacement holding room for pods on their way takes no other pod (Held): to the
	// plans it is a node that takes none, or they would move pods into room they cannot
	// have, to go pending and be provisioned for, a node a pass later consolidates: churn.
	holding := map[string]bool{}
	now := c.opts.Clock.Now()
	onNode := map[string][]*v1.Pod{}
	for _, pod := range in.ScheduledPods {
		onNode[pod.Spec.NodeName] = append(onNode[pod.Spec.NodeName], pod)
	}
	for _, nc := range s.claims {
		if nc.Status.NodeName != "" && Waiting(nc, onNode[nc.Status.NodeName], now) > 0 {
			holding[nc.Status.NodeName] = true
		}
	}
	for i, n := range in.Nodes {
		if holding[n.Name] {
			n = n.DeepCopy()
			n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: v1alpha1.AnnotationHeldPods, Effect: v1.TaintEffectNoSchedule})
			in.Nodes[i] = n
		}
		s.cluster.Nodes[n.Name] = n
	}
	for _, pod := range in.ScheduledPods {
		s.cluster.Pods[pod.Spec.NodeName] = append(s.cluster.Pods[pod.Spec.NodeName], pod)
	}
	for _, p := range in.Provisioners {
		s.cluster.Provisioners[p.Name] = p
	}
	return s, nil
}

// decide returns the disruption to carry out now, or nil and why none. With last, the
// decision made before the delay, it decides that one again (Revalidate) rather than anew.
func (c *Controller) decide(ctx context.Context, last *Decision) (*Decision, *state, string, error) {
	s, err := c.observe(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	// A pass plans several times, every Interval: the framework's and the plan's own logs of
	// each plan (a round's) go three levels down.
	planCtx := klog.NewContext(ctx, klog.FromContext(ctx).V(3))
	d, why, err := c.decideOn(planCtx, s, last)
	return d, s, why, err
}

// decideOn is decide on s.
func (c *Controller) decideOn(ctx context.Context, s *state, last *Decision) (*Decision, string, error) {
	// Provisioning goes first: nodes launching are a scale-up under way, and a pod pending
	// that a plan would place is one in the making. Pods no plan places do not hold
	// disruption back.
	for _, nc := range s.claims {
		if nc.DeletionTimestamp == nil && !nc.IsTrue(v1alpha1.ConditionInitialized) {
			return nil, fmt.Sprintf("nodeclaim %s is launching", nc.Name), nil
		}
		// Emptiness goes first too: an empty node about to go looks like room to move pods
		// to, and the scheduler, spreading pods, likes it best.
		if nc.DeletionTimestamp == nil && nc.IsTrue(v1alpha1.ConditionEmpty) {
			return nil, fmt.Sprintf("nodeclaim %s is empty and waits to be deleted", nc.Name), nil
		}
	}
	now := c.opts.Clock.Now()
	in := *s.in
	in.Pods = nil
	if last != nil {
		if why, err := c.pendingPlaced(ctx, s); why != "" || err != nil {
			return nil, why, err
		}
		current, _ := c.candidates(s, last.Reason, now)
		again, why, err := Revalidate(ctx, in, candidatesOf(current), last)
		if again != nil {
			again.Why = last.Why
		}
		return again, why, err
	}
	drifted, _ := c.candidates(s, v1alpha1.DisruptionDrifted, now)
	underutilized, allowed := c.candidates(s, v1alpha1.DisruptionUnderutilized, now)
	if len(drifted)+len(underutilized) == 0 {
		if len(s.budgeted) > 0 {
			return nil, "no candidate: disruption budgets hold back " + strings.Join(s.budgeted, ", "), nil
		}
		return nil, "no candidate", nil
	}
	// A pass that found nothing to do finds nothing again on the same cluster: it is not
	// planned again until something changed, so that a steady cluster costs no plans.
	key := s.fingerprint(drifted, underutilized)
	if key == c.idle {
		return nil, "nothing changed since the last pass found nothing to do", nil
	}
	d, why, err := c.decideAnew(ctx, s, in, drifted, underutilized, allowed)
	if d == nil && err == nil {
		c.idle = key
	}
	return d, why, err
}

// decideAnew decides on s: a drifted node's replacement, else a consolidation.
func (c *Controller) decideAnew(ctx context.Context, s *state, in plan.Input, drifted, underutilized []candidate, allowed map[string]int) (*Decision, string, error) {
	if why, err := c.pendingPlaced(ctx, s); why != "" || err != nil {
		return nil, why, err
	}
	for _, cand := range drifted {
		d, err := Replace(ctx, in, cand.Candidate)
		if err != nil {
			return nil, "", err
		}
		if d != nil {
			d.Why = cand.why
			return d, "", nil
		}
		nc := s.claim(cand.Claim)
		c.opts.Recorder.Eventf(nc, nil, v1.EventTypeWarning, eventDriftUnresolved, actionDisrupt,
			"Node %s drifted (%s) but its pods would not all fit on the other nodes and one new node", cand.Node, cand.why)
	}
	if len(underutilized) == 0 {
		return nil, "no node to consolidate", nil
	}
	klog.FromContext(ctx).V(1).Info("Consolidation candidates", "nodes", names(candidatesOf(underutilized)))
	d, err := Consolidate(ctx, in, candidatesOf(underutilized), allowed)
	if d == nil && err == nil {
		return nil, fmt.Sprintf("none of %d candidate(s) can be removed or replaced for less", len(underutilized)), nil
	}
	return d, "", err
}

// pendingPlaced says why disruption waits when a pending pod is one a plan places (a
// scale-up in the making); "" when none is.
func (c *Controller) pendingPlaced(ctx context.Context, s *state) (string, error) {
	if len(s.in.Pods) == 0 {
		return "", nil
	}
	result, err := plan.Plan(ctx, *s.in)
	if err != nil {
		return "", fmt.Errorf("planning the pending pods: %w", err)
	}
	if placed := len(s.in.Pods) - len(result.Unplanned); placed > 0 {
		return fmt.Sprintf("%d pending pod(s) are to be provisioned for", placed), nil
	}
	return "", nil
}

// fingerprint identifies what a pass decides on: the claims and Provisioners (their
// versions), the nodes, where pods run, the pending pods, the node classes, and the
// candidates (which time alone changes).
func (s *state) fingerprint(sets ...[]candidate) string {
	var parts []string
	for _, nc := range s.claims {
		parts = append(parts, "claim/"+nc.Name+"/"+nc.ResourceVersion)
	}
	for _, p := range s.in.Provisioners {
		parts = append(parts, "provisioner/"+p.Name+"/"+p.ResourceVersion)
	}
	for _, class := range s.classes {
		parts = append(parts, "class/"+class.Name+"/"+class.ResourceVersion)
	}
	for _, n := range s.in.Nodes {
		parts = append(parts, "node/"+n.Name)
	}
	for _, pod := range s.in.ScheduledPods {
		parts = append(parts, "pod/"+string(pod.UID)+"/"+pod.Spec.NodeName)
	}
	for _, pod := range s.in.Pods {
		parts = append(parts, "pending/"+string(pod.UID))
	}
	for i, cs := range sets {
		for _, c := range cs {
			parts = append(parts, "candidate/"+strconv.Itoa(i)+"/"+c.Claim)
		}
	}
	slices.Sort(parts)
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// candidate is a Candidate with why it is one.
type candidate struct {
	Candidate
	why string
}

// candidates returns the nodes that may be disrupted for reason now, within each
// Provisioner's budget for it (the most valuable first, for consolidation): drifted nodes,
// or, for Underutilized, the nodes of Provisioners that consolidate them, past their
// consolidateAfter, that are not empty (emptiness removes those).
func (c *Controller) candidates(s *state, reason v1alpha1.DisruptionReason, now time.Time) ([]candidate, map[string]int) {
	allowedBy := map[string]int{}
	byProv := map[string][]*v1alpha1.NodeClaim{}
	for _, nc := range s.claims {
		if !Disrupting(nc) {
			byProv[nc.Spec.Provisioner] = append(byProv[nc.Spec.Provisioner], nc)
		}
	}
	var out []candidate
	for _, name := range slices.Sorted(maps.Keys(byProv)) {
		prov := s.cluster.Provisioners[name]
		if prov == nil {
			continue
		}
		settings := prov.Spec.DisruptionSettings()
		after := time.Duration(0)
		var claims []*v1alpha1.NodeClaim
		whys := map[string]string{}
		switch reason {
		case v1alpha1.DisruptionDrifted:
			for _, nc := range byProv[name] {
				if why := c.drifted(s, nc, prov); why != "" {
					claims = append(claims, nc)
					whys[nc.Name] = why
				}
			}
		case v1alpha1.DisruptionUnderutilized:
			if !settings.Consolidates(reason) {
				continue
			}
			after = *settings.ConsolidateAfter
			for _, nc := range byProv[name] {
				if !s.empty(nc.Status.NodeName) {
					claims = append(claims, nc)
				}
			}
		}
		if len(claims) == 0 {
			continue
		}
		sub := s.cluster
		sub.Claims = claims
		found, _ := Candidates(sub, now, after)
		allowed := c.opts.Gate.Allowed(prov, s.claims, reason, now)
		if len(found) == 0 {
			continue
		}
		if allowed < 1 {
			s.budgeted = append(s.budgeted, fmt.Sprintf("%d %s node(s) of Provisioner %s", len(found), reason, prov.Name))
			continue
		}
		allowedBy[prov.Name] = allowed
		for _, f := range found {
			out = append(out, candidate{Candidate: f, why: whys[f.Claim]})
		}
	}
	return out, allowedBy
}

// drifted returns why nc's node drifted from its Provisioner or node class; "" if it did not.
func (c *Controller) drifted(s *state, nc *v1alpha1.NodeClaim, prov *v1alpha1.Provisioner) string {
	var it *cloud.InstanceType
	for _, t := range s.in.InstanceTypes[prov.Name] {
		if t.Name == nc.Status.InstanceType {
			it = t
		}
	}
	return cmp.Or(Drifted(nc, prov, it), DriftedFromClass(nc, s.classes[nc.Spec.NodeClassRef.Name]))
}

// empty reports whether the node named name runs nothing but pods that go with it.
func (s *state) empty(name string) bool {
	return !slices.ContainsFunc(s.cluster.Pods[name], func(p *v1.Pod) bool { return !plan.GoesWithNode(p) })
}

// claim returns the NodeClaim named name, or nil.
func (s *state) claim(name string) *v1alpha1.NodeClaim {
	i := slices.IndexFunc(s.claims, func(nc *v1alpha1.NodeClaim) bool { return nc.Name == name })
	if i < 0 {
		return nil
	}
	return s.claims[i]
}

// candidatesOf returns the Candidates of cs.
func candidatesOf(cs []candidate) []Candidate {
	out := make([]Candidate, len(cs))
	for i, c := range cs {
		out[i] = c.Candidate
	}
	return out
}

// names returns the node names of nodes, comma-separated.
func names(nodes []Candidate) string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Node
	}
	return strings.Join(out, ", ")
}
