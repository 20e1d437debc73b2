package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

var pathInfoFlags struct {
	json, recursive, size bool
}

// pathInfoJSON is the --json form of one path.
type pathInfoJSON struct {
	Path           string   `json:"path"`
	TreeHash       string   `json:"tree_hash"`
	Size           int64    `json:"size"`
	ClosureSize    *int64   `json:"closure_size,omitempty"`
	Files          int      `json:"files"`
	Registered     string   `json:"registered"`
	Deriver        string   `json:"deriver,omitempty"`
	ContentAddress string   `json:"content_address,omitempty"`
	Impure         string   `json:"impure,omitempty"`
	References     []string `json:"references"`
	Refcount       uint64   `json:"refcount"`
}

func init() {
	cmd := &cobra.Command{
		Use:   "path-info PATH...",
		Short: "Show what the store knows about paths",
		Long: `Show what the store knows about paths. Without flags prints each path;
--size adds its size (and with -r the closure size); -r includes every path
in the closure; --json prints all fields.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runPathInfo,
	}
	f := cmd.Flags()
	f.BoolVar(&pathInfoFlags.json, "json", false, "print JSON")
	f.BoolVarP(&pathInfoFlags.recursive, "recursive", "r", false, "include the closure")
	f.BoolVarP(&pathInfoFlags.size, "size", "s", false, "print sizes")
	storeCmd.AddCommand(cmd)
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
	var out []pathInfoJSON
	for _, p := range paths {
		pi, err := s.QueryPathInfo(p)
		if err != nil {
			return err
		}
		var closure *int64
		if pathInfoFlags.size && pathInfoFlags.recursive {
			n, err := s.ClosureSize(p)
			if err != nil {
				return err
			}
			closure = &n
		}
		if pathInfoFlags.json {
			rc, err := s.Refcount(p)
			if err != nil {
				return err
			}
			j := pathInfoJSON{
				Path: s.Logical(p), TreeHash: pi.TreeHash.String(), Size: pi.Size, ClosureSize: closure,
				Files: pi.Files, Registered: pi.Registered.UTC().Format(time.RFC3339Nano),
				Deriver: pi.Deriver, ContentAddress: pi.ContentAddress, Impure: pi.Impure, References: []string{}, Refcount: rc,
			}
			for _, r := range pi.References {
				j.References = append(j.References, s.Logical(r))
			}
			out = append(out, j)
			continue
		}
		line := []string{s.Logical(p)}
		if pathInfoFlags.size {
			line = append(line, fmt.Sprint(pi.Size))
			if closure != nil {
				line = append(line, fmt.Sprint(*closure))
			}
		}
		fmt.Println(strings.Join(line, "\t"))
	}
	if pathInfoFlags.json {
		return printJSON(out)
	}
	return nil
}
