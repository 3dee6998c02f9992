package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/nodewright/nodewright/hack/bench/workload"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	nwaws "github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/disruption"
	"github.com/nodewright/nodewright/pkg/plan"
)

// Consolidation is one consolidation run: the diverse mix of From pods, as Deployments of
// ten replicas each (pod i of the mix is the template of Deployment i mod From/10), runs on
// a fleet nodewright provisioned; the Deployments are scaled to To pods in all, and
// nodewright's disruption controller, with the shipped configuration and the Provisioner's
// consolidateAfter, consolidates the fleet.
type Consolidation struct {
	From                    int     `json:"from"`
	To                      int     `json:"to"`
	ConsolidateAfterSeconds float64 `json:"consolidateAfterSeconds"`
	// Converged is false when the fleet was still changing at the timeout.
	Converged bool `json:"converged"`
	// ConvergedSeconds is the time from the scale-down to the last change of the fleet
	// (a NodeClaim created or gone), followed by QuietSeconds without one.
	ConvergedSeconds float64 `json:"convergedSeconds"`
	QuietSeconds     float64 `json:"quietSeconds"`
	// Within115Seconds is the time from the scale-down until the fleet first cost at most
	// 1.15x the fresh plan; 0 if it never did.
	Within115Seconds float64 `json:"within115Seconds"`
	// NodesBefore, USDPerHourBefore: the fleet of the From pods; NodesAfter, USDPerHourAfter:
	// the fleet once converged; FreshNodes, FreshUSDPerHour: pkg/plan's plan of the To pods on
	// an empty cluster with the same catalog. Every price is the offering's, the type's node
	// cost and the Provisioner's (as consolidation prices nodes).
	NodesBefore      int     `json:"nodesBefore"`
	USDPerHourBefore float64 `json:"usdPerHourBefore"`
	NodesAfter       int     `json:"nodesAfter"`
	USDPerHourAfter  float64 `json:"usdPerHourAfter"`
	FreshNodes       int     `json:"freshNodes"`
	FreshUSDPerHour  float64 `json:"freshUSDPerHour"`
	// Evictions counts the Evicted events of the pods (each pod a consolidation moved), and
	// PendingOver30s the pods created after the scale-down (those moved) that took more than
	// 30 s to run; NotRunning the pods not running at the end.
	Evictions      int `json:"evictions"`
	PendingOver30s int `json:"pendingOver30s"`
	NotRunning     int `json:"notRunning"`
	// Decisions counts the disruption decisions logged (Disrupting node(s) ...).
	Decisions int `json:"decisions"`
}

// consolidationOptions are the run's sizes and timings.
type consolidationOptions struct {
	From, To         int
	ConsolidateAfter time.Duration
	Quiet, Timeout   time.Duration
}

