package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/grocksdb"
	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/internal/parallel"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// ContentRef names one pooled content.
type ContentRef struct {
	Digest treehash.Digest
	Type   treehash.Type // Regular or Executable
	Size   int64
}

func (c ContentRef) key() contentKey {
	var k contentKey
	copy(k[:], c.Digest[:])
	k[32] = byte(c.Type)
	return k
}

// This file is the collector's second surface (store/gc): lean, batched
// reads of the graph (what store/gc's Graph interface asks of a store), and a collection batch that records, in the same synced
// write as the unregistration, what is left to do on disk. The records
// make a collection resumable: whatever kills the process after the
// commit, FinishCollect (run by the next collection, or by any nexis
// command that finds the marker file) moves the directories into the
// trash and removes the pool entries, idempotently.
//
// Records live in the default column family, which verify does not read:
//
//	default "gc/p/" hash        name of an unregistered path whose directory may still be in its bucket
//	default "gc/c/" contentkey  a content whose count reached zero; its pool entry may still exist
//	default "gc/b/" random      a whole batch of both (Collect): uvarint n, n × (hash, uvarint
//	                            len, name), uvarint m, m × (contentkey, uvarint size)
//
// A batch record is one key to put and one to delete, where per-path
// records cost two memtable inserts per path and per content.

var (
	gcPathPrefix    = []byte("gc/p/")
	gcContentPrefix = []byte("gc/c/")
	gcBatchPrefix   = []byte("gc/b/")
)

// GCMarker is the file that says a collection may have left work behind:
// it is created before the first collection batch and removed once the
// records are done and the trash is empty, so that commands can check
// for unfinished work with one stat instead of opening the database.
func (s *Store) GCMarker() string { return GCMarkerIn(s.dir) }

// GCMarkerIn is GCMarker for a store directory that is not open.
func GCMarkerIn(dir string) string { return filepath.Join(dir, ".nexis", "gc-pending") }

// GCNode is what the collector reads of one registered path.
type GCNode struct {
	Path       storepath.Path
	Size       int64
	Files      int
	Registered time.Time
	Refcount   uint64
	// Refs are the hashes of the paths this one refers to, itself
	// excluded.
	Refs []string
	// Contents are the pooled contents of its non-empty regular files,
	// one entry per file.
	Contents []ContentRef
}

// GCNodes reads the nodes of many paths in four batched reads (one per
// family), nil for hashes that are not registered: a collection reads
// the garbage a wave at a time, not a path at a time. A large wave is
// read in two halves at once: the reads are CPU work in RocksDB (block
// lookups, decompression), and there are two cores.
func (s *Store) GCNodes(hashes []string) ([]*GCNode, error) {
	const split = 2048
	if len(hashes) < split {
		return s.gcNodes(hashes)
	}
	h := len(hashes) / 2
	var a []*GCNode
	var aerr error
	done := make(chan struct{})
	go func() {
		a, aerr = s.gcNodes(hashes[:h])
		close(done)
	}()
	b, berr := s.gcNodes(hashes[h:])
	<-done
	if err := errors.Join(aerr, berr); err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

func (s *Store) gcNodes(hashes []string) ([]*GCNode, error) {
	out := make([]*GCNode, len(hashes))
	if len(hashes) == 0 {
		return out, nil
	}
	keys := make([][]byte, len(hashes))
	for i, h := range hashes {
		keys[i] = []byte(h)
	}
	infos, err := s.multiGet(cfPaths, keys)
	if err != nil {
		return nil, err
	}
	var live [][]byte
	var at []int
	for i, b := range infos {
		if b != nil {
			live = append(live, keys[i])
			at = append(at, i)
		}
	}
	counts, err := s.multiGet(cfRefcount, live)
	if err != nil {
		return nil, err
	}
	refs, err := s.multiGet(cfRefs, live)
	if err != nil {
		return nil, err
	}
	mans, err := s.multiGet(cfManifest, live)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		h := hashes[i]
		pi, err := decodeInfo(h, infos[i])
		if err != nil {
			return nil, err
		}
		n := &GCNode{Path: pi.Path, Size: pi.Size, Files: pi.Files, Registered: pi.Registered}
		if counts[j] != nil {
			d := decoder{b: counts[j]}
			n.Refcount = d.uvarint()
			if d.err != nil {
				return nil, fmt.Errorf("refcount of %s: %w", h, d.err)
			}
		}
		rs, err := unpackHashes(refs[j])
		if err != nil {
			return nil, fmt.Errorf("references of %s: %w", h, err)
		}
		for _, r := range rs {
			if r != h {
				n.Refs = append(n.Refs, r)
			}
		}
		files, err := decodeManifest(mans[j])
		if err != nil {
			return nil, fmt.Errorf("manifest of %s: %w", s.Logical(pi.Path), err)
		}
		for k := range files {
			f := &files[k]
			if f.Type.IsRegular() && f.Size > 0 {
				n.Contents = append(n.Contents, ContentRef{Digest: f.Digest, Type: f.Type, Size: f.Size})
			}
		}
		out[i] = n
	}
	return out, nil
}

