package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nexisos/nexis/store/cache"
)

// nexis store export, import and serve: store paths to and from other
// machines.
var transferFlags struct {
	signKey, compression, exceptFrom string
	closure, stdio                   bool
	trusted                          []string
}

func init() {
	export := command("export PATH... > FILE", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return fmt.Errorf("refusing to write an export file to a terminal: redirect stdout to a file")
		}
		key, err := loadSignKey(transferFlags.signKey)
		if err != nil {
			return err
		}
		f := transferFlags
		return here.Export(os.Stdout, args, f.closure, f.exceptFrom, cache.ExportOptions{
			Key:         key,
			Compression: f.compression,
			Progress:    newProgress("exporting").Transfer(),
		})
	})
	f := export.Flags()
	signKeyFlag(export, &transferFlags.signKey)
	f.StringVar(&transferFlags.compression, "compression", "zstd", "compress archives with `METHOD`: zstd or none")
	f.BoolVarP(&transferFlags.closure, "recursive", "r", false, "export the closure of the paths")
	f.StringVar(&transferFlags.exceptFrom, "except-from", "", "leave out the store paths listed in `FILE` (- for stdin), one a line: the receiver has them")
	f.MarkHidden("except-from")
	imp := command("import < FILE", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		stats, err := here.Import(os.Stdin, transferFlags.trusted...)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stats)
		}
		stats.Print(os.Stderr)
		return nil
	})
	imp.Flags().StringArrayVar(&transferFlags.trusted, "trusted-key", nil, "also trust the public key `NAME:BASE64` (repeatable)")
	jsonFlag(imp, "print what was imported as JSON")
	serve := command("serve --stdio", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		if !transferFlags.stdio {
			return fmt.Errorf("serve speaks only on stdin/stdout: pass --stdio")
		}
		return here.Serve(os.Stdin, os.Stdout, os.Getenv("NEXIS_SIGN_KEY"))
	})
	serve.Hidden = true
	serve.Flags().BoolVar(&transferFlags.stdio, "stdio", false, "speak the protocol on stdin and stdout")
	register(storeCmd, export, imp, serve)
}
