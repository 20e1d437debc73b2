package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func init() {
	cmd := &cobra.Command{
		Use:   "log PATH-OR-NAME",
		Short: "Print the kept log of a build",
		Long: `Print the full log of the last build of a store path (or of anything
inside it), or of the newest build of a package named NAME (or
NAME-VERSION). Logs live under <state>/logs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := here.FindLog(args[0])
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("reading log: %w", err)
			}
			defer f.Close()
			_, err = io.Copy(cmd.OutOrStdout(), f)
			return err
		},
	}
	rootCmd.AddCommand(cmd)
}
