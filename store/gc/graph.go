package gc

import (
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Graph is what the collector's algorithms (MakePlan, WhyAlive) read of
// a store: its roots, the paths at zero, the nodes of the reference
// graph with their counts, and the counts of pooled contents. It is
// containerd's split: the algorithm lives here, discovery in the store
// (*store.Store implements Graph), scheduling in schedule.go and
// store/trash; the algorithm can so be tested against a graph held in
// memory. Every read is batched: a plan reads a wave of paths at a
// time.
//
// Execute and Full stay on *store.Store: the one commits and renames,
// the other cross-checks the store's own counts and sweeps its buckets.
type Graph interface {
	// RootsWithPrefix lists the named roots whose names start with
	// prefix ("" for all), sorted by name.
	RootsWithPrefix(prefix string) ([]store.Root, error)
	// ZeroHashes calls fn with the hash of every registered path whose
	// refcount (referrers + roots) is zero.
	ZeroHashes(fn func(hash string) error) error
	// GCNodes reads the nodes of the paths with the given hashes, nil
	// for a hash that is not registered.
	GCNodes(hashes []string) ([]*store.GCNode, error)
	// RefcountsOf reads the refcounts of paths; ok[i] is false for a
	// hash that is not registered.
	RefcountsOf(hashes []string) (counts []uint64, ok []bool, err error)
	// ContentCounts reads how many registered files hold each content
	// (0 for one not counted).
	ContentCounts(cs []store.ContentRef) ([]uint64, error)
	// ReferrerHashes lists the hashes of the paths that refer to hash.
	ReferrerHashes(hash string) ([]string, error)

	// Where paths are, for what a plan reports and for out-link roots:
	// the store's logical and physical names, and whether its files
	// share a content pool (which decides what removing a path frees).
	Logical(p storepath.Path) string
	Physical(p storepath.Path) string
	Dedup() store.DedupMode
}

var _ Graph = (*store.Store)(nil)
