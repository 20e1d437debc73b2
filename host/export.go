package host

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/storepath"
)

// Export writes the store paths args name (with closure, their
// closures) to w as an export file, less the paths listed in the file
// exceptFrom ("" for none, "-" for stdin): the receiver has those
// already (switch --build-host lists them, so that only what it lacks
// crosses the network).
func (h *Host) Export(w io.Writer, args []string, closure bool, exceptFrom string, o cache.ExportOptions) error {
	s, ps, err := h.OpenStorePaths(args)
	if err != nil {
		return err
	}
	defer s.Close()
	if closure {
		if ps, err = s.Closure(ps); err != nil {
			return err
		}
	}
	if exceptFrom != "" {
		if ps, err = exceptListed(s.LogicalDir(), ps, exceptFrom); err != nil {
			return fmt.Errorf("--except-from: %w", err)
		}
	}
	return cache.Export(context.Background(), s, ps, w, o)
}

// exceptListed drops from ps the store paths listed in file.
func exceptListed(storeDir string, ps []storepath.Path, file string) ([]storepath.Path, error) {
	r := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	has, err := storepath.ReadList(r, storeDir)
	if err != nil {
		return nil, err
	}
	var out []storepath.Path
	for _, p := range ps {
		if !has[p.Hash] {
			out = append(out, p)
		}
	}
	return out, nil
}

// Copy copies the closures of the store paths args name to the
// destination to (a cache URL or ssh://), with ssh reaching it.
func (h *Host) Copy(ctx context.Context, to string, ssh cache.SSHOptions, args []string, o cache.ExportOptions) (*cache.CopyStats, error) {
	s, ps, err := h.OpenStorePaths(args)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return cache.CopyTo(ctx, s, to, ssh, ps, o)
}
