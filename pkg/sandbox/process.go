package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM before it is killed.
const stopGrace = 10 * time.Second

// processSpec is what starts one control-plane binary and tells when it is healthy. Its
// process keeps it, so that the binary can be started again the same way (RestartAPIServer).
type processSpec struct {
	name    string
	bin     string
	args    []string
	timeout time.Duration // bounds the wait for healthy
	healthy func(context.Context) error
}

// process is one control-plane binary the sandbox runs.
type process struct {
	spec    processSpec
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, valid once done is closed
}

// spawner starts child processes from one goroutine locked to its OS thread. The children
// are started with Pdeathsig, which the kernel delivers when the *thread* that forked them
// exits; Go may retire an ordinary thread at any time, so starting from a locked thread that
// lives as long as the sandbox is what makes "killed when we die" dependable.
type spawner struct {
	requests chan spawnRequest
	stopped  chan struct{}
}

type spawnRequest struct {
	cmd    *exec.Cmd
	result chan error
}

func newSpawner() *spawner {
	s := &spawner{requests: make(chan spawnRequest), stopped: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		// The goroutine never unlocks: when it returns, the runtime ends the thread too, and
		// the kernel signals every child still running.
		defer close(s.stopped)
		for req := range s.requests {
			req.result <- req.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	result := make(chan error, 1)
	s.requests <- spawnRequest{cmd: cmd, result: result}
	return <-result
}

// close ends the spawner's thread; children still running are killed by the kernel.
func (s *spawner) close() {
	close(s.requests)
	<-s.stopped
}

// startProcess runs spec's binary with its args, its output appended to logDir/name.log: a
// process started again appends to the log of the one before.
func (s *spawner) startProcess(spec processSpec, logDir string) (*process, error) {
	name := spec.name
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	cmd := exec.Command(spec.bin, spec.args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a terminal's Ctrl-C reaches us, not the children directly,
		// so we stop them in order; and Stop can signal the whole group.
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := s.start(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{spec: spec, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("exited")
		}
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after stopGrace, and waits for it.
func (p *process) stop() {
	if done, _ := p.exited(); done {
		return
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
	// Anything the process itself started in its group goes too.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
}
