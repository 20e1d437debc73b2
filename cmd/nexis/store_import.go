package main

import (
	"os"

	"github.com/spf13/cobra"
)

var storeImportFlags struct {
	trusted []string
	json    bool
}

func init() {
	cmd := &cobra.Command{
		Use:   "import < FILE",
		Short: "Register the paths of an export file, if a trusted key signed them",
		Long: `Read an export file (nexis store export) from stdin and register its
paths: all of them in one atomic batch, or none. Every record must be
signed by a trusted key (<root>/etc/nexis/trusted-keys, or --trusted-key),
every archive must match its record, and every reference must be in the
store or in the file; anything else is refused and nothing registers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			stats, err := here.Import(os.Stdin, storeImportFlags.trusted...)
			if err != nil {
				return err
			}
			if storeImportFlags.json {
				return printJSON(stats)
			}
			stats.Print(os.Stderr)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&storeImportFlags.trusted, "trusted-key", nil, "also trust the public key `NAME:BASE64` (repeatable)")
	cmd.Flags().BoolVar(&storeImportFlags.json, "json", false, "print what was imported as JSON")
	storeCmd.AddCommand(cmd)
}