// RefcountsOf returns the refcounts of many paths in one batched read;
// ok[i] is false for a hash that has no count (is not registered).
func (s *Store) RefcountsOf(hashes []string) (counts []uint64, ok []bool, err error) {
	keys := make([][]byte, len(hashes))
	for i, h := range hashes {
		keys[i] = []byte(h)
	}
	vals, err := s.multiGet(cfRefcount, keys)
	if err != nil {
		return nil, nil, err
	}
	counts = make([]uint64, len(hashes))
	ok = make([]bool, len(hashes))
	for i, b := range vals {
		if b == nil {
			continue
		}
		d := decoder{b: b}
		counts[i] = d.uvarint()
		if d.err != nil {
			return nil, nil, fmt.Errorf("refcount of %s: %w", hashes[i], d.err)
		}
		ok[i] = true
	}
	return counts, ok, nil
}

// ContentCounts returns the number of registered files holding each of
// cs in one batched read (0 for a content no file holds).
func (s *Store) ContentCounts(cs []ContentRef) ([]uint64, error) {
	keys := make([][]byte, len(cs))
	for i, c := range cs {
		k := c.key()
		keys[i] = k[:]
	}
	vals, err := s.multiGet(cfContent, keys)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(cs))
	for i, b := range vals {
		if b == nil {
			continue
		}
		v, err := decodeContent(b)
		if err != nil {
			return nil, fmt.Errorf("content count of %s: %w", cs[i].Digest, err)
		}
		out[i] = v.count
	}
	return out, nil
}

// ZeroHashes calls fn with the hash of every path whose refcount is zero,
// in key order: the collector's work list, read without touching "paths".
func (s *Store) ZeroHashes(fn func(hash string) error) error {
	return s.iterate(cfZero, nil, func(k, v []byte) error { return fn(string(k)) })
}

// ReferrerHashes returns the hashes of the paths referring to hash.
func (s *Store) ReferrerHashes(hash string) ([]string, error) { return s.referrerHashes(hash) }

// ForEachRefs calls fn for every registered path with the hashes it
// refers to (itself excluded): one pass over the graph, for full sweeps.
func (s *Store) ForEachRefs(fn func(hash string, refs []string) error) error {
	return s.iterate(cfRefs, nil, func(k, v []byte) error {
		refs, err := unpackHashes(v)
		if err != nil {
			return fmt.Errorf("references of %s: %w", k, err)
		}
		h := string(k)
		out := refs[:0]
		for _, r := range refs {
			if r != h {
				out = append(out, r)
			}
		}
		return fn(h, out)
	})
}

// ForEachRefcount calls fn for every stored refcount.
func (s *Store) ForEachRefcount(fn func(hash string, n uint64) error) error {
	return s.iterate(cfRefcount, nil, func(k, v []byte) error {
		d := decoder{b: v}
		n := d.uvarint()
		if d.err != nil {
			return fmt.Errorf("refcount of %s: %w", k, d.err)
		}
		return fn(string(k), n)
	})
}

// ForEachPath calls fn for every registered path (references not
// filled in), in hash order.
func (s *Store) ForEachPath(fn func(pi *PathInfo) error) error {
	return s.iterate(cfPaths, nil, func(k, v []byte) error {
		pi, err := decodeInfo(string(k), v)
		if err != nil {
			return err
		}
		return fn(pi)
	})
}

// CollectResult is what one CollectBatch did.
type CollectResult struct {
	Paths    []storepath.Path
	Contents []ContentRef
	// Bytes is the sum of the collected paths' sizes.
	Bytes int64
}

