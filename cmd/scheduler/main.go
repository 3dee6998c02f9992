// Command nodewright-scheduler is kube-scheduler with nodewright's Provision plugin registered.
//
// It takes every kube-scheduler flag; the KubeSchedulerConfiguration passed with --config
// enables the plugin in a profile (see manifests/scheduler-config.yaml). The plugin builds
// the EC2 cloud from its args and runs the node lifecycle alongside the scheduler.
package main

import (
	"os"

	"github.com/spf13/pflag"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/plugins/provision"
)

func main() {
	opts := provision.Options{NewCloud: aws.NewCloud, ConfigFile: configFile(os.Args[1:])}
	command := app.NewSchedulerCommand(app.WithPlugin(provision.Name, provision.NewWithOptions(opts)))
	os.Exit(cli.Run(command))
}

// configFile returns the value of --config among kube-scheduler's command-line args, ""
// if there is none: the Provision plugin reads its profile's plugin args from it. The
// scheduler itself parses and validates every flag.
func configFile(args []string) string {
	fs := pflag.NewFlagSet("config", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.Usage = func() {}
	config := fs.String("config", "", "")
	// Errors (a malformed flag) are the scheduler's to report.
	_ = fs.Parse(args)
	return *config
}
