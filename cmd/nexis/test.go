package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

func init() {
	cmd := &cobra.Command{
		Use:   "test [CONFIG]",
		Short: "Build the config and activate it now, without making it the boot default",
		Long: `Evaluate and realise the config and activate it on the root, without
recording a generation or touching the boot menu: the next boot brings
back the current generation (A/B: test the new side, then switch).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return switchConfig(args, activate.ModeTest)
		},
	}
	cmd.Flags().IntVarP(&actFlags.jobs, "jobs", "j", 0, "run `N` builds at once (default: the number of cores)")
	addActivateFlags(cmd)
	addEvalFlags(cmd)
	addEvalCacheFlag(cmd)
	rootCmd.AddCommand(cmd)
}
