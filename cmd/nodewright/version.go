package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print nodewright's version and the Kubernetes version it is built on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version, revision, kube := "(devel)", "unknown", "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				version = info.Main.Version
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						revision = s.Value
					}
				}
				for _, dep := range info.Deps {
					if dep.Path == "k8s.io/kubernetes" {
						kube = dep.Version
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "nodewright %s (revision %s), Kubernetes %s\n", version, revision, kube)
			return nil
		},
	}
}
