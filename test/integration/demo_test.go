package integration

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/nodewright/nodewright/test/integration/framework"
)

// demoTimeout bounds `sandbox demo`, which promises to finish in under 3 minutes on a warm
// machine; the test allows for a busy one.
const demoTimeout = 5 * time.Minute

// TestSandboxDemo runs `nodewright sandbox demo` as `make demo` does, in a sandbox of its own
// beside the suite's, and checks that it exits 0 after narrating every step of the seed
// tutorial, in order, and leaves no process behind.
func TestSandboxDemo(t *testing.T) {
	cli := framework.Binary(t, "nodewright")
	dir := filepath.Join(t.TempDir(), "sandbox")
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "sandbox", "demo", "--dir", dir, "--bin-dir", filepath.Dir(cli))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("sandbox demo: %v after %s\nstdout:\n%s\nstderr:\n%s", err, time.Since(start).Round(time.Second), stdout.String(), stderr.String())
	}
	t.Logf("sandbox demo exited 0 in %s", time.Since(start).Round(time.Second))
	out := stdout.String()

	// What the demo must have shown, in this order: each step, the controller's operator-facing
	// lines, the tables, the price.
	want := []string{
		`==> Step 1: apply the Provisioner`,
		`(?m)^  ttlSecondsAfterEmpty: 30$`,
		`provisioner.nodewright.dev/default created`,
		`deployment.apps/inflate created`,
		`kubectl scale deployment inflate --replicas 5`,
		`waiting for 5 pods Running \([0-5]/5\)`,
		`Computed packing of 1 node\(s\) for 5 pod\(s\) with instance type option\(s\) \[[a-z0-9.-]+ `,
		`Launched instance: i-[0-9a-f]{17}, hostname: ip-[0-9-]+\.ec2\.internal, type: [a-z0-9.-]+, zone: us-east-1[a-f], capacityType: spot`,
		`(?m)^\$ kubectl get nodes .*\nNAME +STATUS .*\nip-\S+ +Ready `,
		`(?m)^(inflate-\S+ +1/1 +Running .*\n){5}`,
		`a spot [a-z0-9.-]+ in us-east-1[a-f]: \$[0-9]+\.[0-9]{4}/hour at the emulator's spot price`,
		`kubectl scale deployment inflate --replicas 0`,
		`Added TTL to empty node`,
		`Triggering termination after 30s for empty node`,
		`Cordoned node`,
		`Deleted node`,
		`Demo complete in .*: every step happened\.`,
		`Stopped\.`,
	}
	rest := out
	for _, w := range want {
		loc := regexp.MustCompile(w).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("the demo's output has no %q after the lines before it; its output:\n%s\nstderr:\n%s", w, out, stderr.String())
		}
		rest = rest[loc[1]:]
	}
	if left := processesUsing(dir); len(left) > 0 {
		t.Errorf("processes of the demo's sandbox still running after it exited: %v", left)
	}
}
