// Command nodewright-scheduler is kube-scheduler with nodewright's Provision plugin registered.
//
// It takes every kube-scheduler flag; the KubeSchedulerConfiguration passed with --config
// enables the plugin in a profile (see manifests/scheduler-config.yaml). The plugin builds
// the EC2 cloud from its args and runs the node lifecycle alongside the scheduler.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/nodewright/nodewright/pkg/aws"
	"github.com/nodewright/nodewright/pkg/plugins/provision"
)

func main() {
	command := app.NewSchedulerCommand(app.WithPlugin(provision.Name, provision.NewWithOptions(provision.Options{NewCloud: aws.NewCloud})))
	os.Exit(cli.Run(command))
}
