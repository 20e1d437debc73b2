package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func init() {
	cmd := &cobra.Command{
		Use:  "log PATH-OR-NAME",
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
	register(rootCmd, cmd)
}