// CollectBatch unregisters the set ps in one synced batch, after
// dropping the named roots in the same batch. Every path of the set must
// be neither rooted nor referred to from outside the set (referrers
// inside it, cycles included, are fine), else nothing changes and the
// error says which path is still held. The batch also records each path
// and each content whose count reaches zero for FinishCollect: after the
// commit, the directories are garbage whatever happens to this process.
func (s *Store) CollectBatch(ps []storepath.Path, dropRoots []string) (*CollectResult, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTxn()
	defer t.destroy()
	st, err := t.loadStats()
	if err != nil {
		return nil, err
	}
	for _, name := range dropRoots {
		if err := s.removeRootTxn(t, name); err != nil {
			return nil, fmt.Errorf("dropping root: %w", err)
		}
	}
	set := make(map[string]bool, len(ps))
	for _, p := range ps {
		set[p.Hash] = true
	}
	type gone struct {
		p     storepath.Path
		files int
		size  int64
		man   []treehash.File
	}
	var todo []gone
	res := &CollectResult{}
	// Edges first, so that a referrer inside the set is gone before the
	// counts of the set are checked.
	for _, p := range ps {
		pi, err := s.queryInfoHash(p.Hash)
		if err != nil {
			return nil, err
		}
		if pi == nil || pi.Path.Name != p.Name {
			return nil, fmt.Errorf("collecting %s: %w", s.Logical(p), ErrNotValid)
		}
		refs, err := s.refHashes(p.Hash)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if r == p.Hash {
				continue
			}
			t.del(cfReferrers, []byte(r+p.Hash))
			if _, err := t.addRefcount(r, -1); err != nil {
				return nil, err
			}
		}
		b, err := s.get(cfManifest, []byte(p.Hash))
		if err != nil {
			return nil, err
		}
		man, err := decodeManifest(b)
		if err != nil {
			return nil, fmt.Errorf("manifest of %s: %w", s.Logical(p), err)
		}
		todo = append(todo, gone{p: p, files: pi.Files, size: pi.Size, man: man})
	}
	zero := map[contentKey]ContentRef{}
	for _, g := range todo {
		rc, err := t.loadRefcount(g.p.Hash)
		if err != nil {
			return nil, err
		}
		if rc.n != 0 {
			return nil, fmt.Errorf("collecting %s: it is still referenced or rooted (count %d)", s.Logical(g.p), rc.n)
		}
		for i := range g.man {
			f := &g.man[i]
			if !f.Type.IsRegular() || f.Size == 0 {
				continue
			}
			n, err := t.addContent(keyOf(f), f.Size, -1)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				zero[keyOf(f)] = ContentRef{Digest: f.Digest, Type: f.Type, Size: f.Size}
			}
		}
		hk := []byte(g.p.Hash)
		t.del(cfPaths, hk)
		t.del(cfRefs, hk)
		t.del(cfManifest, hk)
		t.dropPath(g.p.Hash)
		t.put(cfDefault, append(bytes.Clone(gcPathPrefix), g.p.Hash...), []byte(g.p.Name))
		st.Paths--
		st.Files -= int64(g.files)
		st.Bytes -= g.size
		res.Paths = append(res.Paths, g.p)
		res.Bytes += g.size
	}
	for k, c := range zero {
		if t.content[k].count == 0 {
			t.put(cfDefault, append(bytes.Clone(gcContentPrefix), k[:]...), appendUvarint(nil, uint64(c.Size)))
			res.Contents = append(res.Contents, c)
		}
	}
	if err := t.commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// FinishStats is what FinishCollect (or Collect) did on disk.
type FinishStats struct {
	// Moved directories went from their buckets into the trash.
	Moved int
	// PoolRemoved pool entries were deleted, or (with hard links) handed
	// to the trash's release list.
	PoolRemoved int
	// Records were processed (some needed nothing: already done, or the
	// path was registered again since).
	Records int
	// Restored directories went back from a collection's staging
	// directory to their buckets: its batch had not committed.
	Restored int
	// Where the time went: the synced batch (Collect only), the renames
	// and pool releases, the syncfs, and the batch dropping the records.
	Commit, Rename, Sync, Drop time.Duration
}

// gcRec is one collection record: a path (p) or a content (k).
type gcRec struct {
	p    storepath.Path
	k    contentKey
	size int64
}

func encodeBatchRecord(paths, contents []gcRec) []byte {
	b := appendUvarint(nil, uint64(len(paths)))
	for _, r := range paths {
		b = append(b, r.p.Hash...)
		b = appendUvarint(b, uint64(len(r.p.Name)))
		b = append(b, r.p.Name...)
	}
	b = appendUvarint(b, uint64(len(contents)))
	for _, r := range contents {
		b = append(b, r.k[:]...)
		b = appendUvarint(b, uint64(r.size))
	}
	return b
}

