// Package gc collects the store's garbage without sweeping the store.
//
// A path is garbage when its refcount (referrers + roots, kept exact by
// every store batch) is zero and no running process holds it as a
// temporary root. The store keeps the zero-refcount paths in a list of
// their own, so a collection starts from exactly those and follows the
// references of what it collects down the DAG: its cost follows the
// garbage, not the store.
//
// A collection is planned, then executed (restic's PlanPrune/Execute):
//
//  1. Under gc.lock (which stops new temporary roots from being added
//     unseen) and the store's writer lock: finish what an interrupted
//     collection left, read the temporary roots of live processes, drop
//     out-link roots whose symlink is gone, and plan: the paths in an
//     order where every path comes after all of its referrers, so that
//     any prefix of the plan is a valid collection.
//  2. Execute the plan (store.Collect, which reuses what planning read):
//     while one synced store batch that unregisters the paths and
//     records them is read and built, the directories are renamed, whole buckets per worker, into
//     a staging directory that nothing deletes; once the batch is
//     committed, one rename moves that directory into the trash; pool
//     entries whose count reached zero go to the trash's release list;
//     one fsync (or syncfs) makes the renames durable, and an unsynced
//     batch drops the records. A crash leaves the records, or staged
//     directories, for the next nexis command (FinishInterrupted): staged
//     paths still registered go back, the rest into the trash. This is
//     all the user waits for: its cost is the garbage's metadata, with
//     one rename per path beside it.
//  3. Without any store lock, a detached worker (store/trash) deletes the
//     trash, partitioned by bucket (HandOff); `nexis gc --wait` deletes
//     it in the foreground instead. A killed worker is replaced by the
//     next nexis command.
//
// Metadata first, deletion last, every step idempotent: a kill at any
// point loses no registered path and leaves only work to finish.
//
// Locks, always taken in this order: the store's writer lock, then
// gc.lock, then (without waiting) trash.lock, which the collector hands
// to the worker it starts. The worker holds nothing else, so builds and
// switches, which take the writer lock, never wait for a deletion.
//
// Planning reads the store only through Graph (graph.go): the
// algorithm here, the discovery of roots, references and counts in the
// store, the scheduling of the deletion in schedule.go and store/trash.
//
// Full (`nexis gc --full`) is the other algorithm: a mark from the roots
// and a parallel sweep of every bucket, with Bloom filters of the live
// and registered sets. It cross-checks the refcounts, collects what the
// counts cannot (reference cycles), and finds unregistered directories.
package gc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/trash"
	"github.com/nexisos/nexis/store/treehash"
)

// Options tune a collection.
type Options struct {
	// DryRun plans and changes nothing.
	DryRun bool
	// MaxFreed stops the collection once this many bytes are freed (0:
	// no limit).
	MaxFreed int64
	// OlderThan keeps garbage registered less than this long ago (and so
	// what it references).
	OlderThan time.Duration
	// Workers rename in parallel (default: the number of cores), and
	// delete the trash when the collection does that itself (default:
	// trash.Options's).
	Workers int
	// BatchSize is the number of paths per store batch (default
	// 100,000): a collection is one synced commit unless it is larger,
	// when a batch's memory (about a kilobyte a path) would grow past a
	// hundred megabytes.
	BatchSize int
	// Launch starts the background worker that deletes the trash
	// (HandOff); nil deletes it in the collecting process.
	Launch trash.Launcher
	// Wait deletes the trash in the collecting process even when a
	// worker could be started (`nexis gc --wait`).
	Wait bool
	// Progress, when set, is told what a long phase has done.
	Progress func(phase string, done, total int)
	// Now is the time --older-than counts from (default time.Now()).
	Now time.Time
}

// needFreed says whether the plan must know what each path frees: for
// a dry run's listing and for --max-freed. Otherwise the batches count
// it as they commit, and the plan skips three reads per path.
func (o *Options) needFreed() bool { return o.DryRun || o.MaxFreed > 0 }

