package main

import (
	"os"

	"github.com/nexisos/nexis/store"
	"github.com/spf13/cobra"
)

var pathInfoFlags struct {
	json, recursive, size bool
}

func init() {
	cmd := &cobra.Command{
		Use:  "path-info PATH...",
		Args: cobra.MinimumNArgs(1),
		RunE: runPathInfo,
	}
	f := cmd.Flags()
	f.BoolVar(&pathInfoFlags.json, "json", false, "print JSON")
	f.BoolVarP(&pathInfoFlags.recursive, "recursive", "r", false, "include the closure")
	f.BoolVarP(&pathInfoFlags.size, "size", "s", false, "print sizes")
	register(storeCmd, cmd)
}

func runPathInfo(cmd *cobra.Command, args []string) error {
	s, paths, err := here.OpenStorePaths(args)
	if err != nil {
		return err
	}
	defer s.Close()
	if pathInfoFlags.recursive {
		if paths, err = s.Closure(paths); err != nil {
			return err
		}
	}
	var out []*store.PathReport
	for _, p := range paths {
		r, err := s.Describe(p, pathInfoFlags.size && pathInfoFlags.recursive)
		if err != nil {
			return err
		}
		if pathInfoFlags.json {
			out = append(out, r)
			continue
		}
		r.Print(os.Stdout, pathInfoFlags.size)
	}
	if pathInfoFlags.json {
		return printJSON(out)
	}
	return nil
}
