package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"k8s.io/utils/ptr"
)

const (
	demoNamespace  = "default"
	demoDeployment = "inflate"
	demoNode       = "kwok-node-1"
	demoReplicas   = 5
	demoStepWait   = 2 * time.Minute
)

func newSandboxDemoCommand() *cobra.Command {
	var flags sandboxFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the sandbox, scale a Deployment up and down on it, narrate, and stop",
		Long: `demo starts the sandbox with nodewright-scheduler, creates a node played by kwok and the
"inflate" Deployment (pause containers asking for 1 CPU each), scales it to 5 and waits until
nodewright-scheduler has placed every pod and they run, scales it back to 0, and stops.
It exits 0 when every step happened and non-zero naming the step that did not.`,
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
	title string
	run   func(ctx context.Context) error
}

func runDemo(ctx context.Context, flags *sandboxFlags, out io.Writer) error {
	start := time.Now()
	fmt.Fprintf(out, "Starting the sandbox: etcd, kube-apiserver, kube-controller-manager, kwok and nodewright-scheduler...\n")
	sb, err := startSandbox(ctx, flags, true, "nodewright-scheduler.log")
	if err != nil {
		return fmt.Errorf("step 0 (start the sandbox): %w", err)
	}
	defer sb.stop(out)
	fmt.Fprintf(out, "Sandbox ready in %s.\n  KUBECONFIG=%s\n  scheduler log: %s\n\n", time.Since(start).Round(100*time.Millisecond),
		sb.cp.Kubeconfig(), filepath.Join(sb.dir, "nodewright-scheduler.log"))

	client, err := kubernetes.NewForConfig(sb.cp.RESTConfig())
	if err != nil {
		return err
	}
	d := &demo{client: client, out: out, tty: isTerminal(out)}
	steps := []demoStep{
		{"create node " + demoNode + " (8 CPU, 32 GiB), played by kwok", d.createNode},
		{"create Deployment " + demoDeployment + " with 0 replicas (pause, 1 CPU each, schedulerName: nodewright-scheduler)", d.createDeployment},
		{fmt.Sprintf("scale %s to %d and wait until nodewright-scheduler has placed every pod and it runs", demoDeployment, demoReplicas), d.scaleUp},
		{"scale " + demoDeployment + " to 0 and wait until its pods are gone", d.scaleDown},
	}
	for i, step := range steps {
		fmt.Fprintf(out, "==> Step %d: %s\n", i+1, step.title)
		if err := step.run(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, step.title, err)
		}
	}
	fmt.Fprintf(out, "\nDemo complete in %s: every step happened.\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

type demo struct {
	client kubernetes.Interface
	out    io.Writer
	// tty says out is a terminal, where one progress line is rewritten in place; elsewhere
	// (CI logs, a transcript) each new status gets a line of its own.
	tty bool
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (d *demo) createNode(ctx context.Context) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: demoNode, Labels: map[string]string{
			corev1.LabelHostname: demoNode, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
		}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := d.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return err
	}
	err := d.wait(ctx, "node Ready", func(ctx context.Context) (bool, string, error) {
		n, err := d.client.CoreV1().Nodes().Get(ctx, demoNode, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		ready := nodeutil.IsNodeReady(n) && len(n.Spec.Taints) == 0
		return ready, fmt.Sprintf("Ready=%t, taints=%d", nodeutil.IsNodeReady(n), len(n.Spec.Taints)), nil
	})
	if err != nil {
		return err
	}
	return d.printNodes(ctx)
}

func (d *demo) createDeployment(ctx context.Context) error {
	labels := map[string]string{"app": demoDeployment}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: demoDeployment, Namespace: demoNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SchedulerName:                 "nodewright-scheduler",
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name:  "inflate",
						Image: "public.ecr.aws/eks-distro/kubernetes/pause:3.2",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("1"),
						}},
					}},
				},
			},
		},
	}
	_, err := d.client.AppsV1().Deployments(demoNamespace).Create(ctx, deployment, metav1.CreateOptions{})
	return err
}

