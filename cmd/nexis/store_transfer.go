package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nexisos/nexis/store/cache"
)

var storeExportFlags struct {
	signKey     string
	compression string
	closure     bool
	exceptFrom  string
}

func init() {
	cmd := command("export PATH... > FILE", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return fmt.Errorf("refusing to write an export file to a terminal: redirect stdout to a file")
		}
		key, err := loadSignKey(storeExportFlags.signKey)
		if err != nil {
			return err
		}
		f := storeExportFlags
		return here.Export(os.Stdout, args, f.closure, f.exceptFrom, cache.ExportOptions{
			Key:         key,
			Compression: f.compression,
			Progress:    transferProgress("exporting"),
		})
	})
	f := cmd.Flags()
	signKeyFlag(cmd, &storeExportFlags.signKey)
	f.StringVar(&storeExportFlags.compression, "compression", "zstd", "compress archives with `METHOD`: zstd or none")
	f.BoolVarP(&storeExportFlags.closure, "recursive", "r", false, "export the closure of the paths")
	f.StringVar(&storeExportFlags.exceptFrom, "except-from", "", "leave out the store paths listed in `FILE` (- for stdin), one a line: the receiver has them")
	f.MarkHidden("except-from")
	register(storeCmd, cmd)
}

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

var storeServeFlags struct {
	stdio bool
}

func init() {
	cmd := command("serve --stdio", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		if !storeServeFlags.stdio {
			return fmt.Errorf("serve speaks only on stdin/stdout: pass --stdio")
		}
		return here.Serve(os.Stdin, os.Stdout, os.Getenv("NEXIS_SIGN_KEY"))
	})
	cmd.Hidden = true
	cmd.Flags().BoolVar(&storeServeFlags.stdio, "stdio", false, "speak the protocol on stdin and stdout")
	register(storeCmd, cmd)
}
