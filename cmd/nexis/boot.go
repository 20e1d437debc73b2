package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

func init() {
	cmd := &cobra.Command{
		Use:   "boot [CONFIG]",
		Short: "Build the config and make it the boot default, without activating it now",
		Long: `Evaluate and realise the config, record it as a generation and make it
the default entry of the boot menu; the running system is left as it is
until the next boot.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return switchConfig(args, activate.ModeBoot)
		},
	}
	cmd.Flags().IntVarP(&actFlags.jobs, "jobs", "j", 0, "run `N` builds at once (default: the number of cores)")
	addActivateFlags(cmd)
	addEvalFlags(cmd)
	addEvalCacheFlag(cmd)
	rootCmd.AddCommand(cmd)
}
