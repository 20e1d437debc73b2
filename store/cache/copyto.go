package cache

import (
	"context"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// CopyTo opens the destination at rawURL (OpenDest), copies the closure
// of roots there (Copy) and closes it: a copy whose close fails did
// not happen.
func CopyTo(ctx context.Context, st *store.Store, rawURL string, sshOpts SSHOptions, roots []storepath.Path, opts ExportOptions) (*CopyStats, error) {
	dest, err := OpenDest(ctx, rawURL, sshOpts)
	if err != nil {
		return nil, err
	}
	stats, err := Copy(ctx, st, dest, roots, opts)
	if cerr := dest.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return stats, nil
}
