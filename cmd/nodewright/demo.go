package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

const (
	demoNamespace  = "default"
	demoDeployment = "inflate"
	demoReplicas   = 5
	// demoPoll is how often the demo looks at the cluster while it waits.
	demoPoll = 250 * time.Millisecond
)

// demoProvisionerYAML is the seed tutorial's Provisioner (manifests/examples/default.yaml
// without its EC2NodeClass: the sandbox has made one for the emulator's subnets).
const demoProvisionerYAML = `apiVersion: nodewright.dev/v1alpha1
kind: Provisioner
metadata:
  name: default
spec:
  requirements:
    - key: nodewright.dev/capacity-type
      operator: In
      values: ["spot"]
  limits:
    cpu: "1000"
  ttlSecondsAfterEmpty: 30
  nodeClassRef:
    name: default
`

func newSandboxDemoCommand() *cobra.Command {
	var flags sandboxFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the sandbox and run the seed tutorial on it: scale inflate to 5 and back to 0, narrated",
		Long: `demo starts the sandbox with nodewright-scheduler, like "sandbox up", and runs the seed
tutorial on it, narrating each step: it applies the Provisioner (spot, at most 1000 CPUs,
ttlSecondsAfterEmpty: 30) and the inflate Deployment (pause containers asking for 1 CPU each)
at 0 replicas, scales inflate to 5 and waits until nodewright has launched a spot node and the
pods run on it, then scales to 0 and waits until the empty node has been drained and removed,
showing the controller's log lines as they happen. It stops the sandbox and exits 0 when
every step happened, non-zero naming the step that did not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, &flags, cmd.OutOrStdout())
		},
	}
	flags.add(cmd, ".sandbox-demo")
	return cmd
}

// demoStep is one narrated step of the demo.
type demoStep struct {
	title   string
	timeout time.Duration
	run     func(ctx context.Context) error
}

func runDemo(ctx context.Context, flags *sandboxFlags, out io.Writer) error {
	start := time.Now()
	n := newNarrator(out)
	lines := newControllerLines(n)
	n.printf("Starting the sandbox: etcd, kube-apiserver, kube-controller-manager, kwok, the EC2 emulator and nodewright-scheduler...\n")
	sb, err := startSandbox(ctx, flags, true, &lineWriter{onLine: lines.onLine})
	if err != nil {
		return fmt.Errorf("step 0 (start the sandbox): %w", err)
	}
	defer sb.stop(out)
	n.printf("Sandbox ready in %s.\n  export KUBECONFIG=%s\n  controller log: %s\n", time.Since(start).Round(100*time.Millisecond),
		sb.cp.Kubeconfig(), controllerLogPath(sb.dir))

	d, err := newDemo(sb, n, lines)
	if err != nil {
		return err
	}
	steps := []demoStep{
		{"apply the Provisioner: spot nodes, at most 1000 CPUs, empty nodes removed after 30s", 30 * time.Second, d.applyProvisioner},
		{"apply the inflate Deployment with 0 replicas (pause containers asking for 1 CPU each)", 30 * time.Second, d.createDeployment},
		{fmt.Sprintf("scale inflate to %d: nodewright launches a spot node and the pods run on it", demoReplicas), 2 * time.Minute, d.scaleUp},
		{"scale inflate to 0: the empty node is drained and removed after its 30s TTL", 2 * time.Minute, d.scaleDown},
	}
	for i, step := range steps {
		n.printf("\n==> Step %d: %s\n", i+1, step.title)
		stepCtx, cancel := context.WithTimeout(ctx, step.timeout)
		err := step.run(stepCtx)
		cancel()
		n.endProgress()
		if err != nil {
			n.printf("The controller log is in %s.", controllerLogPath(sb.dir))
			if errs := lines.lastErrors(); len(errs) > 0 {
				n.printf(" Its last errors:\n    %s", strings.Join(errs, "\n    "))
			}
			n.printf("\n")
			return fmt.Errorf("step %d (%s): %w", i+1, step.title, err)
		}
	}
	n.printf("\nDemo complete in %s: every step happened.\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// demo runs the steps against a running sandbox.
type demo struct {
	sb      *runningSandbox
	client  kubernetes.Interface
	dynamic dynamic.Interface
	n       *narrator
	lines   *controllerLines
	// claim is the NodeClaim of the node launched for inflate, once it has run.
	claim *v1alpha1.NodeClaim
}

func newDemo(sb *runningSandbox, n *narrator, lines *controllerLines) (*demo, error) {
	// The demo lists pods, NodeClaims and Nodes several times a second while it waits:
	// client-go's default of 5 queries per second would make it lag behind the cluster.
	cfg := sb.cp.RESTConfig()
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &demo{sb: sb, client: client, dynamic: dyn, n: n, lines: lines}, nil
}

func (d *demo) applyProvisioner(ctx context.Context) error {
	nodes, err := d.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	d.n.printf("%s", nodesTable(nodes.Items))
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(demoProvisionerYAML), &obj.Object); err != nil {
		return err
	}
	gvr := v1alpha1.SchemeGroupVersion.WithResource("provisioners")
	if _, err := d.dynamic.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
		return err
	}
	d.n.printf("$ kubectl apply -f - <<EOF\n%sEOF\nprovisioner.nodewright.dev/default created\n", demoProvisionerYAML)
	return nil
}

func (d *demo) createDeployment(ctx context.Context) error {
	deployment := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict(manifests.Inflate, deployment); err != nil {
		return err
	}
	if _, err := d.client.AppsV1().Deployments(demoNamespace).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		return err
	}
	d.n.printf("$ kubectl apply -f manifests/inflate.yaml\ndeployment.apps/%s created\n", demoDeployment)
	return nil
}

func (d *demo) scaleUp(ctx context.Context) error {
	mark := d.lines.mark()
	if err := d.scale(ctx, demoReplicas); err != nil {
		return err
	}
	var shownPending, shownClaim, shownNode bool
	var pods []corev1.Pod
	err := d.wait(ctx, fmt.Sprintf("%d pods Running", demoReplicas), func(ctx context.Context) (bool, string, error) {
		var err error
		if pods, err = d.pods(ctx); err != nil {
			return false, "", err
		}
		// Show the cluster as it changes: the pods pending, the NodeClaim launched, the node joined.
		if !shownPending && len(pods) == demoReplicas && countPhase(pods, corev1.PodPending) == demoReplicas {
			d.n.printf("%s", podsTable(pods))
			shownPending = true
		}
		claims, err := d.nodeClaims(ctx)
		if err != nil {
			return false, "", err
		}
		if !shownClaim && len(claims) > 0 && claims[0].Status.InstanceID != "" {
			d.n.printf("%s", nodeClaimsTable(claims))
			shownClaim = true
		}
		nodes, err := d.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		// The node is shown once it is Ready: kwok reports it NotReady for a moment after it
		// registers, and a NotReady row tells the reader nothing.
		if !shownNode && anyNodeReady(nodes.Items) {
			d.n.printf("%s", nodesTable(nodes.Items))
			shownNode = true
		}
		running := countPhase(pods, corev1.PodRunning)
		return running == demoReplicas, fmt.Sprintf("%d/%d", running, demoReplicas), nil
	})
	if err != nil {
		return err
	}
	d.n.endProgress()
	if !shownNode {
		nodes, err := d.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		d.n.printf("%s", nodesTable(nodes.Items))
	}
	d.n.printf("%s", podsTable(pods))
	if err := d.findClaim(ctx, pods); err != nil {
		return err
	}
	if err := d.waitForLines(ctx, mark, msgComputedPacking, msgLaunched); err != nil {
		return err
	}
	return d.printPrice()
}

// findClaim finds the NodeClaim of the node the pods run on, and checks that it is spot.
func (d *demo) findClaim(ctx context.Context, pods []corev1.Pod) error {
	claims, err := d.nodeClaims(ctx)
	if err != nil {
		return err
	}
	nodeNames := map[string]bool{}
	for _, p := range pods {
		nodeNames[p.Spec.NodeName] = true
	}
	if len(nodeNames) != 1 || len(claims) != 1 || !nodeNames[claims[0].Status.NodeName] {
		return fmt.Errorf("want the %d pods on the one node of one NodeClaim, got them on nodes %v with %d NodeClaim(s)", demoReplicas, keys(nodeNames), len(claims))
	}
	d.claim = &claims[0]
	if ct := d.claim.Status.CapacityType; ct != v1alpha1.CapacityTypeSpot {
		return fmt.Errorf("nodeclaim %s is %q, the Provisioner allows only %q", d.claim.Name, ct, v1alpha1.CapacityTypeSpot)
	}
	return nil
}

// printPrice prints what the node costs: the emulator's spot price for its pool, against
// the type's on-demand price.
func (d *demo) printPrice() error {
	st := d.claim.Status
	spot, _, ok := d.sb.emulator.SpotPrice(st.InstanceType, st.Zone)
	it, found := catalog.Get(st.InstanceType)
	if !ok || !found {
		return fmt.Errorf("no spot price for %s in %s", st.InstanceType, st.Zone)
	}
	d.n.printf("Node %s is instance %s, a spot %s in %s: $%.4f/hour at the emulator's spot price for that pool, %.0f%% below on-demand ($%.4f/hour).\n",
		st.NodeName, st.InstanceID, st.InstanceType, st.Zone, spot, 100*(1-spot/it.OnDemandPriceUSD), it.OnDemandPriceUSD)
	return nil
}

func (d *demo) scaleDown(ctx context.Context) error {
	mark := d.lines.mark()
	if err := d.scale(ctx, 0); err != nil {
		return err
	}
	err := d.wait(ctx, "the pods to go", func(ctx context.Context) (bool, string, error) {
		pods, err := d.pods(ctx)
		if err != nil {
			return false, "", err
		}
		return len(pods) == 0, fmt.Sprintf("%d left", len(pods)), nil
	})
	if err != nil {
		return err
	}
	d.n.endProgress()
	d.n.printf("%s", podsTable(nil))
	node := d.claim.Status.NodeName
	err = d.wait(ctx, "node "+node+" to be removed", func(ctx context.Context) (bool, string, error) {
		n, err := d.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			claims, err := d.nodeClaims(ctx)
			return err == nil && len(claims) == 0, "node gone, nodeclaim terminating", err
		}
		if err != nil {
			return false, "", err
		}
		switch {
		case n.Spec.Unschedulable:
			return false, "cordoned, draining", nil
		case d.lines.seenSince(msgAddedTTL, mark):
			return false, "empty, TTL 30s", nil
		}
		return false, "waiting for the lifecycle to see it empty", nil
	})
	if err != nil {
		return err
	}
	d.n.endProgress()
	if err := d.waitForLines(ctx, mark, msgAddedTTL, msgTriggeringTermination, msgCordoned, msgDeleted); err != nil {
		return err
	}
	nodes, err := d.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	d.n.printf("%s", nodesTable(nodes.Items))
	return nil
}

// waitForLines waits until the controller has logged a line starting with each of prefixes
// after mark. The lines come with the changes the demo watches, so this wait is short.
func (d *demo) waitForLines(ctx context.Context, mark int, prefixes ...string) error {
	var missing []string
	err := wait.PollUntilContextTimeout(ctx, demoPoll, 10*time.Second, true, func(context.Context) (bool, error) {
		missing = d.lines.missingSince(mark, prefixes...)
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the controller did not log %s", strings.Join(missing, ", "))
	}
	return nil
}

func (d *demo) scale(ctx context.Context, replicas int32) error {
	// A patch of the scale subresource, as kubectl scale sends: an update would conflict with
	// the Deployment controller's writes.
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas))
	if _, err := d.client.AppsV1().Deployments(demoNamespace).Patch(ctx, demoDeployment, types.MergePatchType, patch, metav1.PatchOptions{}, "scale"); err != nil {
		return err
	}
	d.n.printf("$ kubectl scale deployment %s --replicas %d\ndeployment.apps/%s scaled\n", demoDeployment, replicas, demoDeployment)
	return nil
}

func (d *demo) pods(ctx context.Context) ([]corev1.Pod, error) {
	list, err := d.client.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + demoDeployment})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func (d *demo) nodeClaims(ctx context.Context) ([]v1alpha1.NodeClaim, error) {
	list, err := d.dynamic.Resource(v1alpha1.SchemeGroupVersion.WithResource("nodeclaims")).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	claims := make([]v1alpha1.NodeClaim, len(list.Items))
	for i := range list.Items {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &claims[i]); err != nil {
			return nil, fmt.Errorf("reading nodeclaim %s: %w", list.Items[i].GetName(), err)
		}
	}
	return claims, nil
}

// wait polls check until it reports done or ctx (the step's timeout) ends, showing its
// status on the progress line.
func (d *demo) wait(ctx context.Context, what string, check func(context.Context) (bool, string, error)) error {
	start := time.Now()
	var status string
	err := wait.PollUntilContextCancel(ctx, demoPoll, true, func(ctx context.Context) (bool, error) {
		done, s, err := check(ctx)
		if err != nil {
			// A client call cut short by the step's timeout says so in its own words (the
			// rate limiter refuses to wait past the deadline, before it passes); the
			// timeout is the news.
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < time.Second {
				return false, context.DeadlineExceeded
			}
			return false, err
		}
		status = s
		d.n.progress(what, s, time.Since(start))
		return done, nil
	})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s waiting for %s (last seen: %s)", time.Since(start).Round(time.Second), what, status)
	case err != nil:
		return fmt.Errorf("waiting for %s (last seen: %s, after %s): %w", what, status, time.Since(start).Round(time.Second), err)
	}
	return nil
}

func countPhase(pods []corev1.Pod, phase corev1.PodPhase) int {
	count := 0
	for _, p := range pods {
		if p.Status.Phase == phase && p.DeletionTimestamp == nil {
			count++
		}
	}
	return count
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// anyNodeReady reports whether one of nodes is Ready.
func anyNodeReady(nodes []corev1.Node) bool {
	return slices.ContainsFunc(nodes, func(n corev1.Node) bool { return nodeutil.IsNodeReady(&n) })
}
