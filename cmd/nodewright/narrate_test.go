package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func TestControllerLinesNarratesAndRemembers(t *testing.T) {
	var out bytes.Buffer
	lines := newControllerLines(newNarrator(&out))
	w := &lineWriter{onLine: lines.onLine}
	// klog's text format; one entry split over two writes, as a writer may be given it.
	write := func(s string) {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write(`I1128 04:40:58.714233   23089 round.go:163] "Computed packing of 1 node(s) for 5 pod(s) with instance type option(s) [a b c d e f g h]"` + "\n")
	mark := lines.mark()
	write(`I1128 04:41:12.680429   23089 emptiness.go:85] "Added TTL to empty node" node="n1" ttl="30s"`)
	write("\n" + `I1128 04:41:12.700000   23089 other.go:1] "Something else"` + "\n")
	write(`E1128 04:41:13.000000   23089 round.go:58] "Planning nodes" err="boom"` + "\n")

	want := `    [nodewright-scheduler 04:40:58] Computed packing of 1 node(s) for 5 pod(s) with instance type option(s) [a b c d e f ... and 2 more]` + "\n" +
		`    [nodewright-scheduler 04:41:12] Added TTL to empty node node="n1" ttl="30s"` + "\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("narration (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`04:41:13 "Planning nodes" err="boom"`}, lines.lastErrors()); diff != "" {
		t.Errorf("lastErrors (-want, +got):\n%s", diff)
	}
	if !lines.seenSince(msgComputedPacking, 0) || lines.seenSince(msgComputedPacking, mark) {
		t.Errorf("seenSince(%q): want logged before the mark only", msgComputedPacking)
	}
	if diff := cmp.Diff([]string{`"Cordoned node"`}, lines.missingSince(mark, msgAddedTTL, msgCordoned)); diff != "" {
		t.Errorf("missingSince (-want, +got):\n%s", diff)
	}
}

func TestNarratorProgressWithoutTerminal(t *testing.T) {
	var out bytes.Buffer
	n := newNarrator(&out)
	n.progress("5 pods Running", "0/5", 0)
	n.progress("5 pods Running", "0/5", 1e9) // same status: no new line
	n.progress("5 pods Running", "3/5", 2e9)
	n.endProgress()
	n.progress("5 pods Running", "3/5", 0) // a new wait shows its first status again
	want := "    waiting for 5 pods Running (0/5) 0s\n    waiting for 5 pods Running (3/5) 2s\n    waiting for 5 pods Running (3/5) 0s\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("progress lines (-want, +got):\n%s", diff)
	}
}

// TestDemoProvisionerIsTheExample keeps the demo's Provisioner the seed's, as
// manifests/examples/default.yaml has it.
func TestDemoProvisionerIsTheExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "manifests", "examples", "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var example, demo map[string]any
	doc, _, _ := strings.Cut(string(data), "\n---\n")
	if err := yaml.Unmarshal([]byte(doc), &example); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(demoProvisionerYAML), &demo); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(example, demo); diff != "" {
		t.Errorf("the demo's Provisioner differs from manifests/examples/default.yaml's (-example, +demo):\n%s", diff)
	}
}

func TestPrintLog(t *testing.T) {
	dir := t.TempDir()
	if err := printLog(t.Context(), dir, false, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no controller log") {
		t.Errorf("printLog without a log: got %v, want an error saying there is no controller log", err)
	}
	if err := os.WriteFile(controllerLogPath(dir), []byte("line 1\nline 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// With -f and no pid file, the sandbox has stopped: print everything and return.
	var out bytes.Buffer
	if err := printLog(t.Context(), dir, true, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("line 1\nline 2\n", out.String()); diff != "" {
		t.Errorf("printed (-want, +got):\n%s", diff)
	}
}
