package main

import (
	"os"

	"github.com/spf13/cobra"
)

var storeImportFlags struct{ trusted []string }

func init() {
	cmd := command("import < FILE", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		stats, err := here.Import(os.Stdin, storeImportFlags.trusted...)
		if err != nil || asJSON {
			return show(stats, err)
		}
		stats.Print(os.Stderr)
		return nil
	})
	cmd.Flags().StringArrayVar(&storeImportFlags.trusted, "trusted-key", nil, "also trust the public key `NAME:BASE64` (repeatable)")
	jsonFlag(cmd, "print what was imported as JSON")
	register(storeCmd, cmd)
}