func (o *Options) fill() {
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100_000
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Progress == nil {
		o.Progress = func(string, int, int) {}
	}
}

// OutLinkRootPrefix starts the names of indirect roots: the rest is the
// absolute path of a symlink (`nexis build --out-link`) that must still
// point at the rooted path for the root to hold.
const OutLinkRootPrefix = "out-link:"

// DroppedRoot is an indirect root whose symlink no longer points at its
// path.
type DroppedRoot struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// PlannedPath is one path a collection removes.
type PlannedPath struct {
	Path storepath.Path `json:"-"`
	// Logical is the path as written in files.
	Logical string `json:"path"`
	// Size is the sum of its files' sizes.
	Size int64 `json:"size"`
	// Freed is what removing it frees on disk: the sizes of the contents
	// whose last copy it holds (all of Size when contents are not
	// shared).
	Freed      int64     `json:"freed"`
	Registered time.Time `json:"registered"`
}

// Plan is what a collection will do.
type Plan struct {
	// Paths in collection order: every path after all its referrers.
	Paths        []PlannedPath `json:"paths"`
	DroppedRoots []DroppedRoot `json:"dropped_roots"`
	// Contents is the number of pooled contents whose count reaches zero.
	Contents int `json:"contents"`
	// Bytes is the sum of Freed.
	Bytes int64 `json:"bytes"`
	// KeptTemp and KeptYoung count unreferenced paths kept because a
	// running process holds them, or because they are younger than
	// OlderThan.
	KeptTemp  int `json:"kept_temp_rooted"`
	KeptYoung int `json:"kept_young"`
	// Limited is set when MaxFreed stopped the plan before the garbage
	// ran out.
	Limited bool `json:"limited_by_max_freed"`

	// nodes are what planning read of each path, for the batch.
	nodes []*store.GCNode
}

// Stats is what a collection did: `nexis gc --json` prints it.
type Stats struct {
	DryRun       bool          `json:"dry_run"`
	Paths        int           `json:"paths_deleted"`
	Bytes        int64         `json:"bytes_freed"`
	Contents     int           `json:"contents_deleted"`
	DroppedRoots []DroppedRoot `json:"dropped_roots"`
	KeptTemp     int           `json:"kept_temp_rooted"`
	KeptYoung    int           `json:"kept_young"`
	Limited      bool          `json:"limited_by_max_freed"`
	// Resumed counts records of an interrupted collection finished first.
	Resumed int `json:"resumed_records"`
	// Moved directories went into the trash; PoolReleased pool entries
	// were removed or listed for the worker to release.
	Moved        int `json:"moved_to_trash"`
	PoolReleased int `json:"pool_entries_released"`
	// Seconds is the first phase, what the caller waits for: planning
	// (reads only), then the batch with the renames into the trash.
	Seconds        float64 `json:"seconds"`
	PlanSeconds    float64 `json:"plan_seconds"`
	CollectSeconds float64 `json:"collect_seconds"`
	// The parts of CollectSeconds: the synced batch (its reads, its
	// building, and its write, which waits for the renames), the renames
	// (and pool releases; the renames into staging run beside the
	// batch's reads and building, so the two overlap), the syncfs, and
	// the unsynced batch that drops the records.
	CommitSeconds float64 `json:"commit_seconds"`
	RenameSeconds float64 `json:"rename_seconds"`
	SyncSeconds   float64 `json:"sync_seconds"`
	DropSeconds   float64 `json:"drop_seconds"`
	// Trash is the second phase: the deletion (nil for a dry run).
	Trash *TrashStats `json:"trash,omitempty"`
	// Plan is set for a dry run.
	Plan *Plan `json:"plan,omitempty"`
}

