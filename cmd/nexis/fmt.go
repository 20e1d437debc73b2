package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang/source"
)

var fmtFlags struct{ check bool }

func init() {
	cmd := command("fmt [--check] [FILE|DIR...]", nil, runFmt)
	cmd.Flags().BoolVar(&fmtFlags.check, "check", false, "list unformatted files and exit 1 if any, changing nothing")
	lint := command("lint [FILE|DIR...]", nil, runLint)
	jsonFlag(lint, "print JSON")
	register(rootCmd, cmd, lint)
}

func runFmt(cmd *cobra.Command, args []string) error {
	files, err := sourceFiles(args)
	if err != nil {
		return err
	}
	unformatted, err := source.FormatFiles(files, fmtFlags.check, os.Stdout)
	if err != nil {
		return err
	}
	if fmtFlags.check && unformatted > 0 {
		fmt.Fprintf(os.Stderr, "nexis: %d file(s) not formatted: run nexis fmt on them\n", unformatted)
		return exitError{1}
	}
	return nil
}

// sourceFiles lists the .star and .toml files args name; none names the
// system config's directory.
func sourceFiles(args []string) ([]string, error) {
	if len(args) == 0 {
		args = []string{filepath.Dir(here.ConfigPath(nil))}
	}
	return source.Files(args)
}

func runLint(cmd *cobra.Command, args []string) error {
	files, err := sourceFiles(args)
	if err != nil {
		return err
	}
	found, err := source.Lint(files)
	if err := show(found, err); err != nil {
		return err
	}
	if len(found) > 0 {
		return exitError{1}
	}
	return nil
}
