package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store/treehash"
)

var storeLsFlags struct{ recursive, json bool }

func init() {
	ls := &cobra.Command{
		Use:  "ls PATH[/SUBDIR]",
		Args: cobra.ExactArgs(1),
		RunE: runStoreLs,
	}
	ls.Flags().BoolVarP(&storeLsFlags.recursive, "recursive", "R", false, "list everything below, not only the directory's entries")
	ls.Flags().BoolVar(&storeLsFlags.json, "json", false, "print JSON")
	cat := &cobra.Command{
		Use:  "cat PATH/FILE",
		Args: cobra.ExactArgs(1),
		RunE: runStoreCat,
	}
	register(storeCmd, ls, cat)
}

func runStoreLs(cmd *cobra.Command, args []string) error {
	s, p, rest, files, err := here.OpenManifest(args[0])
	if err != nil {
		return err
	}
	defer s.Close()
	entries, ok := treehash.ListDir(files, strings.Trim(rest, "/"), storeLsFlags.recursive)
	if !ok {
		return fmt.Errorf("%s has no %s", s.Logical(p), rest)
	}
	if storeLsFlags.json {
		if entries == nil {
			entries = []treehash.Entry{}
		}
		return printJSON(entries)
	}
	for _, e := range entries {
		e.Print(os.Stdout)
	}
	return nil
}

func runStoreCat(cmd *cobra.Command, args []string) error {
	s, p, rest, files, err := here.OpenManifest(args[0])
	if err != nil {
		return err
	}
	defer s.Close()
	rel := strings.Trim(rest, "/")
	for _, f := range files {
		if f.Path != rel {
			continue
		}
		if !f.Type.IsRegular() {
			if f.Type == treehash.Symlink {
				return fmt.Errorf("%s%s is a symlink to %s", s.Logical(p), rest, f.Target)
			}
			return fmt.Errorf("%s%s is a %s", s.Logical(p), rest, f.Type)
		}
		fh, err := os.Open(filepath.Join(s.Physical(p), filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		defer fh.Close()
		_, err = io.Copy(os.Stdout, fh)
		return err
	}
	return fmt.Errorf("%s has no file %s", s.Logical(p), rest)
}