// Collect plans and (unless DryRun) executes a collection on s, which
// must be open for writing; it does not empty the trash: call HandOff
// (after closing the store, if the deletion is waited for), so that the
// slow deletion holds no lock.
func Collect(s *store.Store, opts Options) (*Stats, error) {
	opts.fill()
	t0 := time.Now()
	lk, err := store.LockGC(s.Dir())
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	st := &Stats{DryRun: opts.DryRun}
	if !opts.DryRun {
		fs, err := s.FinishCollect(opts.Workers)
		if err != nil {
			return nil, fmt.Errorf("finishing an interrupted collection: %w", err)
		}
		st.Resumed = fs.Records
	}
	temp, err := store.ReadTempRoots(s.Dir(), !opts.DryRun)
	if err != nil {
		return nil, err
	}
	tp := time.Now()
	plan, err := MakePlan(s, temp, opts)
	if err != nil {
		return nil, err
	}
	st.PlanSeconds = time.Since(tp).Seconds()
	st.DroppedRoots = plan.DroppedRoots
	st.KeptTemp, st.KeptYoung, st.Limited = plan.KeptTemp, plan.KeptYoung, plan.Limited
	if opts.DryRun {
		st.Plan = plan
		st.Paths, st.Bytes, st.Contents = len(plan.Paths), plan.Bytes, plan.Contents
		st.Seconds = time.Since(t0).Seconds()
		return st, nil
	}
	te := time.Now()
	done, err := Execute(s, plan, opts)
	if err != nil {
		return st, err
	}
	st.CollectSeconds = time.Since(te).Seconds()
	st.Paths, st.Bytes, st.Contents = done.Paths, done.Bytes, done.Contents
	st.Moved, st.PoolReleased = done.Moved, done.PoolReleased
	st.CommitSeconds, st.RenameSeconds = done.Commit.Seconds(), done.Rename.Seconds()
	st.SyncSeconds, st.DropSeconds = done.Sync.Seconds(), done.Drop.Seconds()
	st.Seconds = time.Since(t0).Seconds()
	return st, nil
}

// Run is Collect followed by HandOff, for callers that keep the store
// open: activation's automatic cleanup (auto_cleanup) passes a Launch,
// so the deletion runs in the background and the switch returns at
// once; without one the trash is deleted before Run returns, with the
// store's lock still held by the caller.
func Run(s *store.Store, opts Options) (*Stats, error) {
	st, err := Collect(s, opts)
	if err != nil || opts.DryRun {
		return st, err
	}
	st.Trash, err = HandOff(s.Dir(), opts)
	return st, err
}

// contentID is a pooled content without its size.
type contentID struct {
	d treehash.Digest
	t treehash.Type
}

