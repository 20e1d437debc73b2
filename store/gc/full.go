package gc

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// FullReport is what a mark-and-sweep found and did.
type FullReport struct {
	Registered int `json:"registered"`
	Live       int `json:"live"`
	// Unreachable registered paths: garbage. Those with a count above
	// zero are held only by a reference cycle (or a wrong count), which
	// refcounting alone never collects.
	Unreachable int `json:"unreachable"`
	InCycles    int `json:"held_by_cycles"`
	// RefcountErrors are counts that differ from what the edges and roots
	// imply.
	RefcountErrors []string `json:"refcount_errors"`
	// Unregistered are directories in the buckets that no path owns.
	Unregistered []string `json:"unregistered"`
	Repaired     []string `json:"repaired"`
	// Collected is the collection of the unreachable paths (nil on a dry
	// run, or when counts are wrong and --repair was not given).
	Collected *Stats  `json:"collected,omitempty"`
	Seconds   float64 `json:"seconds"`
}

// FullOptions tune Full.
type FullOptions struct {
	Options
	// Repair rewrites wrong counts and moves unregistered directories
	// into the trash (through store.Verify's repair).
	Repair bool
}

// Full marks every path reachable from the roots and the temporary
// roots, sweeps every bucket in parallel, cross-checks the refcounts and
// collects what is unreachable, cycles included. It reads the whole
// store: it is the check behind `nexis gc --full`, not the everyday
// collection.
func Full(s *store.Store, opts FullOptions) (*FullReport, error) {
	opts.fill()
	t0 := time.Now()
	rep := &FullReport{RefcountErrors: []string{}, Unregistered: []string{}, Repaired: []string{}}
	lk, err := store.LockGC(s.Dir())
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	if !opts.DryRun {
		if _, err := s.FinishCollect(opts.Workers); err != nil {
			return nil, fmt.Errorf("finishing an interrupted collection: %w", err)
		}
	}
	temp, err := store.ReadTempRoots(s.Dir(), !opts.DryRun)
	if err != nil {
		return nil, err
	}

	// The graph, and the counts it implies.
	opts.Progress("reading the graph", 0, 0)
	graph := map[string][]string{}
	want := map[string]uint64{}
	if err := s.ForEachRefs(func(h string, refs []string) error {
		graph[h] = append([]string(nil), refs...)
		for _, r := range refs {
			want[r]++
		}
		return nil
	}); err != nil {
		return nil, err
	}
	names := make(map[string]string, len(graph))
	if err := s.ForEachPath(func(pi *store.PathInfo) error {
		names[pi.Path.Hash] = pi.Path.Name
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Registered = len(names)
	roots, err := s.Roots()
	if err != nil {
		return nil, err
	}
	var stack []string
	for _, r := range roots {
		want[r.Path.Hash]++
		stack = append(stack, r.Path.Hash)
	}
	for h := range temp {
		stack = append(stack, h)
	}

	// Mark.
	live := make(map[string]bool, len(graph))
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if live[h] {
			continue
		}
		refs, ok := graph[h]
		if !ok {
			continue // a temp root not registered (yet): nothing to mark
		}
		live[h] = true
		stack = append(stack, refs...)
	}
	rep.Live = len(live)

	// Cross-check the counts.
	seen := 0
	if err := s.ForEachRefcount(func(h string, n uint64) error {
		seen++
		if _, ok := names[h]; !ok {
			rep.RefcountErrors = append(rep.RefcountErrors, fmt.Sprintf("refcount kept for unregistered %s", h))
		} else if n != want[h] {
			rep.RefcountErrors = append(rep.RefcountErrors, fmt.Sprintf("refcount of %s is %d, edges and roots say %d", h, n, want[h]))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if seen < len(names) {
		rep.RefcountErrors = append(rep.RefcountErrors, fmt.Sprintf("%d registered paths have no refcount", len(names)-seen))
	}

	// Sweep the buckets. Each worker owns whole first-level buckets; the
	// Bloom filter of registered hashes (about 1.2 MB per million paths,
	// shared read-only and cache-resident) clears nearly every entry
	// without a map lookup or a database read; its rare false positives
	// are settled exactly.
	registered := bloom.NewWithEstimates(uint(max(len(names), 64)), 0.001)
	for h := range names {
		registered.AddString(h)
	}
	unregistered, err := sweepBuckets(s, opts.Workers, func(p storepath.Path) bool {
		return registered.TestString(p.Hash) && names[p.Hash] == p.Name
	})
	if err != nil {
		return nil, err
	}
	rep.Unregistered = unregistered

	// Garbage: registered but not marked.
	var garbage []string
	for h := range names {
		if !live[h] {
			garbage = append(garbage, h)
			if want[h] > 0 {
				rep.InCycles++
			}
		}
	}
	sort.Strings(garbage)
	rep.Unreachable = len(garbage)

	// Repair asks for the store's own repair whatever the sweep saw: a
	// killed ingest can also leave pool entries that no registered file
	// counts, which only verify's pool stage finds.
	if opts.Repair && !opts.DryRun {
		vr, err := s.Verify(store.VerifyOptions{Repair: true})
		if err != nil {
			return rep, fmt.Errorf("repairing: %w", err)
		}
		rep.Repaired = append(rep.Repaired, vr.Repaired...)
	}
	if opts.DryRun || (len(rep.RefcountErrors) > 0 && !opts.Repair) || len(garbage) == 0 {
		rep.Seconds = time.Since(t0).Seconds()
		return rep, nil
	}

	// Collect the unreachable set in one batch: inside it, cycles and
	// chains need no order.
	st := &Stats{}
	ps := make([]storepath.Path, 0, len(garbage))
	for _, h := range garbage {
		if n, ok := names[h]; ok {
			ps = append(ps, storepath.Path{Hash: h, Name: n})
		}
	}
	if err := writeMarker(s.GCMarker()); err != nil {
		return rep, err
	}
	opts.Progress("collecting", 0, len(ps))
	res, err := s.CollectBatch(ps, nil)
	if err != nil {
		return rep, err
	}
	if _, err := s.FinishCollect(opts.Workers); err != nil {
		return rep, err
	}
	if err := removeMarker(s.GCMarker()); err != nil {
		return rep, err
	}
	opts.Progress("collecting", len(ps), len(ps))
	st.Paths = len(res.Paths)
	st.Contents = len(res.Contents)
	if s.Dedup().Pools() {
		for _, c := range res.Contents {
			st.Bytes += c.Size
		}
	} else {
		st.Bytes = res.Bytes
	}
	rep.Collected = st
	rep.Seconds = time.Since(t0).Seconds()
	return rep, nil
}

// sweepBuckets lists, in parallel, the bucket entries that known does
// not recognise as registered paths.
func sweepBuckets(s *store.Store, workers int, known func(storepath.Path) bool) ([]string, error) {
	var mu sync.Mutex
	out := []string{}
	add := func(phys string) {
		mu.Lock()
		out = append(out, phys)
		mu.Unlock()
	}
	err := store.SweepBuckets(s.Dir(), workers, func(rel, phys string) {
		if p, _, err := storepath.ParseRel(rel); err != nil || !known(p) {
			add(phys)
		}
	}, add)
	sort.Strings(out)
	return out, err
}