// runConsolidation runs one consolidation.
func runConsolidation(ctx context.Context, opts consolidationOptions) (res *Consolidation, err error) {
	logger := klog.FromContext(ctx)
	const replicas = 10
	if opts.From%replicas != 0 || opts.To%(opts.From/replicas) != 0 {
		return nil, fmt.Errorf("from %d must be a multiple of %d, and to %d of from/%d", opts.From, replicas, opts.To, replicas)
	}
	c, err := startCluster(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer func() { c.stop(err == nil && res.Converged && res.NotRunning == 0) }()
	dyn, err := dynamic.NewForConfig(c.restConfig())
	if err != nil {
		return nil, err
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"disruption": map[string]any{
		"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": opts.ConsolidateAfter.String()}}})
	if err != nil {
		return nil, err
	}
	if _, err := dyn.Resource(v1alpha1.ProvisionerGVR).Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return nil, fmt.Errorf("setting the Provisioner's disruption: %w", err)
	}
	const ns = "consolidation"
	s, w, err := c.startShipped(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	defer w.close()
	deployments := opts.From / replicas
	if err := c.createDeployments(ctx, ns, workload.Pods(deployments, workload.Seed, workload.PodOptions{Namespace: ns, SchedulerName: schedulerName}), replicas); err != nil {
		return nil, err
	}
	logger.Info("Scaling up", "pods", opts.From, "deployments", deployments, "dir", c.dir)
	if err := c.waitRunning(ctx, ns, opts.From, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("scale-up: %w", err)
	}
	its, err := c.instanceTypes(ctx)
	if err != nil {
		return nil, err
	}
	r := &Consolidation{From: opts.From, To: opts.To, ConsolidateAfterSeconds: opts.ConsolidateAfter.Seconds(), QuietSeconds: opts.Quiet.Seconds()}
	if r.USDPerHourBefore, r.NodesBefore, _, err = c.fleetCost(ctx, dyn, its); err != nil {
		return nil, err
	}

	logger.Info("Scaling down", "from", opts.From, "to", opts.To)
	start := time.Now()
	for i := range deployments {
		scale := fmt.Sprintf(`{"spec":{"replicas":%d}}`, opts.To/deployments)
		if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, fmt.Sprintf("d-%03d", i), types.MergePatchType, []byte(scale), metav1.PatchOptions{}); err != nil {
			return nil, err
		}
	}
	if err := c.waitPods(ctx, ns, opts.To, time.Minute); err != nil {
		return nil, fmt.Errorf("scale-down: %w", err)
	}
	if r.FreshUSDPerHour, r.FreshNodes, err = c.freshPlan(ctx, ns, its); err != nil {
		return nil, err
	}
	lastChange, lastClaims := start, ""
	_ = wait.PollUntilContextTimeout(ctx, 2*time.Second, opts.Timeout, true, func(ctx context.Context) (bool, error) {
		cost, nodes, claims, err := c.fleetCost(ctx, dyn, its)
		if err != nil {
			return false, nil
		}
		if claims != lastClaims {
			lastClaims, lastChange = claims, time.Now()
		}
		if r.Within115Seconds == 0 && cost <= 1.15*r.FreshUSDPerHour {
			r.Within115Seconds = time.Since(start).Seconds()
		}
		logger.V(2).Info("Consolidating", "nodes", nodes, "usdPerHour", cost, "fresh", r.FreshUSDPerHour)
		r.Converged = time.Since(lastChange) >= opts.Quiet
		return r.Converged, nil
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.ConvergedSeconds = lastChange.Sub(start).Seconds()
	if r.USDPerHourAfter, r.NodesAfter, _, err = c.fleetCost(ctx, dyn, its); err != nil {
		return nil, err
	}
	pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		if p.Status.Phase != v1.PodRunning {
			r.NotRunning++
		}
	}
	for _, t := range w.snapshot() {
		if t.created.After(start) && (t.running.IsZero() || t.running.Sub(t.created) > 30*time.Second) {
			r.PendingOver30s++
		}
	}
	events, err := c.client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, e := range events.Items {
		if e.Reason == "Evicted" {
			r.Evictions++
		}
	}
	if r.Decisions, err = countInFile(c.dir+"/scheduler.log", "Disrupting node(s) via"); err != nil {
		return nil, err
	}
	return r, nil
}

// createDeployments creates one Deployment of replicas per pod of templates, named d-000...,
// with 32 concurrent clients.
func (c *cluster) createDeployments(ctx context.Context, ns string, templates []*v1.Pod, replicas int32) error {
	work := make(chan int)
	errs := make(chan error, len(templates))
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("d-%03d", i)
				d := workload.Deployment(templates[i], name, replicas)
				if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("creating deployment %s: %w", name, err)
				}
			}
		})
	}
	for i := range templates {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

// waitRunning waits until n pods of ns run.
func (c *cluster) waitRunning(ctx context.Context, ns string, n int, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
		return err == nil && len(list.Items) == n, nil
	})
}

// waitPods waits until ns has n pods, being deleted or not.
func (c *cluster) waitPods(ctx context.Context, ns string, n int, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == n, nil
	})
}

