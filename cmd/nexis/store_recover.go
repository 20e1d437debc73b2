package main

import (
	"os"

	"github.com/spf13/cobra"
)

var storeRecoverFlags struct{ json bool }

func init() {
	cmd := &cobra.Command{
		Use:  "recover",
		Args: cobra.NoArgs,
		RunE: runStoreRecover,
	}
	cmd.Flags().BoolVar(&storeRecoverFlags.json, "json", false, "print the report as JSON")
	register(storeCmd, cmd)
}

func runStoreRecover(cmd *cobra.Command, args []string) error {
	rep, err := here.Recover(os.Stderr, progressFunc("scanning"))
	if err != nil {
		return err
	}
	if storeRecoverFlags.json {
		return printJSON(rep)
	}
	rep.Print(os.Stdout, os.Stderr, here.StoreDir())
	return nil
}
