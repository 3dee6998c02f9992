// Command nodewright-scheduler is kube-scheduler with nodewright's Provision plugin registered.
//
// It takes every kube-scheduler flag; the KubeSchedulerConfiguration passed with --config
// enables the plugin in a profile (see manifests/scheduler-config.yaml).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/nodewright/nodewright/pkg/plugins/provision"
)

func main() {
	command := app.NewSchedulerCommand(app.WithPlugin(provision.Name, provision.New))
	os.Exit(cli.Run(command))
}
