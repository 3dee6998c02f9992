package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/sandbox"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
)

// sandboxFlags are shared by `sandbox up` and `sandbox demo`.
type sandboxFlags struct {
	dir             string
	binDir          string
	schedulerConfig string
	verbosity       int
	launchLatency   time.Duration
	joinDelay       time.Duration
	workloads       bool
}

func (f *sandboxFlags) add(cmd *cobra.Command, defaultDir string) {
	cmd.Flags().StringVar(&f.dir, "dir", defaultDir, "directory for the sandbox's state: kubeconfig, certificates, etcd data, logs (emptied at start)")
	cmd.Flags().StringVar(&f.binDir, "bin-dir", "", "directory with etcd, kube-apiserver, kube-controller-manager and kwok (default: beside this binary, or $"+sandbox.BinDirEnv+")")
	cmd.Flags().StringVar(&f.schedulerConfig, "scheduler-config", "", "KubeSchedulerConfiguration for nodewright-scheduler (default: the embedded manifests/scheduler-config.yaml)")
	cmd.Flags().IntVarP(&f.verbosity, "v", "v", 0, "scheduler log verbosity")
	// EC2 keeps an instance pending for ~10-20 s and its kubelet registers ~30 s later; the
	// sandbox keeps the order of events and the gaps between them visible, ten times faster.
	cmd.Flags().DurationVar(&f.launchLatency, "launch-latency", 2*time.Second, "how long the EC2 emulator keeps a new instance pending (EC2: ~10-20s)")
	cmd.Flags().DurationVar(&f.joinDelay, "join-delay", 3*time.Second, "how long after an instance runs the emulator registers its Node, as a kubelet would (EC2: ~30s)")
	cmd.Flags().BoolVar(&f.workloads, "workloads", false, "turn on the feature gates "+strings.Join(sandbox.WorkloadGates, ",")+
		" (off by default in Kubernetes 1.37) in the apiserver, the controller manager and nodewright-scheduler, and serve "+
		sandbox.WorkloadAPI+": Workloads, PodGroups, and the PodGroups of Jobs that ask for gang scheduling")
}

func newSandboxCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run nodewright on a local cluster: etcd, kube-apiserver, kube-controller-manager and kwok",
	}
	cmd.AddCommand(newSandboxUpCommand(), newSandboxDemoCommand(), newSandboxLogsCommand())
	return cmd
}

func newSandboxUpCommand() *cobra.Command {
	var flags sandboxFlags
	var noScheduler bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the sandbox and nodewright-scheduler, and keep them running until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			// The controller's lines go to the terminal (stderr, beside this narration on
			// stdout) as well as to the log `sandbox logs` prints.
			sb, err := startSandbox(ctx, &flags, !noScheduler, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer sb.stop(out)
			fmt.Fprintf(out, "\nThe sandbox is up. Its state and logs are in %s.\nThe EC2 emulator answers at %s; EC2NodeClass %q selects its subnets.\n\nKubeconfig: %s\n\n  export KUBECONFIG=%s\n\n",
				sb.dir, sb.emulator.URL(), defaultNodeClass, sb.cp.Kubeconfig(), sb.cp.Kubeconfig())
			if noScheduler {
				gates := ""
				if flags.workloads {
					gates = " --feature-gates=" + strings.Join(sandbox.WorkloadGates, ",")
				}
				fmt.Fprintf(out, "Run the scheduler yourself with:\n\n  bin/nodewright-scheduler --config %s%s\n\n", sb.schedulerConfig, gates)
			} else {
				fmt.Fprintf(out, "nodewright-scheduler is running; pods with schedulerName: nodewright-scheduler are its to place.\n"+
					"Its log is shown here and kept in %s (nodewright sandbox logs -f --dir %s).\n", controllerLogPath(sb.dir), sb.dir)
			}
			fmt.Fprintf(out, "Press Ctrl-C to stop everything.\n")
			<-ctx.Done()
			return nil
		},
	}
	flags.add(cmd, ".sandbox")
	cmd.Flags().BoolVar(&noScheduler, "no-scheduler", false, "start only the cluster, to run bin/nodewright-scheduler by hand")
	return cmd
}

