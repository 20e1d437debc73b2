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
	signKey, exceptFrom string
	closure, stdio      bool
	trusted             []string
}

// exportOpts is the export export's flags ask for.
var exportOpts cache.ExportOptions

func init() {
	export := command("export PATH... > FILE", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return fmt.Errorf("refusing to write an export file to a terminal: redirect stdout to a file")
		}
		var err error
		if exportOpts.Key, err = loadSignKey(transferFlags.signKey); err != nil {
			return err
		}
		exportOpts.Progress = newProgress("exporting").Transfer()
		return here.Export(os.Stdout, args, transferFlags.closure, transferFlags.exceptFrom, exportOpts)
	})
	f := export.Flags()
	signKeyFlag(export, &transferFlags.signKey)
	f.StringVar(&exportOpts.Compression, "compression", "zstd", "compress archives with `METHOD`: zstd or none")
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
