package provision

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/plan"
)

// round plans nodes for every pending pod of this scheduler without a reservation, and
// writes one NodeClaim per planned node.
func (p *Provision) round(ctx context.Context) {
	logger := klog.FromContext(ctx)
	start := p.opts.Clock.Now()
	defer func() { roundDuration.Observe(p.opts.Clock.Since(start).Seconds()) }()
	p.conflicts.prune()
	p.strands.prune()
	p.placing.prune()
	round := 0
	if p.holds != nil {
		round = p.holds.startRound()
	}
	// Until the round ends, the scheduler does not place the round's pods, nor the pods
	// whose placement and theirs constrain each other (PreFilter turns them away, see
	// placing and reservedConflict): the plan counts each pod where it puts it. The pods
	// the scheduler is placing now are left to it, and so are those bound since they were
	// listed (their cycle ended before reserve).
	marked := p.placing.reserve(p.pendingPods(logger))
	pods := p.stillPending(marked)
	defer func() {
		if n := p.activatePods(logger, p.placing.reserved(marked, false)); n > 0 {
			logger.V(4).Info("Activated pods turned away while the round planned them, not reserved", "pods", n)
		}
	}()
	if p.holds != nil {
		// The pods held so far are the round's: those it does not take go to the scheduler
		// now, those it does not reserve when it ends, however it ends (see holds); those an
		// earlier round reserved stay held until their node registers.
		taken := sets.New[types.UID]()
		for _, pod := range pods {
			taken.Insert(pod.UID)
		}
		if n := p.holds.release(logger, round, false, func(pod *v1.Pod) bool { return taken.Has(pod.UID) }); n > 0 {
			logger.V(4).Info("Released held pods the round does not take", "pods", n)
		}
		defer func() {
			// A pod reserved on a claim whose node has registered (spare room of a launched
			// claim) goes now: its claim's activation is past.
			n := p.holds.release(logger, round, true, nil)
			if n > 0 {
				logger.V(4).Info("Released held pods the round did not reserve", "pods", n)
			}
		}()
		p.holds.prune()
	}
	if p.opts.Cloud == nil {
		provisioningRounds.WithLabelValues(resultNoCloud).Inc()
		logger.Error(nil, "Provision: no cloud provider configured; no node can be planned")
		for _, pod := range pods {
			p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning",
				"%s: no cloud provider configured", Name)
		}
		return
	}
	if len(pods) == 0 {
		provisioningRounds.WithLabelValues(resultNoPods).Inc()
		return
	}
	p.spread.mark()
	defer p.spread.add(nil, nil) // a round that plans nothing ends its mark too
	in, err := p.planInput(ctx, pods)
	if err != nil {
		provisioningRounds.WithLabelValues(resultError).Inc()
		logger.Error(err, "Preparing a provisioning round")
		return
	}
	// Pods stranded on nodes launched for them wait out their backoff, and are planned onto
	// no node of the shape that rejected them.
	var held []*plan.Unplanned
	in.Pods, held = p.strands.holdStranded(in.Pods, in.Provisioners)
	in.Avoid = p.strands.avoidedShapes()
	// Gangs are planned after the other pods, each on its own (see gang).
	var gangsToPlan []*gang
	in.Pods, gangsToPlan = p.gangs.split(logger, in.Pods)
	defer func() {
		for _, g := range gangsToPlan {
			p.planGang(ctx, g)
		}
	}()
	if len(in.Pods) == 0 {
		if len(gangsToPlan) == 0 {
			provisioningRounds.WithLabelValues(resultNoPods).Inc()
		}
		p.recordUnplanned(held)
		return
	}
	podsPerRound.Observe(float64(len(in.Pods)))
	planStart := p.opts.Clock.Now()
	result, err := plan.Plan(ctx, *in)
	if err != nil {
		provisioningRounds.WithLabelValues(resultError).Inc()
		logger.Error(err, "Planning nodes", "pods", len(in.Pods))
		gangsToPlan = nil
		return
	}
	provisioningRounds.WithLabelValues(resultPlanned).Inc()
	logPacking(logger, result)
	logger.V(2).Info("Provisioning round timed", "pods", len(in.Pods), "prepare", planStart.Sub(start), "plan", p.opts.Clock.Since(planStart))
	p.spread.add(result.Spread, slices.Concat(in.Pods, in.ScheduledPods))
	p.writer.addToClaims(ctx, result.Added)
	p.writer.writeClaims(ctx, result)
	p.recordUnplanned(append(result.Unplanned, held...))
}

