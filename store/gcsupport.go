package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

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

// This file is the collector's second surface (store/gc): lean reads of
// the graph, and a collection batch that records, in the same synced
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

var (
	gcPathPrefix    = []byte("gc/p/")
	gcContentPrefix = []byte("gc/c/")
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
	Registered time.Time
	Refcount   uint64
	// Refs are the hashes of the paths this one refers to, itself
	// excluded.
	Refs []string
	// Contents are the pooled contents of its non-empty regular files,
	// one entry per file.
	Contents []ContentRef
}

// GCNode reads the node of the path with the given hash; nil when no
// such path is registered.
func (s *Store) GCNode(hash string) (*GCNode, error) {
	pi, err := s.queryInfoHash(hash)
	if err != nil || pi == nil {
		return nil, err
	}
	n := &GCNode{Path: pi.Path, Size: pi.Size, Registered: pi.Registered}
	if n.Refcount, err = s.getUint(cfRefcount, []byte(hash)); err != nil {
		return nil, err
	}
	refs, err := s.refHashes(hash)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		if r != hash {
			n.Refs = append(n.Refs, r)
		}
	}
	b, err := s.get(cfManifest, []byte(hash))
	if err != nil {
		return nil, err
	}
	files, err := decodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", s.Logical(pi.Path), err)
	}
	for i := range files {
		f := &files[i]
		if f.Type.IsRegular() && f.Size > 0 {
			n.Contents = append(n.Contents, ContentRef{Digest: f.Digest, Type: f.Type, Size: f.Size})
		}
	}
	return n, nil
}

// ContentCount is the number of registered files holding c.
func (s *Store) ContentCount(c ContentRef) (uint64, error) {
	k := c.key()
	b, err := s.get(cfContent, k[:])
	if err != nil || b == nil {
		return 0, err
	}
	v, err := decodeContent(b)
	return v.count, err
}

// ZeroHashes calls fn with the hash of every path whose refcount is zero,
// in key order: the collector's work list, read without touching "paths".
func (s *Store) ZeroHashes(fn func(hash string) error) error {
	return s.iterate(cfZero, nil, func(k, v []byte) error { return fn(string(k)) })
}

// ReferrerHashes returns the hashes of the paths referring to hash.
func (s *Store) ReferrerHashes(hash string) ([]string, error) { return s.referrerHashes(hash) }

// RefHashes returns the hashes hash refers to, itself excluded.
func (s *Store) RefHashes(hash string) ([]string, error) {
	refs, err := s.refHashes(hash)
	if err != nil {
		return nil, err
	}
	out := refs[:0]
	for _, r := range refs {
		if r != hash {
			out = append(out, r)
		}
	}
	return out, nil
}

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

// FinishStats is what FinishCollect did.
type FinishStats struct {
	// Moved directories went from their buckets into the trash.
	Moved int
	// PoolRemoved pool entries were deleted.
	PoolRemoved int
	// Records were processed (some needed nothing: already done, or the
	// path was registered again since).
	Records int
}

