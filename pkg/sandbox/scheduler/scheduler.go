// Package scheduler runs nodewright-scheduler inside the calling process, for the sandbox and
// the integration tests. It takes the path the binary takes, kube-scheduler's app.Setup and
// app.Run with the same flags and the same plugin registry, minus the process-wide signal
// handler that app.NewSchedulerCommand installs (which can be set up only once per process).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/component-base/configz"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/plugins/provision"
)

// Registry is the plugin registry of bin/nodewright-scheduler run with the configuration
// file configFile: the Provision plugin on the EC2 cloud, simulating with the args of its
// profile's plugins there.
func Registry(configFile string) []app.Option {
	return []app.Option{app.WithPlugin(provision.Name, provision.NewWithOptions(provision.Options{NewCloud: aws.NewCloud, ConfigFile: configFile}))}
}

// configzName is the configz entry app.Run registers.
const configzName = "componentconfig"

// Options configure an in-process scheduler.
type Options struct {
	// ConfigFile is the KubeSchedulerConfiguration, as given to --config.
	ConfigFile string
	// Flags are more kube-scheduler flags. Start adds --secure-port=0 (no serving: several
	// schedulers may share a process) and --leader-elect=false unless they are given here;
	// kube-scheduler calls os.Exit when a leader-elected run ends, which would end the caller.
	Flags []string
	// Registry is the out-of-tree plugin registry; nil means Registry(ConfigFile).
	Registry []app.Option
}

// Scheduler is a running in-process scheduler.
type Scheduler struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start sets the scheduler up (reading and validating its configuration, building every
// plugin) and runs it in a goroutine until Stop or ctx ends. Configuration errors, invalid
// plugin args among them, are returned here, as the binary reports them before it exits.
func Start(ctx context.Context, opts Options) (*Scheduler, error) {
	o := options.NewOptions()
	fs := pflag.NewFlagSet("nodewright-scheduler", pflag.ContinueOnError)
	for _, f := range o.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	args := append([]string{"--config=" + opts.ConfigFile, "--secure-port=0", "--leader-elect=false"}, opts.Flags...)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("parsing scheduler flags: %w", err)
	}
	informerName, err := newInformerName()
	if err != nil {
		return nil, err
	}
	o.InformerName = informerName
	registry := opts.Registry
	if registry == nil {
		registry = Registry(opts.ConfigFile)
	}
	ctx, cancel := context.WithCancel(ctx)
	cc, sched, err := app.Setup(ctx, o, registry...)
	if err != nil {
		cancel()
		informerName.Release()
		return nil, err
	}
	s := &Scheduler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer informerName.Release()
		// app.Run registers the process-wide /configz entry and never removes it; without
		// this, the next scheduler of the process would fail to start.
		defer configz.Delete(configzName)
		err := app.Run(ctx, cc, sched)
		if ctx.Err() == nil {
			s.err = err
			klog.FromContext(ctx).Error(err, "Scheduler stopped unexpectedly")
		}
	}()
	return s, nil
}

// Stop stops the scheduler and waits for it to return. It returns the error the scheduler
// stopped with, if it stopped by itself before Stop.
func (s *Scheduler) Stop() error {
	s.cancel()
	<-s.done
	return s.err
}

// Done is closed when the scheduler has stopped.
func (s *Scheduler) Done() <-chan struct{} { return s.done }

// WriteConfig writes the KubeSchedulerConfiguration config to path with
// clientConnection.kubeconfig set to kubeconfig, and with provisionArgs (if any) set in the
// args of the Provision plugin of every profile that configures it. kube-scheduler ignores
// --kubeconfig when --config is given, so a configuration meant for in-cluster use (like
// manifests/scheduler-config.yaml) needs this to run against a sandbox. Everything else in
// the configuration is kept as written.
func WriteConfig(config []byte, path, kubeconfig string, provisionArgs map[string]any) error {
	var cfg map[string]any
	if err := sigsyaml.Unmarshal(config, &cfg); err != nil {
		return fmt.Errorf("reading the scheduler configuration: %w", err)
	}
	if cfg == nil {
		return errors.New("reading the scheduler configuration: it is empty")
	}
	conn, _ := cfg["clientConnection"].(map[string]any)
	if conn == nil {
		conn = map[string]any{}
	}
	conn["kubeconfig"] = kubeconfig
	cfg["clientConnection"] = conn
	if len(provisionArgs) > 0 {
		profiles, _ := cfg["profiles"].([]any)
		for _, p := range profiles {
			profile, _ := p.(map[string]any)
			pluginConfig, _ := profile["pluginConfig"].([]any)
			for _, pc := range pluginConfig {
				entry, _ := pc.(map[string]any)
				if entry == nil || entry["name"] != provision.Name {
					continue
				}
				args, _ := entry["args"].(map[string]any)
				if args == nil {
					args = map[string]any{}
				}
				for k, v := range provisionArgs {
					args[k] = v
				}
				entry["args"] = args
			}
		}
	}
	out, err := sigsyaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}
