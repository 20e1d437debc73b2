package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

func init() {
	cmd := &cobra.Command{
		Use:  "rollback",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return switchToGenerationOf((*activate.Target).Previous, activate.ModeSwitch)
		},
	}
	addActivateFlags(cmd)
	addDryRunFlag(cmd)
	register(rootCmd, cmd)
}