// FinishCollect does the disk work that collection records describe:
// renames each unregistered directory into <trash>/<h0h1>/ (workers
// buckets at a time, so renames into different trash buckets do not
// queue on one directory lock) and removes each pool entry whose count is
// still zero; then it drops the records. Idempotent: a record whose path
// is registered again or whose directory is already gone is just dropped.
func (s *Store) FinishCollect(workers int) (FinishStats, error) {
	var fst FinishStats
	if err := s.writable(); err != nil {
		return fst, err
	}
	// The commit lock keeps an ingest in this process from placing the
	// same path between our check and our rename.
	s.mu.Lock()
	defer s.mu.Unlock()
	type rec struct {
		key []byte
		p   storepath.Path
		k   contentKey
	}
	var paths, contents []rec
	err := s.iterate(cfDefault, []byte("gc/"), func(k, v []byte) error {
		switch {
		case bytes.HasPrefix(k, gcPathPrefix) && len(k) == len(gcPathPrefix)+storepath.HashLen:
			paths = append(paths, rec{key: bytes.Clone(k), p: storepath.Path{Hash: string(k[len(gcPathPrefix):]), Name: string(v)}})
		case bytes.HasPrefix(k, gcContentPrefix) && len(k) == len(gcContentPrefix)+len(contentKey{}):
			var ck contentKey
			copy(ck[:], k[len(gcContentPrefix):])
			contents = append(contents, rec{key: bytes.Clone(k), k: ck})
		}
		return nil
	})
	if err != nil {
		return fst, err
	}
	if len(paths)+len(contents) == 0 {
		return fst, nil
	}
	fst.Records = len(paths) + len(contents)
	// Partition by bucket: worker w takes the paths whose first bucket
	// index is w modulo workers.
	if workers <= 0 {
		workers = 2
	}
	var mu sync.Mutex
	var moved int
	byWorker := make([][]rec, workers)
	for _, r := range paths {
		w := (int(r.p.Hash[0])*32 + int(r.p.Hash[1])) % workers
		byWorker[w] = append(byWorker[w], r)
	}
	err = parallelDoN(workers, workers, func(w int) error {
		n := 0
		for _, r := range byWorker[w] {
			pi, err := s.queryInfoHash(r.p.Hash)
			if err != nil {
				return err
			}
			if pi != nil {
				continue // registered again since: not ours any more
			}
			src := s.Physical(r.p)
			dir := filepath.Join(s.TrashDir(), r.p.Hash[:2])
			dst := filepath.Join(dir, r.p.Base())
			err = os.Rename(src, dst)
			if errors.Is(err, fs.ErrNotExist) {
				if _, serr := os.Lstat(src); errors.Is(serr, fs.ErrNotExist) {
					continue // moved before a crash, or never placed
				}
				// The trash bucket is missing.
				if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("creating trash bucket: %w", err)
				}
				err = os.Rename(src, dst)
			}
			if err != nil && (errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY)) {
				// An earlier copy of the same path waits in the trash.
				err = os.Rename(src, filepath.Join(dir, randomName(r.p.Base()+".")))
			}
			if err != nil {
				return fmt.Errorf("moving %s to the trash: %w", src, err)
			}
			n++
		}
		mu.Lock()
		moved += n
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fst, err
	}
	fst.Moved = moved
	var removed atomic.Int64
	err = parallelDoN(len(contents), workers, func(i int) error {
		r := contents[i]
		b, err := s.get(cfContent, r.k[:])
		if err != nil {
			return err
		}
		if b != nil {
			return nil // counted again by a later ingest
		}
		err = os.Remove(s.poolPath(r.k))
		if err == nil {
			removed.Add(1)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing pool entry %s: %w", r.k.Digest(), err)
		}
		return nil
	})
	fst.PoolRemoved = int(removed.Load())
	if err != nil {
		return fst, err
	}
	// The renames must be durable before the records go, or a power cut
	// could bring back directories nothing remembers.
	if moved > 0 {
		if err := syncFS(s.dir); err != nil {
			return fst, err
		}
	}
	t := s.newTxn()
	defer t.destroy()
	for _, r := range paths {
		t.del(cfDefault, r.key)
	}
	for _, r := range contents {
		t.del(cfDefault, r.key)
	}
	if err := t.commit(); err != nil {
		return fst, fmt.Errorf("dropping collection records: %w", err)
	}
	return fst, nil
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

// RefcountOf returns the refcount of the path with the given hash, and
// whether such a path has a count at all (is registered).
func (s *Store) RefcountOf(hash string) (uint64, bool, error) {
	b, err := s.get(cfRefcount, []byte(hash))
	if err != nil || b == nil {
		return 0, false, err
	}
	d := decoder{b: b}
	n := d.uvarint()
	if d.err != nil {
		return 0, false, fmt.Errorf("refcount of %s: %w", hash, d.err)
	}
	return n, true, nil
}