func decodeBatchRecord(v []byte) (paths, contents []gcRec, err error) {
	d := decoder{b: v}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		h := d.bytes(storepath.HashLen)
		name := d.bytes(int(d.uvarint()))
		paths = append(paths, gcRec{p: storepath.Path{Hash: string(h), Name: string(name)}})
	}
	m := d.uvarint()
	for i := uint64(0); i < m && d.err == nil; i++ {
		var r gcRec
		copy(r.k[:], d.bytes(len(contentKey{})))
		r.size = int64(d.uvarint())
		contents = append(contents, r)
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("collection record: %w", d.err)
	}
	return paths, contents, nil
}

// Collect is CollectBatch for nodes that GCNodes read while this process
// held the writer lock, followed at once by the disk work of
// FinishCollect: the commit lock is held throughout, so no registration
// of this process can come between, and the nodes' references and
// manifests are used as read instead of read again (their counts are
// read again: an earlier batch of the same plan changed them).
//
// The directories are renamed while the batch is read and built, not
// after its commit: into the staging directory (<store>/.nexis/
// gc-staging/<h0h1>/), which nothing deletes, grouped by bucket, in
// parallel with the database work; the synced write waits for them. Once the synced batch has
// unregistered them, one rename moves the staging directory into the
// trash (trash.StagedPrefix), one fsync makes that durable, pool entries
// are released, and the records are dropped in a batch that need not be
// synced (replaying them is idempotent). A crash before the commit
// leaves registered paths in staging, which the next FinishCollect (any
// nexis command, through the marker) moves back; one after it leaves
// unregistered ones, which it moves into the trash (settleStaging).
func (s *Store) Collect(nodes []*GCNode, dropRoots []string, workers int) (*CollectResult, FinishStats, error) {
	var fst FinishStats
	if err := s.writable(); err != nil {
		return nil, fst, err
	}
	if workers <= 0 {
		workers = 2
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	paths := make([]gcRec, len(nodes))
	for i, n := range nodes {
		paths[i] = gcRec{p: n.Path}
	}
	staging := s.stagingDir()
	if err := os.Mkdir(staging, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fst, fmt.Errorf("creating the collection's staging directory: %w", err)
	}
	type staged struct {
		moved int
		took  time.Duration
		err   error
	}
	renamed := make(chan staged, 1)
	go func() {
		t0 := time.Now()
		// A copy: renameInto sorts it, and the batch record keeps the
		// plan's order.
		n, err := s.renameInto(staging, append([]gcRec(nil), paths...), workers, false)
		renamed <- staged{n, time.Since(t0), err}
	}()
	tc := time.Now()
	var st staged
	waited := false
	res, key, contents, err := s.collectCommit(nodes, dropRoots, paths, func() error {
		// The synced write goes alone: renames running beside it queue
		// in the same file system journal that its fsync commits (on
		// 1,000 paths that slowed the write 2-10x).
		st, waited = <-renamed, true
		return st.err
	})
	fst.Commit = time.Since(tc)
	fst.Rename = st.took
	if err != nil {
		// Whatever committed decides: registered paths go back to their
		// buckets, the others into the trash.
		if !waited {
			<-renamed // the batch failed before it waited for them
		}
		_, serr := s.settleStaging()
		return nil, fst, errors.Join(err, serr)
	}
	tr := time.Now()
	moved, err := s.stagingToTrash()
	if err != nil {
		return nil, fst, err
	}
	fst.Rename += time.Since(tr)
	rest, err := s.finishRecords(nil, contents, [][]byte{key}, workers, false, moved)
	rest.Commit, rest.Rename = fst.Commit, fst.Rename+rest.Rename
	rest.Moved = st.moved
	rest.Records = len(paths) + len(contents)
	return res, rest, err
}

// collectCommit is the synced batch of Collect: it unregisters the
// nodes' paths (paths are their records) and records them, and returns
// the record's key and the contents whose count reached zero. Before it
// writes, it calls ready, and writes nothing if that fails.
func (s *Store) collectCommit(nodes []*GCNode, dropRoots []string, paths []gcRec, ready func() error) (*CollectResult, []byte, []gcRec, error) {
	t := s.newTxn()
	defer t.destroy()
	st, err := t.loadStats()
	if err != nil {
		return nil, nil, nil, err
	}
	for _, name := range dropRoots {
		if err := s.removeRootTxn(t, name); err != nil {
			return nil, nil, nil, fmt.Errorf("dropping root: %w", err)
		}
	}
	// The counts of the set (earlier batches of the same plan changed
	// them since it was read), of what it refers to and of its contents,
	// in a few batched reads.
	var hs []string
	var keys []contentKey
	for _, n := range nodes {
		hs = append(hs, n.Path.Hash)
		hs = append(hs, n.Refs...)
		for _, c := range n.Contents {
			keys = append(keys, c.key())
		}
	}
	if err := t.prefetch(hs, keys); err != nil {
		return nil, nil, nil, err
	}
	for _, n := range nodes {
		for _, r := range n.Refs {
			t.del(cfReferrers, []byte(r+n.Path.Hash))
			if _, err := t.addRefcount(r, -1); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	res := &CollectResult{}
	zero := map[contentKey]ContentRef{}
	for _, n := range nodes {
		rc, err := t.loadRefcount(n.Path.Hash)
		if err != nil {
			return nil, nil, nil, err
		}
		if rc.n != 0 {
			return nil, nil, nil, fmt.Errorf("collecting %s: it is still referenced or rooted (count %d)", s.Logical(n.Path), rc.n)
		}
		for _, c := range n.Contents {
			k := c.key()
			v, err := t.addContent(k, c.Size, -1)
			if err != nil {
				return nil, nil, nil, err
			}
			if v == 0 {
				zero[k] = c
			}
		}
		hk := []byte(n.Path.Hash)
		t.del(cfPaths, hk)
		t.del(cfRefs, hk)
		t.del(cfManifest, hk)
		t.dropPath(n.Path.Hash)
		st.Paths--
		st.Files -= int64(n.Files)
		st.Bytes -= n.Size
		res.Paths = append(res.Paths, n.Path)
		res.Bytes += n.Size
	}
	var contents []gcRec
	for k, c := range zero {
		if t.content[k].count == 0 {
			contents = append(contents, gcRec{k: k, size: c.Size})
			res.Contents = append(res.Contents, c)
		}
	}
	key := []byte(randomName(string(gcBatchPrefix)))
	t.put(cfDefault, key, encodeBatchRecord(paths, contents))
	t.build()
	if err := ready(); err != nil {
		return nil, nil, nil, err
	}
	if err := t.write(); err != nil {
		return nil, nil, nil, err
	}
	s.hot.committed(t.ops)
	return res, key, contents, nil
}

// StagingDir holds the directories a collection has renamed out of
// their buckets but not yet into the trash (Collect).
func (s *Store) stagingDir() string { return filepath.Join(s.dir, ".nexis", "gc-staging") }

// StagedPrefix starts the names of staging directories moved whole into
// the trash: <trash>/staged-<rand>/<h0h1>/<hash>-<name>. store/trash
// keeps its own copy (it must not import this package).
const StagedPrefix = "staged-"

// stagingToTrash moves the staging directory into the trash in one
// rename, and reports whether there was one.
func (s *Store) stagingToTrash() (int, error) {
	if err := os.Mkdir(s.TrashDir(), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return 0, fmt.Errorf("creating the trash: %w", err)
	}
	err := os.Rename(s.stagingDir(), filepath.Join(s.TrashDir(), randomName(StagedPrefix)))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("moving the staged paths to the trash: %w", err)
	}
	return 1, nil
}

// settleStaging finishes a Collect that stopped between its renames into
// staging and the move of staging into the trash: a staged directory
// whose path is registered (its batch did not commit) goes back to its
// bucket, unless a new copy of the path was placed there since; the rest
// is garbage and goes into the trash. It makes nothing durable itself:
// a settlement a power cut undoes is done again, and the marker file
// that makes commands call FinishCollect goes only after an fsync.
func (s *Store) settleStaging() (restored int, err error) {
	staging := s.stagingDir()
	buckets, err := os.ReadDir(staging)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the collection's staging directory: %w", err)
	}
	var rels []string
	var keys [][]byte
	var ps []storepath.Path
	for _, b := range buckets {
		names, err := os.ReadDir(filepath.Join(staging, b.Name()))
		if err != nil {
			return 0, fmt.Errorf("reading the collection's staging directory: %w", err)
		}
		for _, e := range names {
			p, err := parseBase(e.Name())
			if err != nil {
				continue // not a path: garbage
			}
			rels = append(rels, filepath.Join(b.Name(), e.Name()))
			keys = append(keys, []byte(p.Hash))
			ps = append(ps, p)
		}
	}
	vals, err := s.multiGet(cfPaths, keys)
	if err != nil {
		return 0, err
	}
	left := len(ps)
	for _, b := range buckets {
		if !b.IsDir() {
			left++ // not ours: garbage
		}
	}
	for i, v := range vals {
		if v == nil {
			continue
		}
		pi, err := decodeInfo(ps[i].Hash, v)
		if err != nil {
			return restored, err
		}
		if pi.Path.Name != ps[i].Name {
			continue
		}
		dst := s.Physical(ps[i])
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
		if err == nil {
			err = renameNoReplace(unix.AT_FDCWD, filepath.Join(staging, rels[i]), unix.AT_FDCWD, dst)
		}
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			continue // placed again since: the staged copy is garbage
		}
		if err != nil {
			return restored, fmt.Errorf("moving %s back from the collection's staging directory: %w", dst, err)
		}
		restored++
		left--
	}
	if left == 0 {
		// Only empty buckets are left: the batch had not committed.
		for _, b := range buckets {
			unix.Rmdir(filepath.Join(staging, b.Name()))
		}
		if err := os.Remove(staging); err != nil {
			return restored, fmt.Errorf("removing the collection's staging directory: %w", err)
		}
		return restored, nil
	}
	_, err = s.stagingToTrash()
	return restored, err
}

