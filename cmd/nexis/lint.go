package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang/source"
)

func init() {
	cmd := command("lint [FILE|DIR...]", nil, runLint)
	jsonFlag(cmd, "print JSON")
	register(rootCmd, cmd)
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
