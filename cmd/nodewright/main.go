// Command nodewright is nodewright's command-line tool: `sandbox` runs a local cluster with
// nodewright-scheduler on it, `migrate` converts Karpenter objects to nodewright's, `version`
// prints what it was built from.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
)

func main() {
	// Errors are the user's to read, not log events: cli.Run would log them through klog,
	// which the sandbox may have pointed at its controller log.
	if err := cli.RunNoErrOutput(newRootCommand()); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
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
