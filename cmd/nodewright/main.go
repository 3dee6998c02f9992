// Command nodewright is nodewright's command-line tool: `sandbox` runs a local cluster with
// nodewright-scheduler on it, `migrate` converts Karpenter objects to nodewright's, `version`
// prints what it was built from.
package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
)

func main() {
	os.Exit(cli.Run(newRootCommand()))
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "nodewright",
		Short:         "nodewright provisions Kubernetes nodes from inside the scheduler",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newSandboxCommand(), newMigrateCommand(), newVersionCommand())
	return root
}
