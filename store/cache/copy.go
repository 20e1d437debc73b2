package cache

import (
	"context"
	"fmt"
	"sync"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// CopyStats say what Copy did.
type CopyStats struct {
	// Closure is the number of paths in the closure of the roots.
	Closure int `json:"closure"`
	// Sent is how many of them the destination lacked and got.
	Sent int `json:"sent"`
	// Bytes is the size of the stored archives sent.
	Bytes int64 `json:"bytes"`
}

// Copy sends the closure of roots to dest, skipping what dest has, in
// dependency order, each record signed with opts.Key. A closure that
// holds an impure path (store.ErrImpure) is refused whole.
func Copy(ctx context.Context, st *store.Store, dest Dest, roots []storepath.Path, opts ExportOptions) (*CopyStats, error) {
	opts.fill()
	closure, err := st.Closure(roots)
	if err != nil {
		return nil, err
	}
	// Before the destination is asked anything: nothing of a closure
	// that holds an impure path goes, not even its pure part.
	if err := st.RefuseImpure(closure, "copy it to "+dest.URL()); err != nil {
		return nil, err
	}
	ordered, err := TopoSort(st, closure)
	if err != nil {
		return nil, err
	}
	have, err := dest.Have(ctx, st.LogicalDir(), ordered)
	if err != nil {
		return nil, err
	}
	var missing []storepath.Path
	for _, p := range ordered {
		if !have[p.Hash] {
			missing = append(missing, p)
		}
	}
	stats := &CopyStats{Closure: len(closure)}
	if len(missing) == 0 {
		return stats, nil
	}
	next, stop := prepareAll(ctx, st, missing, opts)
	defer stop()
	var mu sync.Mutex
	err = dest.Put(ctx, st.LogicalDir(), len(missing), next, func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		stats.Sent++
		stats.Bytes += n
		if opts.Progress != nil {
			opts.Progress(stats.Sent, len(missing), stats.Bytes)
		}
	})
	if err != nil {
		return stats, fmt.Errorf("copying to %s: %w", dest.URL(), err)
	}
	stats.Sent = len(missing)
	return stats, nil
}
