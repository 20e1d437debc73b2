package main

import (
	"os"

	"github.com/spf13/cobra"
)

var storeOptimiseFlags struct{ json, dryRun bool }

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
			rep, err := s.Optimise(storeOptimiseFlags.dryRun, progressFunc("optimising"))
			if err != nil {
				return err
			}
			if storeOptimiseFlags.json {
				if err := printJSON(rep); err != nil {
					return err
				}
			} else {
				rep.Print(os.Stdout)
			}
			return s.Close()
		},
	}
	cmd.Flags().BoolVar(&storeOptimiseFlags.json, "json", false, "print JSON")
	cmd.Flags().BoolVar(&storeOptimiseFlags.dryRun, "dry-run", false, "count what would be shared, and change nothing")
	register(storeCmd, cmd)
}
