package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/nodewright/nodewright/test/integration/framework"
)

// The tests here prove that no etcd, kube-apiserver, kube-controller-manager or kwok outlives
// what started it: a test binary or `nodewright sandbox up`, stopped by Ctrl-C (SIGINT) or
// killed outright.

// helperEnv makes the test binary, run by a test below, start its control plane and block
// in TestHelperBlockUntilSignal until it is signalled.
const helperEnv = "NODEWRIGHT_TEST_HELPER"

func TestHelperBlockUntilSignal(t *testing.T) {
	if os.Getenv(helperEnv) != "block" {
		t.Skip("runs only as the child of TestTestBinaryInterruptStopsControlPlane")
	}
	fmt.Println("helper ready")
	select {}
}

func TestTestBinaryInterruptStopsControlPlane(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBlockUntilSignal$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=block")
	children := startAndWaitFor(t, cmd, "helper ready")
	interruptAndCheck(t, cmd, children, 130)
}

func TestSandboxUpInterruptStopsEverything(t *testing.T) {
	cmd := sandboxUp(t)
	children := startAndWaitFor(t, cmd, "Press Ctrl-C")
	interruptAndCheck(t, cmd, children, 0)
}

func TestSandboxUpKilledLeavesNothing(t *testing.T) {
	cmd := sandboxUp(t)
	children := startAndWaitFor(t, cmd, "Press Ctrl-C")
	// SIGKILL cannot be caught: only the kernel's parent-death signal stops the children.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, children)
}

func sandboxUp(t *testing.T) *exec.Cmd {
	t.Helper()
	cli := framework.Binary(t, "nodewright")
	return exec.Command(cli, "sandbox", "up", "--dir", filepath.Join(t.TempDir(), "sandbox"), "--bin-dir", filepath.Dir(cli))
}

// startAndWaitFor starts cmd, waits until its stdout says ready, and returns the pids of the
// four control-plane processes it started.
func startAndWaitFor(t *testing.T, cmd *exec.Cmd, ready string) []int {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
	}()
	timeout := time.After(2 * time.Minute)
	for seen := false; !seen; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before saying %q", cmd.Path, ready)
			}
			seen = strings.Contains(line, ready)
		case <-timeout:
			t.Fatalf("%s did not say %q within 2m", cmd.Path, ready)
		}
	}
	go func() {
		for range lines { // keep draining so the child never blocks on a full pipe
		}
	}()
	var children []int
	framework.Eventually(ctx, t, 10*time.Second, "the control-plane processes", func(context.Context) (bool, error) {
		children = descendants(cmd.Process.Pid)
		return len(names(children)) == 4, nil
	})
	t.Logf("control plane of pid %d: %v", cmd.Process.Pid, names(children))
	return children
}

// interruptAndCheck sends SIGINT as a terminal's Ctrl-C would, and checks that cmd exits
// with wantCode and that every child is gone once it has.
func interruptAndCheck(t *testing.T, cmd *exec.Cmd, children []int, wantCode int) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("no exit within 1m of SIGINT")
	}
	if got := cmd.ProcessState.ExitCode(); got != wantCode {
		t.Errorf("exit code after SIGINT = %d, want %d", got, wantCode)
	}
	// Stop waits for every child before returning, so nothing may be left even briefly.
	if alive := alivePIDs(children); len(alive) > 0 {
		t.Errorf("processes still running after exit: %v", alive)
	}
}

// waitGone waits for the kernel to deliver the parent-death signal to every pid.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	framework.Eventually(ctx, t, 10*time.Second, "the orphaned processes to die", func(context.Context) (bool, error) {
		return len(alivePIDs(pids)) == 0, nil
	})
}

// controlPlaneNames are the executables a sandbox starts.
var controlPlaneNames = map[string]bool{"etcd": true, "kube-apiserver": true, "kube-controller-manager": true, "kwok": true}

// descendants returns the pids whose parent is pid.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := stat(child); ok && ppid == pid {
			pids = append(pids, child)
		}
	}
	return pids
}

// names maps the control-plane pids among pids to their executable names, read from argv[0]
// (the kernel's comm is cut at 15 characters: "kube-controller").
func names(pids []int) map[int]string {
	out := map[int]string{}
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if name := filepath.Base(argv0); controlPlaneNames[name] {
			out[pid] = name
		}
	}
	return out
}

// alivePIDs returns those of pids that still run a control-plane executable (a zombie or a
// reused pid does not count).
func alivePIDs(pids []int) map[int]string {
	alive := map[int]string{}
	for pid, name := range names(pids) {
		if state, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil && !strings.Contains(string(state), "State:\tZ") {
			alive[pid] = name
		}
	}
	return alive
}

// stat reads a process's parent pid from /proc/<pid>/stat.
func stat(pid int) (ppid int, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(data)
	// The command name in parentheses may hold spaces; the fields after it do not.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, err == nil
}
