package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/lang/source"
)

var fmtFlags struct{ check bool }

func init() {
	cmd := &cobra.Command{
		Use:  "fmt [--check] [FILE|DIR...]",
		RunE: runFmt,
	}
	cmd.Flags().BoolVar(&fmtFlags.check, "check", false, "list unformatted files and exit 1 if any, changing nothing")
	register(rootCmd, cmd)
}

func runFmt(cmd *cobra.Command, args []string) error {
	files, err := sourceFiles(args)
	if err != nil {
		return err
	}
	unformatted := 0
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out, err := source.Format(p, src)
		if err != nil {
			return err
		}
		if bytes.Equal(out, src) {
			continue
		}
		unformatted++
		if fmtFlags.check {
			fmt.Fprintln(cmd.OutOrStdout(), p)
			continue
		}
		if err := writeFileKeepMode(p, out); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), p)
	}
	if fmtFlags.check && unformatted > 0 {
		fmt.Fprintf(os.Stderr, "nexis: %d file(s) not formatted: run nexis fmt on them\n", unformatted)
		return exitError{1}
	}
	return nil
}

// sourceFiles lists the .star and .toml files args name, directories
// walked; none names the system config's directory.
func sourceFiles(args []string) ([]string, error) {
	if len(args) == 0 {
		args = []string{filepath.Dir(here.ConfigPath(nil))}
	}
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && p != a && (d.Name()[0] == '.' || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if ext := filepath.Ext(p); !d.IsDir() && (ext == ".star" || ext == ".toml") && d.Name() != "nexis.lock" {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeFileKeepMode replaces a file's content atomically, keeping its mode.
func writeFileKeepMode(p string, b []byte) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	return durable.WriteFile(p, b, st.Mode().Perm())
}
