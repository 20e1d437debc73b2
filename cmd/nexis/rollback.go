package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

func init() {
	cmd := command("rollback", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return switchToGenerationOf((*activate.Target).Previous, activate.ModeSwitch)
	})
	addActivateFlags(cmd)
	addDryRunFlag(cmd)
	register(rootCmd, cmd)
}
