package main

import (
	"github.com/spf13/cobra"

	"github.com/nodewright/nodewright/pkg/migrate"
)

func newMigrateCommand() *cobra.Command {
	opts := migrate.Options{}
	cmd := &cobra.Command{
		Use:   "migrate -f FILE [-f FILE ...] [--strict]",
		Short: "Convert Karpenter Provisioners, NodePools and EC2NodeClasses to nodewright's API",
		Long: `Convert Karpenter objects to nodewright's: karpenter.sh/v1alpha5 Provisioners (with an
inline provider or a providerRef to a karpenter.k8s.aws/v1alpha1 AWSNodeTemplate), and
karpenter.sh/v1 NodePools with karpenter.k8s.aws/v1 EC2NodeClasses, become nodewright.dev/v1alpha1
Provisioners and EC2NodeClasses, written to stdout as YAML, with Karpenter's label keys
(karpenter.sh/capacity-type, karpenter.k8s.aws/instance-family, ...) mapped to nodewright's.

Every field that cannot be carried over is reported on stderr with its path and the reason;
with --strict that is an error and nothing is written.`,
		Example: `  kubectl get provisioners.karpenter.sh -o yaml | nodewright migrate -f - | kubectl apply -f -
  nodewright migrate -f nodepool.yaml -f ec2nodeclass.yaml --strict > nodewright.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Stdin, opts.Stdout, opts.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			return migrate.Run(opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Files, "filename", "f", nil, "file of Karpenter objects to convert, - for stdin (repeatable)")
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "fail, writing nothing, if any field cannot be carried over")
	return cmd
}