// MakePlan plans a collection: the paths to remove, in an order where
// every path follows all of its referrers. temp are the temporary roots
// of live processes (ReadTempRoots). Nothing changes.
//
// It reads in waves: the nodes of every candidate of a wave in one
// batched read, then the counts of everything they refer to in another;
// what those counts bring to zero is the next wave. A path's referrers
// are all planned before it reaches zero, so the waves keep the order.
func MakePlan(g Graph, temp map[string]store.TempRoot, opts Options) (*Plan, error) {
	opts.fill()
	plan := &Plan{DroppedRoots: []DroppedRoot{}, Paths: []PlannedPath{}}
	shared := g.Dedup().Pools()

	// Remaining counts of the paths this plan touched; unlisted paths
	// have their stored count.
	rc := map[string]uint64{}
	var queue []string
	// decrement lowers the counts of hs, reading in one batch those not
	// yet known, and queues the paths that reach zero.
	decrement := func(hs []string) error {
		var unknown []string
		for _, h := range hs {
			if _, ok := rc[h]; !ok {
				unknown = append(unknown, h)
			}
		}
		if len(unknown) > 0 {
			ns, oks, err := g.RefcountsOf(unknown)
			if err != nil {
				return err
			}
			for i, h := range unknown {
				if oks[i] {
					rc[h] = ns[i]
				}
			}
		}
		for _, h := range hs {
			n, ok := rc[h]
			if !ok {
				continue // not registered
			}
			if n == 0 {
				return fmt.Errorf("refcount of %s would go below zero: run `%s`", h, hint.Command("store verify", "--repair"))
			}
			rc[h] = n - 1
			if n == 1 {
				queue = append(queue, h)
			}
		}
		return nil
	}

	dropped, err := deadOutLinks(g)
	if err != nil {
		return nil, err
	}
	var droppedHashes []string
	for _, d := range dropped {
		plan.DroppedRoots = append(plan.DroppedRoots, d.DroppedRoot)
		droppedHashes = append(droppedHashes, d.hash)
	}
	if err := decrement(droppedHashes); err != nil {
		return nil, err
	}
	if err := g.ZeroHashes(func(h string) error {
		queue = append(queue, h)
		return nil
	}); err != nil {
		return nil, err
	}

	// The temporary roots of a system build are its whole input closure:
	// thousands of paths against which every candidate is checked. The
	// Bloom filter answers "certainly not" for nearly all candidates
	// from a few cache-resident words, without hashing the candidate
	// into the map.
	tempBloom := bloom.NewWithEstimates(uint(max(len(temp), 64)), 0.001)
	for h := range temp {
		tempBloom.AddString(h)
	}
	isTemp := func(h string) bool {
		if !tempBloom.TestString(h) {
			return false
		}
		_, ok := temp[h]
		return ok
	}

	cc := map[contentID]uint64{}
	planned := map[string]bool{}
	for len(queue) > 0 && !plan.Limited {
		var wave []string
		for _, h := range queue {
			if !planned[h] {
				planned[h] = true
				wave = append(wave, h)
			}
		}
		queue = nil
		nodes, err := g.GCNodes(wave)
		if err != nil {
			return nil, err
		}
		if opts.needFreed() {
			if err := readContentCounts(g, nodes, cc); err != nil {
				return nil, err
			}
		}
		var refs []string
		for i, h := range wave {
			node := nodes[i]
			if node == nil {
				continue
			}
			if n, ok := rc[h]; (ok && n != 0) || (!ok && node.Refcount != 0) {
				planned[h] = false
				continue
			}
			if opts.MaxFreed > 0 && plan.Bytes >= opts.MaxFreed {
				plan.Limited = true
				break
			}
			if isTemp(h) {
				plan.KeptTemp++
				continue
			}
			if opts.OlderThan > 0 && opts.Now.Sub(node.Registered) < opts.OlderThan {
				plan.KeptYoung++
				continue
			}
			pp := PlannedPath{Path: node.Path, Logical: g.Logical(node.Path), Size: node.Size, Registered: node.Registered}
			for _, c := range node.Contents {
				if !opts.needFreed() {
					break
				}
				id := contentID{c.Digest, c.Type}
				v := cc[id]
				if v == 0 {
					return nil, fmt.Errorf("content count of %s would go below zero: run `%s`", c.Digest, hint.Command("store verify", "--repair"))
				}
				v--
				cc[id] = v
				if v == 0 {
					plan.Contents++
					if shared {
						pp.Freed += c.Size
					}
				}
			}
			if !shared {
				pp.Freed = node.Size
			}
			rc[h] = 0
			plan.Paths = append(plan.Paths, pp)
			plan.nodes = append(plan.nodes, node)
			plan.Bytes += pp.Freed
			refs = append(refs, node.Refs...)
		}
		if err := decrement(refs); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// readContentCounts reads, in one batch, the stored counts of the
// contents of nodes that cc does not hold yet (cc then holds what the
// plan has left of them).
func readContentCounts(g Graph, nodes []*store.GCNode, cc map[contentID]uint64) error {
	var want []store.ContentRef
	seen := map[contentID]bool{}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		for _, c := range n.Contents {
			id := contentID{c.Digest, c.Type}
			if _, ok := cc[id]; !ok && !seen[id] {
				seen[id] = true
				want = append(want, c)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	vs, err := g.ContentCounts(want)
	if err != nil {
		return err
	}
	for i, c := range want {
		cc[contentID{c.Digest, c.Type}] = vs[i]
	}
	return nil
}

type deadLink struct {
	DroppedRoot
	hash string
}

// deadOutLinks finds the out-link roots whose symlink is gone or points
// elsewhere. A link that cannot be read for another reason (permissions)
// keeps its root: when in doubt, keep.
func deadOutLinks(g Graph) ([]deadLink, error) {
	roots, err := g.RootsWithPrefix(OutLinkRootPrefix)
	if err != nil {
		return nil, err
	}
	var out []deadLink
	for _, r := range roots {
		link := strings.TrimPrefix(r.Name, OutLinkRootPrefix)
		reason := ""
		target, err := os.Readlink(link)
		switch {
		case errors.Is(err, os.ErrNotExist):
			reason = "the link is gone"
		case errors.Is(err, syscall.EINVAL):
			reason = "it is no longer a symlink"
		case err != nil:
			continue
		default:
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(link), target)
			}
			target = filepath.Clean(target)
			if target != g.Physical(r.Path) && target != g.Logical(r.Path) {
				reason = "it now points to " + target
			}
		}
		if reason != "" {
			out = append(out, deadLink{DroppedRoot{Name: r.Name, Path: g.Logical(r.Path), Reason: reason}, r.Path.Hash})
		}
	}
	return out, nil
}

// Execute does exactly what plan says: one synced batch unregisters
// and records the paths and drops the dead out-link roots, then the
// directories move into the trash and the unused pool entries are
// released (store.Collect); a plan larger than BatchSize takes several
// such steps. The marker file tells later commands that records may be
// left if this process dies. A plan that MakePlan did not make in this
// process (no nodes) is read again.
func Execute(s *store.Store, plan *Plan, opts Options) (*Done, error) {
	opts.fill()
	done := &Done{}
	if len(plan.Paths) == 0 && len(plan.DroppedRoots) == 0 {
		return done, nil
	}
	nodes := plan.nodes
	if len(nodes) != len(plan.Paths) {
		hs := make([]string, len(plan.Paths))
		for i, pp := range plan.Paths {
			hs[i] = pp.Path.Hash
		}
		var err error
		if nodes, err = s.GCNodes(hs); err != nil {
			return done, err
		}
		for i, n := range nodes {
			if n == nil || n.Path != plan.Paths[i].Path {
				return done, fmt.Errorf("collecting %s: %w", plan.Paths[i].Logical, store.ErrNotValid)
			}
		}
	}
	if err := writeMarker(s.GCMarker()); err != nil {
		return done, err
	}
	shared := s.Dedup().Pools()
	drop := make([]string, 0, len(plan.DroppedRoots))
	for _, d := range plan.DroppedRoots {
		drop = append(drop, d.Name)
	}
	total := len(plan.Paths)
	opts.Progress("collecting", 0, total)
	for i := 0; i < total || len(drop) > 0; i += opts.BatchSize {
		res, fst, err := s.Collect(nodes[i:min(i+opts.BatchSize, total)], drop, opts.Workers)
		if err != nil {
			return done, err
		}
		drop = nil
		done.Paths += len(res.Paths)
		done.Contents += len(res.Contents)
		done.Moved += fst.Moved
		done.PoolReleased += fst.PoolRemoved
		done.Commit += fst.Commit
		done.Rename += fst.Rename
		done.Sync += fst.Sync
		done.Drop += fst.Drop
		if shared {
			for _, c := range res.Contents {
				done.Bytes += c.Size
			}
		} else {
			done.Bytes += res.Bytes
		}
		opts.Progress("collecting", min(i+opts.BatchSize, total), total)
	}
	return done, removeMarker(s.GCMarker())
}

// Done is what Execute did.
type Done struct {
	Paths    int
	Contents int
	// Bytes freed on disk (see PlannedPath.Freed).
	Bytes        int64
	Moved        int
	PoolReleased int
	// Time spent in the parts of store.Collect (store.FinishStats).
	Commit, Rename, Sync, Drop time.Duration
}

// SortPlanBySize orders a dry run's listing, largest first, for people;
// Execute needs the collection order, so only printing uses it.
func SortPlanBySize(ps []PlannedPath) []PlannedPath {
	out := append([]PlannedPath(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Freed > out[j].Freed })
	return out
}
