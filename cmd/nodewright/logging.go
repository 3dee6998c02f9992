package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"k8s.io/klog/v2"
)

// controllerLog is the file in the sandbox's directory that holds everything the in-process
// nodewright-scheduler (the Provision plugin and the lifecycle) logs; `sandbox logs` prints it.
const controllerLog = "nodewright.log"

// logControllerTo sends klog's output, which the in-process scheduler logs through, to w
// only, at the given verbosity. Each severity is written once (--one_output) and nothing
// goes to stderr behind w's back, so w sees every line exactly once.
//
// kube-scheduler's app.Setup does not apply its --v flag (its command's run function does,
// and the in-process scheduler does not go through it), so the verbosity is set here.
func logControllerTo(w io.Writer, verbosity int) error {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if err := fs.Parse([]string{"--logtostderr=false", "--alsologtostderr=false", "--stderrthreshold=FATAL",
		"--one_output=true", "--v=" + strconv.Itoa(verbosity)}); err != nil {
		return err
	}
	klog.SetOutput(w)
	return nil
}

// logToStderr sends klog's output back to stderr, klog's default, once the controller log
// is closed: what is logged after the sandbox stops must not be lost in a closed file.
func logToStderr() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Parse([]string{"--logtostderr=true"}) // a valid, constant argument
	klog.SetOutput(os.Stderr)
}

func controllerLogPath(dir string) string {
	return filepath.Join(dir, controllerLog)
}

// lineWriter calls onLine with each complete line written to it (without its newline).
// klog writes one entry per Write, but a writer must not count on that.
type lineWriter struct {
	mu      sync.Mutex
	pending []byte
	onLine  func(line string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		line := string(w.pending[:i])
		w.pending = w.pending[i+1:]
		w.onLine(line)
	}
	return len(p), nil
}
