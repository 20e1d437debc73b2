package main

import (
	"os"

	"github.com/spf13/cobra"
)

func init() {
	cmd := command("recover", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		rep, err := here.Recover(os.Stderr, progressFunc("scanning"))
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(rep)
		}
		rep.Print(os.Stdout, os.Stderr, here.StoreDir())
		return nil
	})
	jsonFlag(cmd, "print the report as JSON")
	register(storeCmd, cmd)
}
