package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/kubernetes/test/utils/ktesting"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestSandboxUpSeedTutorialWithKubectl follows the seed tutorial by hand: it starts
// `nodewright sandbox up` as a user does, takes the kubeconfig it prints, and drives every
// step with kubectl (apply the Provisioner of manifests/examples/default.yaml and the inflate
// Deployment, scale to 5, watch the pods run on a new spot node, scale to 0, watch the node
// go), reading the controller's lines with `nodewright sandbox logs -f` meanwhile. Then
// Ctrl-C must stop everything, exit 0, and leave no process behind.
func TestSandboxUpSeedTutorialWithKubectl(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	cli := framework.Binary(t, "nodewright")
	dir := filepath.Join(t.TempDir(), "sandbox")
	up := exec.Command(cli, "sandbox", "up", "--dir", dir, "--bin-dir", filepath.Dir(cli))
	// The terminal of `up` shows the controller's lines on stderr.
	upStderr, err := os.Create(filepath.Join(t.TempDir(), "up.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer upStderr.Close()
	up.Stderr = upStderr
	kubeconfig, children := startSandboxUp(t, up)

	// `sandbox logs -f` follows the controller log until the sandbox stops.
	follow := exec.Command(cli, "sandbox", "logs", "-f", "--dir", dir)
	var followed bytes.Buffer
	follow.Stdout, follow.Stderr = &followed, &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill() })

	k := kubectl{t: t, bin: framework.Binary(t, "kubectl"), kubeconfig: kubeconfig}
	k.run(provisionerOf(t, filepath.Join(framework.RepoRoot(t), "manifests", "examples", "default.yaml")), "apply", "-f", "-")
	k.run("", "apply", "-f", filepath.Join(framework.RepoRoot(t), "manifests", "inflate.yaml"))
	k.run("", "scale", "deployment", "inflate", "--replicas", "5")
	framework.Eventually(ctx, t, 2*time.Minute, "5 inflate pods Running on one Ready spot node", func(context.Context) (bool, error) {
		pods := k.rows("get", "pods", "-l", "app=inflate", "-o", "wide")
		nodes := k.rows("get", "nodes", "-L", "nodewright.dev/capacity-type")
		return countColumn(pods, 2, "Running") == 5 && len(nodes) == 1 && nodes[0][1] == "Ready" && nodes[0][5] == "spot", nil
	})
	t.Logf("kubectl get nodeclaims,nodes,pods:\n%s", k.run("", "get", "nodeclaims,nodes,pods", "-o", "wide"))
	logs := k.sandboxLogs(cli, dir)
	for _, line := range []string{"Computed packing of 1 node(s) for 5 pod(s) with instance type option(s) [", "Launched instance: i-"} {
		if !strings.Contains(logs, line) {
			t.Errorf("`nodewright sandbox logs` has no %q; it printed:\n%s", line, logs)
		}
	}

	k.run("", "scale", "deployment", "inflate", "--replicas", "0")
	framework.Eventually(ctx, t, 2*time.Minute, "the node to be removed", func(context.Context) (bool, error) {
		return len(k.rows("get", "nodes")) == 0 && len(k.rows("get", "nodeclaims")) == 0, nil
	})

	interruptAndCheck(t, up, children, 0)
	if left := processesUsing(dir); len(left) > 0 {
		t.Errorf("processes of the sandbox still running after Ctrl-C: %v", left)
	}
	done := make(chan error, 1)
	go func() { done <- follow.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sandbox logs -f: %v\n%s", err, followed.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("`sandbox logs -f` did not end within 30s of the sandbox stopping")
	}
	stderr, err := os.ReadFile(upStderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Launched instance: i-", "Added TTL to empty node", "Triggering termination after 30s for empty node", "Cordoned node", "Deleted node"} {
		if !strings.Contains(followed.String(), line) {
			t.Errorf("`nodewright sandbox logs -f` printed no %q; it printed:\n%s", line, followed.String())
		}
		if !strings.Contains(string(stderr), line) {
			t.Errorf("the terminal of `sandbox up` showed no %q; its stderr:\n%s", line, stderr)
		}
	}
}

// startSandboxUp starts cmd (`sandbox up`), waits until it says it is ready, and returns the
// kubeconfig it printed and the pids of its control-plane processes.
func startSandboxUp(t *testing.T, cmd *exec.Cmd) (string, []int) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var kubeconfig string
	ready := make(chan error, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			line := strings.TrimSpace(scanner.Text())
			if path, ok := strings.CutPrefix(line, "export KUBECONFIG="); ok {
				kubeconfig = path
			}
			if strings.HasPrefix(line, "Press Ctrl-C") {
				ready <- nil
				for scanner.Scan() { // keep draining so the child never blocks on a full pipe
				}
				return
			}
		}
		ready <- fmt.Errorf("exited before saying it was ready (%v)", scanner.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("sandbox up %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("sandbox up did not say it was ready within 2m")
	}
	if kubeconfig == "" {
		t.Fatal("sandbox up printed no `export KUBECONFIG=` line")
	}
	var children []int
	framework.Eventually(ctx, t, 10*time.Second, "the control-plane processes", func(context.Context) (bool, error) {
		children = descendants(cmd.Process.Pid)
		return len(names(children)) == 4, nil
	})
	return kubeconfig, children
}

// kubectl runs bin/kubectl as a user would after `export KUBECONFIG=...`.
type kubectl struct {
	t          *testing.T
	bin        string
	kubeconfig string
}

// run runs kubectl with stdin and returns its stdout, failing the test if it fails.
func (k kubectl) run(stdin string, args ...string) string {
	k.t.Helper()
	cmd := exec.Command(k.bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// rows runs a kubectl get and returns its table's rows without the header, split into columns.
func (k kubectl) rows(args ...string) [][]string {
	k.t.Helper()
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(k.run("", append(args, "--no-headers")...)), "\n") {
		if fields := strings.Fields(line); len(fields) > 0 {
			rows = append(rows, fields)
		}
	}
	return rows
}

// sandboxLogs returns what `nodewright sandbox logs --dir dir` prints.
func (k kubectl) sandboxLogs(cli, dir string) string {
	k.t.Helper()
	out, err := exec.Command(cli, "sandbox", "logs", "--dir", dir).CombinedOutput()
	if err != nil {
		k.t.Fatalf("nodewright sandbox logs: %v\n%s", err, out)
	}
	return string(out)
}

// countColumn counts the rows whose column col is value.
func countColumn(rows [][]string, col int, value string) int {
	n := 0
	for _, r := range rows {
		if len(r) > col && r[col] == value {
			n++
		}
	}
	return n
}

// provisionerOf returns, as YAML, the Provisioner of a manifest file. The file's
// EC2NodeClass is left out: the sandbox has made one for the emulator's subnets.
func provisionerOf(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range decodeManifests(t, data) {
		if obj.GetKind() == "Provisioner" {
			out, err := yaml.Marshal(obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
	}
	t.Fatalf("%s has no Provisioner", path)
	return ""
}

// processesUsing returns the control-plane processes whose command line names dir: every
// etcd, kube-apiserver, kube-controller-manager and kwok of a sandbox in dir does.
func processesUsing(dir string) map[int]string {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(cmdline), dir) {
			pids = append(pids, pid)
		}
	}
	return alivePIDs(pids)
}
