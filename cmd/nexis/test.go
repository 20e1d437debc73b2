package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

func init() {
	cmd := &cobra.Command{
		Use:  "test [CONFIG]",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return switchConfig(args, activate.ModeTest)
		},
	}
	cmd.Flags().IntVarP(&actFlags.jobs, "jobs", "j", 0, "run `N` builds at once (default: the number of cores)")
	addActivateFlags(cmd)
	addEvalFlags(cmd)
	addEvalCacheFlag(cmd)
	register(rootCmd, cmd)
}
