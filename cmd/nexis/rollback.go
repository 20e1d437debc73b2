package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

func init() {
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Switch to the generation before the current one",
		Long: `Activate the newest generation older than the current one and make it the
boot default. Nothing is evaluated or built. Any older generation is one
command away too: nexis switch --generation N.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return switchToGenerationOf((*activate.Target).Previous, activate.ModeSwitch)
		},
	}
	addActivateFlags(cmd)
	addDryRunFlag(cmd)
	rootCmd.AddCommand(cmd)
}