// planInput gathers what Plan needs: the Provisioners with the instance types of their node
// classes, the cluster's nodes, bound pods and DaemonSets, and the claims' usage.
func (p *Provision) planInput(ctx context.Context, pods []*v1.Pod) (*plan.Input, error) {
	in := &plan.Input{Pods: pods, InstanceTypes: map[string][]*cloud.InstanceType{}, Used: p.ledger.Used(), Region: p.args.Region}
	if err := p.addProvisioners(ctx, in); err != nil {
		return nil, err
	}
	informers := p.handle.SharedInformerFactory()
	var err error
	if in.Nodes, err = informers.Core().V1().Nodes().Lister().List(labels.Everything()); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	// Every pod is counted once, as this one listing shows it: bound, on its node; pending
	// and reserved on a claim, on the claim's node (withClaims); binding now and not
	// reserved, where the scheduler assumed it. (A pod that bound while the round read the
	// informer a second time was counted nowhere, and stranded pods whose spread counted it.)
	// The assumed pods are read first: one whose binding ends meanwhile is bound in the
	// listing, while read after it, a pod pending in the listing and bound since was in
	// neither.
	assumed := p.placing.assumedOn()
	all, err := informers.Core().V1().Pods().Lister().List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	var unbound []*v1.Pod
	for _, pod := range all {
		if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		if pod.Spec.NodeName != "" {
			in.ScheduledPods = append(in.ScheduledPods, pod)
			continue
		}
		unbound = append(unbound, pod)
		if node := assumed[pod.UID]; node != "" {
			if _, _, reserved := p.ledger.Reservation(pod.UID); !reserved {
				c := pod.DeepCopy()
				c.Spec.NodeName = node
				in.ScheduledPods = append(in.ScheduledPods, c)
			}
		}
	}
	in.Nodes, in.ScheduledPods, in.Launched, in.Reserved = p.withClaims(in.Nodes, in.ScheduledPods, unbound)
	if in.DaemonSets, err = informers.Apps().V1().DaemonSets().Lister().List(labels.Everything()); err != nil {
		return nil, fmt.Errorf("listing daemonsets: %w", err)
	}
	// Judge with this profile's own PreFilter and Filter plugins, in-tree and out-of-tree.
	var enabled *config.Plugins
	if fw, ok := p.handle.(framework.Framework); ok {
		enabled = fw.ListPlugins()
	}
	in.PluginConfig = p.pluginConfig
	// Provision itself is left out of the simulation: a plan does not wait for its own rounds.
	outOfTree := maps.Clone(p.opts.OutOfTree)
	delete(outOfTree, Name)
	in.Framework = plan.FrameworkFactoryWith(enabled, informers, outOfTree, in.PluginConfig)
	return in, nil
}

// addProvisioners adds to in the Provisioners not being deleted, each with the instance
// types of its EC2NodeClass. A Provisioner whose class is missing, or whose instance types
// cannot be listed, is left out, and logged.
func (p *Provision) addProvisioners(ctx context.Context, in *plan.Input) error {
	provs, err := listTyped[v1alpha1.Provisioner](ctx, p, v1alpha1.ProvisionerGVR)
	if err != nil {
		return fmt.Errorf("listing provisioners: %w", err)
	}
	classes, err := listTyped[v1alpha1.EC2NodeClass](ctx, p, v1alpha1.EC2NodeClassGVR)
	if err != nil {
		return fmt.Errorf("listing ec2nodeclasses: %w", err)
	}
	byName := map[string]*v1alpha1.EC2NodeClass{}
	for _, c := range classes {
		byName[c.Name] = c
	}
	logger := klog.FromContext(ctx)
	for _, prov := range provs {
		if prov.DeletionTimestamp != nil {
			continue
		}
		class, ok := byName[prov.Spec.NodeClassRef.Name]
		if !ok {
			logger.Info("Provisioner's EC2NodeClass not found; skipping it", "provisioner", prov.Name, "nodeClass", prov.Spec.NodeClassRef.Name)
			continue
		}
		its, err := p.opts.Cloud.InstanceTypes(ctx, class, prov.Spec.Kubelet)
		if err != nil {
			logger.Error(err, "Listing instance types; skipping provisioner", "provisioner", prov.Name, "nodeClass", class.Name)
			continue
		}
		in.Provisioners = append(in.Provisioners, prov)
		in.InstanceTypes[prov.Name] = its
	}
	return nil
}