// FinishCollect does the disk work that collection records describe:
// renames each unregistered directory into <trash>/<h0h1>/ and releases
// each pool entry whose count is still zero; then it drops the records.
// Idempotent: a record whose path is registered again or whose directory
// is already gone is just dropped.
func (s *Store) FinishCollect(workers int) (FinishStats, error) {
	var fst FinishStats
	if err := s.writable(); err != nil {
		return fst, err
	}
	// The commit lock keeps an ingest in this process from placing the
	// same path between our check and our rename.
	s.mu.Lock()
	defer s.mu.Unlock()
	restored, err := s.settleStaging()
	if err != nil {
		return fst, err
	}
	fst.Restored = restored
	var paths, contents []gcRec
	var keys [][]byte
	err = s.iterate(cfDefault, []byte("gc/"), func(k, v []byte) error {
		switch {
		case bytes.HasPrefix(k, gcPathPrefix) && len(k) == len(gcPathPrefix)+storepath.HashLen:
			paths = append(paths, gcRec{p: storepath.Path{Hash: string(k[len(gcPathPrefix):]), Name: string(v)}})
		case bytes.HasPrefix(k, gcContentPrefix) && len(k) == len(gcContentPrefix)+len(contentKey{}):
			var r gcRec
			copy(r.k[:], k[len(gcContentPrefix):])
			contents = append(contents, r)
		case bytes.HasPrefix(k, gcBatchPrefix):
			ps, cs, err := decodeBatchRecord(v)
			if err != nil {
				return err
			}
			paths = append(paths, ps...)
			contents = append(contents, cs...)
		default:
			return nil
		}
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if err != nil || len(keys) == 0 {
		return fst, err
	}
	// A settled staging directory went into the trash: finishRecords'
	// sync covers it.
	rest, err := s.finishRecords(paths, contents, keys, workers, true, 1)
	rest.Restored = restored
	return rest, err
}

// finishRecords moves the recorded paths into the trash and releases the
// recorded pool entries, makes that durable, and drops the records.
// recheck looks each path and content up first (after a crash, other
// commands may have registered them again since); right after the
// collecting commit, under the same hold of s.mu, nothing can have.
// staged counts renames into the trash made before (stagingToTrash)
// that its sync must also make durable.
func (s *Store) finishRecords(paths, contents []gcRec, keys [][]byte, workers int, recheck bool, staged int) (fst FinishStats, err error) {
	fst.Records = len(paths) + len(contents)
	if workers <= 0 {
		workers = 2
	}
	if recheck {
		if paths, err = s.stillUnregistered(paths); err != nil {
			return fst, err
		}
	}
	tr := time.Now()
	ordered := s.orderedLog()
	moved, err := s.renameInto(s.TrashDir(), paths, workers, ordered)
	fst.Moved = moved
	if err != nil {
		return fst, err
	}
	var release []gcRec
	for _, r := range contents {
		if recheck {
			b, err := s.get(cfContent, r.k[:])
			if err != nil {
				return fst, err
			}
			if b != nil {
				continue // counted again by a later ingest
			}
		}
		release = append(release, r)
	}
	n, err := s.releasePool(release, workers)
	fst.PoolRemoved = n
	fst.Rename = time.Since(tr)
	if err != nil {
		return fst, err
	}
	// The renames and the release list must be durable before the
	// records go, or a power cut could bring back directories nothing
	// remembers. With an ordered log the rename threads and releasePool
	// made them so; otherwise one syncfs does.
	ts := time.Now()
	switch {
	case !ordered && (moved > 0 || n > 0 || staged > 0):
		if err := syncFS(s.dir); err != nil {
			return fst, err
		}
	case ordered && staged > 0 && moved == 0 && n == 0:
		// One fsync commits the log that holds the staging rename.
		if err := fsyncPath(s.TrashDir()); err != nil {
			return fst, err
		}
	}
	fst.Sync = time.Since(ts)
	td := time.Now()
	defer func() { fst.Drop = time.Since(td) }()
	b := grocksdb.NewWriteBatch()
	defer b.Destroy()
	for _, k := range keys {
		b.DeleteCF(s.cfs[cfDefault], k)
	}
	// Unsynced: a record that comes back after a power cut is finished
	// again, finding nothing to do.
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := s.db.Write(wo, b); err != nil {
		return fst, fmt.Errorf("dropping collection records: %w", err)
	}
	return fst, nil
}

// orderedLog reports whether the store's file system journals every
// rename in one log that commits in order (ext4, XFS): there, fsyncing
// the directory a thread renamed into last makes all of that thread's
// renames durable, where an fsync per trash bucket would cost a device
// cache flush each (about a third of a millisecond here, for up to a
// thousand buckets). Elsewhere (btrfs logs per directory) one syncfs
// does it, writing back the file system's other dirty files too.
func (s *Store) orderedLog() bool {
	var st unix.Statfs_t
	return unix.Statfs(s.dir, &st) == nil && (st.Type == unix.EXT4_SUPER_MAGIC || st.Type == unix.XFS_SUPER_MAGIC)
}

// stillUnregistered keeps the records whose path is not registered (a
// later ingest may have registered it again).
func (s *Store) stillUnregistered(paths []gcRec) ([]gcRec, error) {
	keys := make([][]byte, len(paths))
	for i, r := range paths {
		keys[i] = []byte(r.p.Hash)
	}
	vals, err := s.multiGet(cfPaths, keys)
	if err != nil {
		return nil, err
	}
	out := paths[:0:0]
	for i, r := range paths {
		if vals[i] == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// renameInto moves the paths' directories into <root>/<h0h1>/ (root:
// the trash, or Collect's staging directory). Workers take whole
// buckets, in hash order, so that no two rename in or out of one
// directory and queue on its lock. With synced, each worker ends by
// fsyncing the bucket it renamed into last (see orderedLog).
func (s *Store) renameInto(root string, paths []gcRec, workers int, synced bool) (int, error) {
	if len(paths) == 0 {
		return 0, nil
	}
	sort.Slice(paths, func(i, j int) bool { return paths[i].p.Hash < paths[j].p.Hash })
	var groups [][]gcRec
	for i := 0; i < len(paths); {
		j := i + 1
		for j < len(paths) && paths[j].p.Hash[:2] == paths[i].p.Hash[:2] {
			j++
		}
		groups = append(groups, paths[i:j])
		i = j
	}
	var (
		moved, next atomic.Int64
		mu          sync.Mutex
		first       error
		wg          sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for w := 0; w < min(workers, len(groups)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := ""
			for {
				g := int(next.Add(1) - 1)
				if g >= len(groups) {
					break
				}
				n, err := s.renameGroup(root, groups[g])
				moved.Add(int64(n))
				if err != nil {
					fail(err)
					return
				}
				if n > 0 {
					last = filepath.Join(root, groups[g][0].p.Hash[:2])
				}
			}
			if synced && last != "" {
				err := fsyncPath(last)
				if errors.Is(err, fs.ErrNotExist) {
					// The worker emptied and removed it already.
					err = syncFS(s.dir)
				}
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	return int(moved.Load()), first
}

// renameGroup moves paths of one top bucket into their bucket under
// root, from directory descriptors (one name lookup a side) with
// renameat2's RENAME_NOREPLACE: os.Rename would stat the target first.
func (s *Store) renameGroup(root string, paths []gcRec) (int, error) {
	b := paths[0].p.Hash[:2]
	src, err := unix.Open(filepath.Join(s.dir, b), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil // every directory of the bucket is gone already
	}
	if err != nil {
		return 0, fmt.Errorf("moving to the trash: %w", err)
	}
	defer unix.Close(src)
	dir := filepath.Join(root, b)
	dst, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		// The worker removes empty trash buckets.
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("creating trash bucket: %w", err)
		}
		dst, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return 0, fmt.Errorf("moving to the trash: %w", err)
	}
	defer unix.Close(dst)
	moved := 0
	for _, r := range paths {
		from := r.p.Hash[2:4] + "/" + r.p.Base()
		err := renameNoReplace(src, from, dst, r.p.Base())
		if (errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY)) && root == s.TrashDir() {
			// An earlier copy of the same path waits in the trash. (In
			// staging, which holds one collection's paths, each once,
			// this is an error: a renamed copy could not be moved back.)
			err = renameNoReplace(src, from, dst, randomName(r.p.Base()+"."))
		}
		if errors.Is(err, unix.ENOENT) {
			// The trash bucket went while we held it open (the worker
			// removed it as empty): renames into it fail; make it again.
			if _, serr := os.Lstat(dir); serr != nil {
				unix.Close(dst)
				if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
					return moved, fmt.Errorf("creating trash bucket: %w", err)
				}
				if dst, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
					return moved, fmt.Errorf("moving to the trash: %w", err)
				}
				err = renameNoReplace(src, from, dst, r.p.Base())
			}
		}
		if errors.Is(err, unix.ENOENT) {
			continue // moved before a crash, or never placed
		}
		if err != nil {
			return moved, fmt.Errorf("moving %s to the trash: %w", s.Physical(r.p), err)
		}
		moved++
	}
	return moved, nil
}

// renameNoReplace renames without replacing an existing target; where
// the file system lacks RENAME_NOREPLACE, a plain rename (which cannot
// replace a non-empty directory either) does.
func renameNoReplace(olddir int, oldname string, newdir int, newname string) error {
	err := unix.Renameat2(olddir, oldname, newdir, newname, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) {
		err = unix.Renameat(olddir, oldname, newdir, newname)
	}
	return err
}

// ReleaseListPrefix starts the names of the trash's release lists: files
// of pool entries (one path relative to the store a line) whose content
// no registered path counts any more. With hard links a pool entry is
// the same inode as the files of the collected paths, so unlinking it
// frees nothing while those wait in the trash: the trash's worker
// unlinks each entry after deleting them, unless a new path has linked
// the inode since (a link count above zero after the unlink; the entry
// is linked back then). Deleting them here would cost the collection an
// unlink per content, in the time the user waits.
const ReleaseListPrefix = "release-"

// releasePool removes the pool entries of contents whose count reached
// zero: with hard links through a release list in the trash, otherwise
// (clones are inodes of their own; copies have no pool) at once.
func (s *Store) releasePool(rs []gcRec, workers int) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	if s.dedup == DedupHardlink {
		var b bytes.Buffer
		for _, r := range rs {
			b.WriteString(".nexis/content/")
			b.WriteString(r.k.poolRel())
			b.WriteByte('\n')
		}
		p := filepath.Join(s.TrashDir(), randomName(ReleaseListPrefix))
		err := os.WriteFile(p, b.Bytes(), 0o644)
		if err == nil {
			err = fsyncPath(p)
		}
		if err == nil {
			err = fsyncPath(s.TrashDir())
		}
		if err != nil {
			return 0, fmt.Errorf("writing the trash's release list: %w", err)
		}
		return len(rs), nil
	}
	var removed atomic.Int64
	err := parallel.Do(len(rs), workers, func(i int) error {
		err := os.Remove(s.poolPath(rs[i].k))
		if err == nil {
			removed.Add(1)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing pool entry %s: %w", rs[i].k.Digest(), err)
		}
		return nil
	})
	return int(removed.Load()), err
}

// releasing returns the pool entries (physical paths) that the trash's
// release lists name: the worker has yet to release them.
func (s *Store) releasing() (map[string]bool, error) {
	out := map[string]bool{}
	ents, err := os.ReadDir(s.TrashDir())
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the trash: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), ReleaseListPrefix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.TrashDir(), e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading the trash's release list: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				out[filepath.Join(s.dir, filepath.FromSlash(l))] = true
			}
		}
	}
	return out, nil
}

// PendingCollect reports whether collection records are waiting.
func (s *Store) PendingCollect() (bool, error) {
	found := false
	err := s.iterate(cfDefault, []byte("gc/"), func(k, v []byte) error {
		found = true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return found, err
}

var errStop = errors.New("stop")

// AddRoots adds the named roots in one synced batch: for tools that root
// many paths at once (benchmarks, imports of a root set), where a commit
// per root would cost an fsync each.
func (s *Store) AddRoots(roots map[string]storepath.Path) error {
	if err := s.writable(); err != nil {
		return err
	}
	for name := range roots {
		if err := validRootName(name); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTxn()
	defer t.destroy()
	for name, p := range roots {
		if err := s.addRootTxn(t, name, p); err != nil {
			return err
		}
	}
	return t.commit()
}

// PoolEntry is the file of the content pool holding c (whether or not it
// exists).
func (s *Store) PoolEntry(c ContentRef) string { return s.poolPath(c.key()) }
