package main

import (
	"os"

	"github.com/spf13/cobra"
)

func init() {
	cmd := command("log PATH-OR-NAME", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return here.WriteLog(args[0], os.Stdout)
	})
	register(rootCmd, cmd)
}