// withClaims adds to the cluster's nodes and bound pods what earlier rounds planned and
// the cluster does not show yet: the pods of unbound (the listing bound comes from) that are
// reserved on a NodeClaim, bound to its node, which stands in with the topology labels it
// will have (zone, capacity type, hostname) and no room. A round then plans topology spread
// and (anti-)affinity with the pods of the rounds before it where they will run, not as if
// they did not exist. The claims launched and not yet registered, whose instance type is
// known, are returned as well: Plan gives their stand-ins the room of that type and plans
// pods into what is left of it, and so are the UIDs of the pending pods put on the
// stand-ins: Plan keeps their spread constraints.
func (p *Provision) withClaims(nodes []*v1.Node, bound, unbound []*v1.Pod) ([]*v1.Node, []*v1.Pod, []plan.LaunchedNode, sets.Set[types.UID]) {
	existing := map[string]bool{}
	for _, n := range nodes {
		existing[n.Name] = true
	}
	pending := map[string][]*v1.Pod{}
	for _, pod := range unbound {
		if claim, _, ok := p.ledger.Reservation(pod.UID); ok {
			pending[claim] = append(pending[claim], pod)
		}
	}
	claims := p.ledger.Claims()
	slices.SortFunc(claims, func(a, b *v1alpha1.NodeClaim) int { return strings.Compare(a.Name, b.Name) })
	var room []plan.LaunchedNode
	reserved := sets.New[types.UID]()
	for _, nc := range claims {
		name := nc.Status.NodeName
		if name == "" {
			name = "nodeclaim-" + nc.Name
		}
		launched := nc.Status.InstanceType != "" && nc.Status.NodeName != "" && !existing[name] &&
			!nc.IsTrue(v1alpha1.ConditionTerminating)
		if len(pending[nc.Name]) == 0 && !launched {
			continue
		}
		if !existing[name] {
			nodes = append(nodes, plan.StandIn(nc, name, p.args.Region))
			existing[name] = true
		}
		if launched {
			f := plan.LaunchedNode{Claim: nc.Name, Node: name, Provisioner: nc.Spec.Provisioner,
				InstanceType: nc.Status.InstanceType, Zone: nc.Status.Zone, CapacityType: nc.Status.CapacityType}
			if labels := v1alpha1.RequirementLabels(nc.Spec.Requirements, v1alpha1.IsUserLabel); len(labels) > 0 {
				f.Labels = labels
			}
			room = append(room, f)
		}
		for _, pod := range pending[nc.Name] {
			c := pod.DeepCopy()
			c.Spec.NodeName = name
			bound = append(bound, c)
			reserved.Insert(c.UID)
		}
	}
	return nodes, bound, room, reserved
}

// listTyped lists the cluster-scoped resource gvr as T: from the plugin's informer of it
// once it runs (a round reads no API), else through the dynamic client.
func listTyped[T any](ctx context.Context, p *Provision, gvr schema.GroupVersionResource) ([]*T, error) {
	var items []*unstructured.Unstructured
	if informer := p.typedInformers[gvr]; informer != nil {
		for _, obj := range informer.GetStore().List() {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return nil, fmt.Errorf("%s in the cache is a %T", gvr.Resource, obj)
			}
			items = append(items, u)
		}
	} else {
		list, err := p.opts.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			items = append(items, &list.Items[i])
		}
	}
	out := make([]*T, 0, len(items))
	for _, u := range items {
		obj, err := v1alpha1.FromUnstructured[T](u)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// logPacking logs the operator-facing summary of result: one line per set of nodes with the
// same instance type options.
func logPacking(logger klog.Logger, result *plan.Result) {
	type group struct{ nodes, pods int }
	groups := map[string]*group{}
	var order []string
	for _, n := range result.Nodes {
		key := strings.Join(n.InstanceTypeNames(), " ")
		g, ok := groups[key]
		if !ok {
			g = &group{}
			groups[key] = g
			order = append(order, key)
		}
		g.nodes++
		g.pods += len(n.Pods)
	}
	for _, key := range order {
		g := groups[key]
		logger.Info(fmt.Sprintf("Computed packing of %d node(s) for %d pod(s) with instance type option(s) [%s]", g.nodes, g.pods, key))
	}
	logger.V(2).Info("Provisioning round planned", "nodes", len(result.Nodes), "unplanned", len(result.Unplanned),
		"checks", result.Checks, "preFilters", result.PreFilters, "cacheHits", result.CacheHits)
}

// recordUnplanned remembers why pods could not be planned, for PostFilter, and tells each
// pod in an event.
func (p *Provision) recordUnplanned(unplanned []*plan.Unplanned) {
	podsUnplanned.Add(float64(len(unplanned)))
	podsUnplannedLast.Set(float64(len(unplanned)))
	sort.Slice(unplanned, func(i, j int) bool { return unplanned[i].Pod.UID < unplanned[j].Pod.UID })
	last := make(map[types.UID]*plan.Unplanned, len(unplanned))
	for _, u := range unplanned {
		last[u.Pod.UID] = u
		p.handle.EventRecorder().Eventf(u.Pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning",
			"%s: %s", Name, u.Message())
	}
	p.unplannedPods.set(last)
}