func (d *demo) scaleUp(ctx context.Context) error {
	if err := d.scale(ctx, demoReplicas); err != nil {
		return err
	}
	err := d.wait(ctx, fmt.Sprintf("%d pods Running", demoReplicas), func(ctx context.Context) (bool, string, error) {
		pods, err := d.pods(ctx)
		if err != nil {
			return false, "", err
		}
		running, bound := 0, 0
		for _, p := range pods {
			if p.Spec.NodeName != "" {
				bound++
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == demoReplicas, fmt.Sprintf("%d pods, %d bound, %d running", len(pods), bound, running), nil
	})
	if err != nil {
		return err
	}
	if err := d.printPods(ctx); err != nil {
		return err
	}
	return d.printScheduledEvents(ctx)
}

// printScheduledEvents shows who placed the pods: the Scheduled events' reporting scheduler.
func (d *demo) printScheduledEvents(ctx context.Context) error {
	events, err := d.client.CoreV1().Events(demoNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=Scheduled"})
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "$ kubectl get events --field-selector reason=Scheduled\n")
	w := tabwriter.NewWriter(d.out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "REASON\tFROM\tMESSAGE")
	for _, e := range events.Items {
		from := e.ReportingController
		if from == "" {
			from = e.Source.Component
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", e.Reason, from, e.Message)
	}
	return w.Flush()
}

func (d *demo) scaleDown(ctx context.Context) error {
	if err := d.scale(ctx, 0); err != nil {
		return err
	}
	return d.wait(ctx, "no pods left", func(ctx context.Context) (bool, string, error) {
		pods, err := d.pods(ctx)
		if err != nil {
			return false, "", err
		}
		return len(pods) == 0, fmt.Sprintf("%d pods", len(pods)), nil
	})
}

func (d *demo) scale(ctx context.Context, replicas int32) error {
	s, err := d.client.AppsV1().Deployments(demoNamespace).GetScale(ctx, demoDeployment, metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.Spec.Replicas = replicas
	_, err = d.client.AppsV1().Deployments(demoNamespace).UpdateScale(ctx, demoDeployment, s, metav1.UpdateOptions{})
	fmt.Fprintf(d.out, "$ kubectl scale deployment %s --replicas %d\ndeployment.apps/%s scaled\n", demoDeployment, replicas, demoDeployment)
	return err
}

func (d *demo) pods(ctx context.Context) ([]corev1.Pod, error) {
	list, err := d.client.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + demoDeployment})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// wait polls check until it reports done, rewriting one progress line with its status.
func (d *demo) wait(ctx context.Context, what string, check func(context.Context) (bool, string, error)) error {
	start := time.Now()
	var status string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, demoStepWait, true, func(ctx context.Context) (bool, error) {
		done, s, err := check(ctx)
		if err != nil {
			return false, err
		}
		switch {
		case d.tty:
			fmt.Fprintf(d.out, "\r    waiting for %s: %s (%s)   ", what, s, time.Since(start).Round(time.Second))
		case s != status:
			fmt.Fprintf(d.out, "    waiting for %s: %s (%s)\n", what, s, time.Since(start).Round(100*time.Millisecond))
		}
		status = s
		return done, nil
	})
	if d.tty {
		fmt.Fprintln(d.out)
	}
	if err != nil {
		return fmt.Errorf("waiting for %s (last seen: %s): %w", what, status, err)
	}
	return nil
}

func (d *demo) printPods(ctx context.Context) error {
	pods, err := d.pods(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "$ kubectl get pods -o wide\n")
	w := tabwriter.NewWriter(d.out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tNODE\tAGE")
	for _, p := range pods {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Status.Phase, p.Spec.NodeName, age(p.CreationTimestamp))
	}
	return w.Flush()
}

func (d *demo) printNodes(ctx context.Context) error {
	nodes, err := d.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "$ kubectl get nodes\n")
	w := tabwriter.NewWriter(d.out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tCPU\tMEMORY\tAGE")
	for _, n := range nodes.Items {
		status := "NotReady"
		if nodeutil.IsNodeReady(&n) {
			status = "Ready"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", n.Name, status, n.Status.Allocatable.Cpu(), n.Status.Allocatable.Memory(), age(n.CreationTimestamp))
	}
	return w.Flush()
}

func age(t metav1.Time) string {
	return duration.HumanDuration(time.Since(t.Time))
}
