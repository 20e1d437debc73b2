package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang/source"
)

var lintFlags struct{ json bool }

func init() {
	cmd := &cobra.Command{
		Use:  "lint [FILE|DIR...]",
		RunE: runLint,
	}
	cmd.Flags().BoolVar(&lintFlags.json, "json", false, "print JSON")
	register(rootCmd, cmd)
}

func runLint(cmd *cobra.Command, args []string) error {
	files, err := sourceFiles(args)
	if err != nil {
		return err
	}
	found := []source.Finding{}
	for _, p := range files {
		var fs []source.Finding
		if filepath.Ext(p) == ".toml" {
			fs, err = source.LintTOML(p)
		} else {
			var src []byte
			if src, err = os.ReadFile(p); err == nil {
				fs, err = source.LintStar(p, src)
			}
		}
		if err != nil {
			return err
		}
		found = append(found, fs...)
	}
	if lintFlags.json {
		if err := writeJSON(cmd.OutOrStdout(), found); err != nil {
			return err
		}
	} else {
		for _, f := range found {
			fmt.Fprintln(cmd.OutOrStdout(), f)
		}
	}
	if len(found) > 0 {
		return exitError{1}
	}
	return nil
}
