package main

import (
	"github.com/spf13/cobra"
)

var storeOptimiseFlags struct{ dryRun bool }

func init() {
	cmd := command("optimise", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		open := here.OpenStore
		if storeOptimiseFlags.dryRun {
			open = here.OpenStoreRead
		}
		s, err := open()
		if err != nil {
			return err
		}
		defer s.Close()
		if err := show(s.Optimise(storeOptimiseFlags.dryRun, progressFunc("optimising"))); err != nil {
			return err
		}
		return s.Close()
	})
	cmd.Aliases = []string{"optimize"}
	jsonFlag(cmd, "print JSON")
	cmd.Flags().BoolVar(&storeOptimiseFlags.dryRun, "dry-run", false, "count what would be shared, and change nothing")
	register(storeCmd, cmd)
}