// runningSandbox is a control plane with, optionally, the scheduler on it.
type runningSandbox struct {
	dir             string
	cp              *sandbox.ControlPlane
	emulator        *emulator.Emulator
	schedulerConfig string
	scheduler       *scheduler.Scheduler
	// log is the controller log; nil without a scheduler.
	log *os.File
}

// startSandbox prepares flags.dir, starts the control plane and, if withScheduler, the
// scheduler. The scheduler's log goes to the controller log in the sandbox's directory and,
// if logTo is not nil, to logTo as well.
func startSandbox(ctx context.Context, flags *sandboxFlags, withScheduler bool, logTo io.Writer) (_ *runningSandbox, err error) {
	dir, err := prepareDir(flags.dir)
	if err != nil {
		return nil, err
	}
	cp, err := sandbox.Start(ctx, sandbox.Options{BinDir: flags.binDir, Dir: dir, Workloads: flags.workloads})
	if err != nil {
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	sb := &runningSandbox{dir: dir, cp: cp, schedulerConfig: filepath.Join(dir, "scheduler-config.yaml")}
	defer func() {
		if err != nil {
			sb.stop(io.Discard)
		}
	}()
	if err := sandbox.InstallCRDs(ctx, cp.RESTConfig(), manifests.CRDs()...); err != nil {
		return nil, fmt.Errorf("installing nodewright's CRDs: %w", err)
	}
	sb.emulator = emulator.New(emulator.Options{
		RESTConfig:    cp.RESTConfig(),
		LaunchLatency: flags.launchLatency,
		JoinDelay:     flags.joinDelay,
	})
	if err := sb.emulator.Start(); err != nil {
		return nil, fmt.Errorf("starting the EC2 emulator: %w", err)
	}
	if err := createDefaultNodeClass(ctx, cp.RESTConfig()); err != nil {
		return nil, err
	}
	config := manifests.SchedulerConfig
	if flags.schedulerConfig != "" {
		if config, err = os.ReadFile(flags.schedulerConfig); err != nil {
			return nil, err
		}
	}
	// The plugin talks to the emulator, for the cluster the emulator's subnets are tagged for,
	// and its nodes join the sandbox's apiserver.
	provisionArgs := map[string]any{"clusterName": emulator.DefaultClusterName, "region": emulator.Region, "endpoint": sb.emulator.URL(),
		"clusterEndpoint": cp.RESTConfig().Host, "clusterCA": base64.StdEncoding.EncodeToString(cp.RESTConfig().CAData),
		"clusterCIDR": cp.ServiceCIDR()}
	if err := scheduler.WriteConfig(config, sb.schedulerConfig, cp.Kubeconfig(), provisionArgs); err != nil {
		return nil, err
	}
	if !withScheduler {
		return sb, nil
	}
	if sb.log, err = os.Create(controllerLogPath(dir)); err != nil {
		return nil, err
	}
	var w io.Writer = sb.log
	if logTo != nil {
		w = io.MultiWriter(sb.log, logTo)
	}
	if err := logControllerTo(w, flags.verbosity); err != nil {
		return nil, err
	}
	opts := scheduler.Options{ConfigFile: sb.schedulerConfig}
	if flags.workloads {
		opts.Flags = []string{"--feature-gates=" + strings.Join(sandbox.WorkloadGates, ",")}
	}
	sb.scheduler, err = scheduler.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("starting nodewright-scheduler: %w", err)
	}
	return sb, nil
}

func (sb *runningSandbox) stop(out io.Writer) {
	fmt.Fprintln(out, "Stopping the sandbox...")
	if sb.scheduler != nil {
		_ = sb.scheduler.Stop()
	}
	if sb.emulator != nil {
		sb.emulator.Close()
	}
	sb.cp.Stop()
	if sb.log != nil {
		logToStderr()
		_ = sb.log.Close()
	}
	_ = os.Remove(filepath.Join(sb.dir, pidFile))
	fmt.Fprintln(out, "Stopped.")
}

const pidFile = "sandbox.pid"

// prepareDir empties dir for a new sandbox, after checking that no live sandbox uses it: its
// etcd data and certificates belong to that sandbox, and deleting them would break it.
func prepareDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if data, err := os.ReadFile(filepath.Join(dir, pidFile)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && processAlive(pid) {
			return "", fmt.Errorf("a sandbox (pid %d) is already running in %s: stop it, or pass another --dir", pid, dir)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
