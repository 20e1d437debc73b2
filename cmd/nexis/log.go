package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func init() {
	cmd := command("log PATH-OR-NAME", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
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
	})
	register(rootCmd, cmd)
}
