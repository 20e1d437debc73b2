package store

import (
	"fmt"
	"io"
)

// Print writes what Optimise shared, on one line.
func (r *OptimiseReport) Print(w io.Writer) {
	if r.DryRun {
		fmt.Fprintf(w, "%d paths, %d files: %d would be shared, %s saved, %d contents pooled (dry run: nothing changed)\n",
			r.Paths, r.Files, r.Shared, HumanSize(r.BytesSaved), r.PoolAdded)
		return
	}
	fmt.Fprintf(w, "%d paths, %d files: %d now shared, %s saved, %d contents pooled\n",
		r.Paths, r.Files, r.Shared, HumanSize(r.BytesSaved), r.PoolAdded)
}

// Info is what `nexis store info` says of a store (its --json form).
type Info struct {
	Store        string `json:"store"`
	Physical     string `json:"physical"`
	Dedup        string `json:"dedup"`
	Schema       int    `json:"schema"`
	Stats        `json:"stats"`
	DedupSavings int64 `json:"dedup_savings"`
}

// Info counts the store's paths, files and sizes.
func (s *Store) Info() (*Info, error) {
	st, err := s.Stats()
	if err != nil {
		return nil, err
	}
	return &Info{
		Store: s.LogicalDir(), Physical: s.Dir(), Dedup: s.Dedup().String(), Schema: SchemaVersion,
		Stats: st, DedupSavings: st.Bytes - st.ContentBytes,
	}, nil
}

// Print writes the counts and sizes, one a line.
func (i *Info) Print(w io.Writer) {
	fmt.Fprintf(w, "store:          %s (at %s)\n", i.Store, i.Physical)
	fmt.Fprintf(w, "dedup:          %s\n", i.Dedup)
	fmt.Fprintf(w, "paths:          %d\n", i.Paths)
	fmt.Fprintf(w, "roots:          %d\n", i.Roots)
	fmt.Fprintf(w, "files:          %d\n", i.Files)
	fmt.Fprintf(w, "size:           %s (%d bytes)\n", HumanSize(i.Bytes), i.Bytes)
	fmt.Fprintf(w, "unique content: %d, %s\n", i.Contents, HumanSize(i.ContentBytes))
	fmt.Fprintf(w, "dedup savings:  %s\n", HumanSize(i.DedupSavings))
}
