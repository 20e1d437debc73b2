package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/storepath"
)

var storeExportFlags struct {
	signKey     string
	compression string
	closure     bool
	exceptFrom  string
}

func init() {
	cmd := &cobra.Command{
		Use:  "export PATH... > FILE",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if term.IsTerminal(int(os.Stdout.Fd())) {
				return fmt.Errorf("refusing to write an export file to a terminal: redirect stdout to a file")
			}
			key, err := loadSignKey(storeExportFlags.signKey)
			if err != nil {
				return err
			}
			s, ps, err := here.OpenStorePaths(args)
			if err != nil {
				return err
			}
			defer s.Close()
			if storeExportFlags.closure {
				if ps, err = s.Closure(ps); err != nil {
					return err
				}
			}
			if storeExportFlags.exceptFrom != "" {
				if ps, err = exceptListed(s.LogicalDir(), ps, storeExportFlags.exceptFrom); err != nil {
					return err
				}
			}
			return cache.Export(context.Background(), s, ps, os.Stdout, cache.ExportOptions{
				Key:         key,
				Compression: storeExportFlags.compression,
				Progress:    transferProgress("exporting"),
			})
		},
	}
	f := cmd.Flags()
	signKeyFlag(cmd, &storeExportFlags.signKey)
	f.StringVar(&storeExportFlags.compression, "compression", "zstd", "compress archives with `METHOD`: zstd or none")
	f.BoolVarP(&storeExportFlags.closure, "recursive", "r", false, "export the closure of the paths")
	f.StringVar(&storeExportFlags.exceptFrom, "except-from", "", "leave out the store paths listed in `FILE` (- for stdin), one a line: the receiver has them")
	f.MarkHidden("except-from")
	register(storeCmd, cmd)
}

// exceptListed drops from ps the store paths listed in file, which the
// receiver has already (switch --build-host lists them, so that only
// what it lacks crosses the network).
func exceptListed(storeDir string, ps []storepath.Path, file string) ([]storepath.Path, error) {
	r := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--except-from: %w", err)
		}
		defer f.Close()
		r = f
	}
	has, err := storepath.ReadList(r, storeDir)
	if err != nil {
		return nil, fmt.Errorf("--except-from: %w", err)
	}
	var out []storepath.Path
	for _, p := range ps {
		if !has[p.Hash] {
			out = append(out, p)
		}
	}
	return out, nil
}
