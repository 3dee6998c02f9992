package main

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	nodeutil "k8s.io/kubernetes/pkg/util/node"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// The tables below have the columns kubectl prints for the same command, so that the demo
// reads like the tutorial done by hand.

// nodeLabelColumns are the labels `kubectl get nodes -L ...` adds as columns in the demo.
var nodeLabelColumns = []string{corev1.LabelInstanceTypeStable, v1alpha1.LabelCapacityType, corev1.LabelTopologyZone}

func podsTable(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "$ kubectl get pods -o wide\nNo resources found in " + demoNamespace + " namespace.\n"
	}
	return table("kubectl get pods -o wide", []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE"},
		len(pods), func(i int) []string {
			p := pods[i]
			ready, restarts := 0, int32(0)
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					ready++
				}
				restarts += cs.RestartCount
			}
			status := string(p.Status.Phase)
			if p.DeletionTimestamp != nil {
				status = "Terminating"
			}
			return []string{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), status, fmt.Sprint(restarts),
				age(p.CreationTimestamp), orNone(p.Status.PodIP), orNone(p.Spec.NodeName), orNone(p.Status.NominatedNodeName)}
		})
}

func nodesTable(nodes []corev1.Node) string {
	command := "kubectl get nodes -L " + strings.Join(nodeLabelColumns, ",")
	if len(nodes) == 0 {
		return "$ " + command + "\nNo resources found\n"
	}
	header := []string{"NAME", "STATUS", "ROLES", "AGE", "VERSION"}
	for _, l := range nodeLabelColumns {
		header = append(header, strings.ToUpper(l[strings.LastIndexByte(l, '/')+1:]))
	}
	return table(command, header, len(nodes), func(i int) []string {
		n := &nodes[i]
		status := "NotReady"
		if nodeutil.IsNodeReady(n) {
			status = "Ready"
		}
		if n.Spec.Unschedulable {
			status += ",SchedulingDisabled"
		}
		row := []string{n.Name, status, "<none>", age(n.CreationTimestamp), n.Status.NodeInfo.KubeletVersion}
		for _, l := range nodeLabelColumns {
			row = append(row, n.Labels[l])
		}
		return row
	})
}

func nodeClaimsTable(claims []v1alpha1.NodeClaim) string {
	if len(claims) == 0 {
		return "$ kubectl get nodeclaims\nNo resources found\n"
	}
	return table("kubectl get nodeclaims", []string{"NAME", "TYPE", "ZONE", "CAPACITY", "NODE", "READY", "AGE"},
		len(claims), func(i int) []string {
			nc := &claims[i]
			ready := ""
			for _, c := range nc.Status.Conditions {
				if c.Type == v1alpha1.ConditionInitialized {
					ready = string(c.Status)
				}
			}
			return []string{nc.Name, nc.Status.InstanceType, nc.Status.Zone, nc.Status.CapacityType, nc.Status.NodeName, ready, age(nc.CreationTimestamp)}
		})
}

// table renders a command and its output: a header and n rows, aligned as kubectl aligns them.
func table(command string, header []string, n int, row func(i int) []string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "$ %s\n", command)
	w := tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for i := range n {
		fmt.Fprintln(w, strings.Join(row(i), "\t"))
	}
	_ = w.Flush() // writes to a bytes.Buffer, which does not fail
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func age(t metav1.Time) string {
	return duration.HumanDuration(time.Since(t.Time))
}
