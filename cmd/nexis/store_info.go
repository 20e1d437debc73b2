package main

import (
	"os"

	"github.com/spf13/cobra"
)

var storeInfoFlags struct{ json bool }

func init() {
	cmd := &cobra.Command{
		Use:  "info",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := here.OpenStoreRead()
			if err != nil {
				return err
			}
			defer s.Close()
			info, err := s.Info()
			if err != nil {
				return err
			}
			if storeInfoFlags.json {
				return printJSON(info)
			}
			info.Print(os.Stdout)
			return nil
		},
	}
	cmd.Flags().BoolVar(&storeInfoFlags.json, "json", false, "print JSON")
	register(storeCmd, cmd)
}
