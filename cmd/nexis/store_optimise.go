package main

import (
	"github.com/spf13/cobra"
)

var storeOptimiseFlags struct{ dryRun bool }

func init() {
	cmd := &cobra.Command{
		Use:     "optimise",
		Aliases: []string{"optimize"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
		},
	}
	jsonFlag(cmd, "print JSON")
	cmd.Flags().BoolVar(&storeOptimiseFlags.dryRun, "dry-run", false, "count what would be shared, and change nothing")
	register(storeCmd, cmd)
}