// instanceTypes returns the instance types of the Provisioner "default", as the scheduler
// lists them from the emulator.
func (c *cluster) instanceTypes(ctx context.Context) ([]*cloud.InstanceType, error) {
	provider, class, err := c.provider(ctx)
	if err != nil {
		return nil, err
	}
	return provider.InstanceTypes(ctx, class, nil)
}

// provider returns an AWS cloud provider on the emulator, as the scheduler makes its own,
// and the EC2NodeClass "default".
func (c *cluster) provider(ctx context.Context) (*nwaws.Provider, *v1alpha1.EC2NodeClass, error) {
	clients, err := nwaws.NewClients(ctx, nwaws.ClientOptions{Region: emulator.Region, Endpoint: c.emulator.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("anonymous", "anonymous", "")})
	if err != nil {
		return nil, nil, err
	}
	cfg := c.cp.RESTConfig()
	provider, err := nwaws.New(nwaws.Options{Clients: clients, ClusterName: emulator.DefaultClusterName, ClusterEndpoint: cfg.Host,
		ClusterCA: base64.StdEncoding.EncodeToString(cfg.CAData), ClusterCIDR: c.cp.ServiceCIDR(), KubernetesVersion: "1.37"})
	if err != nil {
		return nil, nil, err
	}
	tags := map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}
	class := &v1alpha1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.EC2NodeClassSpec{
		SubnetSelector: v1alpha1.SubnetSelector{Tags: tags}, SecurityGroupSelector: v1alpha1.SecurityGroupSelector{Tags: tags},
		InstanceProfile: new("nodes")}}
	return provider, class, nil
}

// fleetCost returns what the NodeClaims cost per hour (offering, the type's node cost, the
// Provisioner's, as consolidation prices nodes), how many there are, and their names.
func (c *cluster) fleetCost(ctx context.Context, dyn dynamic.Interface, types []*cloud.InstanceType) (float64, int, string, error) {
	list, err := dyn.Resource(v1alpha1.NodeClaimGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, "", err
	}
	prov := &v1alpha1.Provisioner{}
	claims := make([]*v1alpha1.NodeClaim, 0, len(list.Items))
	names := ""
	for i := range list.Items {
		nc, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](&list.Items[i])
		if err != nil {
			return 0, 0, "", err
		}
		claims = append(claims, nc)
		names += nc.Name + ","
	}
	var cost float64
	for _, nc := range claims {
		price, err := disruption.Price(nc, prov, types)
		if err != nil {
			continue // not launched yet
		}
		cost += price
	}
	return cost, len(claims), names, nil
}

// freshPlan returns what pkg/plan's plan of the pods of ns on an empty cluster costs per
// hour, priced as fleetCost prices nodes, and its nodes.
func (c *cluster) freshPlan(ctx context.Context, ns string, types []*cloud.InstanceType) (float64, int, error) {
	list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, err
	}
	var pods []*v1.Pod
	for i := range list.Items {
		if p := list.Items[i].DeepCopy(); p.DeletionTimestamp == nil {
			p.Spec.NodeName = ""
			pods = append(pods, p)
		}
	}
	prov := &v1alpha1.Provisioner{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.ProvisionerSpec{NodeClassRef: v1alpha1.NodeClassReference{Name: "default"}}}
	result, err := plan.Plan(ctx, plan.Input{Pods: pods, Provisioners: []*v1alpha1.Provisioner{prov},
		InstanceTypes: map[string][]*cloud.InstanceType{prov.Name: types}, Region: emulator.Region})
	if err != nil {
		return 0, 0, err
	}
	if len(result.Unplanned) > 0 {
		return 0, 0, fmt.Errorf("a fresh plan leaves %d of %d pods unplanned", len(result.Unplanned), len(pods))
	}
	var cost float64
	for _, n := range result.Nodes {
		cost += n.Template.Offering.Price + n.Template.InstanceType.NodeCost + prov.Spec.NodeCostUSDPerHour()
	}
	return cost, len(result.Nodes), nil
}

// countInFile counts the lines of the file at path that contain substr.
func countInFile(path, substr string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strings.Count(string(data), substr), nil
}
