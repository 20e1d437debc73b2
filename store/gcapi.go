package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// This file is the surface the garbage collector (store/gc) builds on.
// The crash-safe order of a collection is:
//
//  1. Unregister (one synced batch): the metadata forgets the paths and
//     every count they held; from here the directories are garbage.
//  2. MoveToTrash each returned path: a crash before this leaves an
//     unregistered directory in a bucket, which verify reports and
//     `verify --repair` (or the next collection) moves on.
//  3. RemovePoolEntry each returned content: it re-checks the count under
//     the commit lock, since an ingest may have brought the content back.
//  4. EmptyTrash, in parallel, whenever convenient.

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

// UnregisterResult is what Unregister removed.
type UnregisterResult struct {
	// Paths were unregistered; their directories are still in the buckets.
	Paths []storepath.Path
	// Contents reached a count of zero; their pool entries may go.
	Contents []ContentRef
	// Skipped were asked for but are still referenced or rooted, or kept.
	Skipped []storepath.Path
}

// ZeroRefcount calls fn for every registered path whose refcount is zero:
// the candidates of a collection, found without scanning the store.
func (s *Store) ZeroRefcount(fn func(storepath.Path) error) error {
	return s.iterate(cfZero, nil, func(k, v []byte) error {
		p, ok, err := s.PathByHash(string(k))
		if err != nil || !ok {
			return err
		}
		return fn(p)
	})
}

// Unregister removes the given paths from the metadata in one synced
// batch, provided their refcount is zero once the others in the call
// are gone. With cascade, references whose count reaches zero go too,
// down the DAG. keep (may be nil) vetoes paths, e.g. temporary roots of
// running builds. References' counts and content counts are decremented
// exactly; the directories are left for MoveToTrash.
func (s *Store) Unregister(ps []storepath.Path, cascade bool, keep func(storepath.Path) bool) (*UnregisterResult, error) {
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
	res := &UnregisterResult{}
	gone := map[string]bool{}
	pending := append([]storepath.Path(nil), ps...)
	for progress := true; progress && len(pending) > 0; {
		progress = false
		var still []storepath.Path
		for len(pending) > 0 {
			p := pending[0]
			pending = pending[1:]
			if gone[p.Hash] {
				continue
			}
			pi, err := s.queryInfoHash(p.Hash)
			if err != nil {
				return nil, err
			}
			if pi == nil || pi.Path.Name != p.Name {
				return nil, fmt.Errorf("unregistering %s: %w", s.Logical(p), ErrNotValid)
			}
			rc, err := t.loadRefcount(p.Hash)
			if err != nil {
				return nil, err
			}
			if rc.n > 0 || (keep != nil && keep(p)) {
				still = append(still, p)
				continue
			}
			progress = true
			gone[p.Hash] = true
			res.Paths = append(res.Paths, p)
			refs, err := s.refHashes(p.Hash)
			if err != nil {
				return nil, err
			}
			for _, r := range refs {
				if r == p.Hash {
					continue
				}
				t.del(cfReferrers, []byte(r+p.Hash))
				n, err := t.addRefcount(r, -1)
				if err != nil {
					return nil, err
				}
				if n == 0 && cascade {
					rp, ok, err := s.PathByHash(r)
					if err != nil {
						return nil, err
					}
					if ok {
						pending = append(pending, rp)
					}
				}
			}
			b, err := s.get(cfManifest, []byte(p.Hash))
			if err != nil {
				return nil, err
			}
			files, err := decodeManifest(b)
			if err != nil {
				return nil, fmt.Errorf("manifest of %s: %w", s.Logical(p), err)
			}
			for i := range files {
				f := &files[i]
				if !f.Type.IsRegular() || f.Size == 0 {
					continue
				}
				n, err := t.addContent(keyOf(f), f.Size, -1)
				if err != nil {
					return nil, err
				}
				if n == 0 {
					res.Contents = append(res.Contents, ContentRef{Digest: f.Digest, Type: f.Type, Size: f.Size})
				}
			}
			hk := []byte(p.Hash)
			t.del(cfPaths, hk)
			t.del(cfRefs, hk)
			t.del(cfManifest, hk)
			t.dropPath(p.Hash)
			st.Paths--
			st.Files -= int64(pi.Files)
			st.Bytes -= pi.Size
		}
		pending = still
	}
	for _, p := range pending {
		if !gone[p.Hash] {
			res.Skipped = append(res.Skipped, p)
		}
	}
	// A content counted down to zero and back up within the batch is live.
	live := res.Contents[:0]
	for _, c := range res.Contents {
		if t.content[c.key()].count == 0 {
			live = append(live, c)
		}
	}
	res.Contents = live
	if err := t.commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// RemovePoolEntry deletes the pool's copy of c if no registered file
// holds that content. It reports whether it removed something.
func (s *Store) RemovePoolEntry(c ContentRef) (bool, error) {
	if err := s.writable(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := c.key()
	b, err := s.get(cfContent, k[:])
	if err != nil {
		return false, err
	}
	if b != nil {
		return false, nil
	}
	err = os.Remove(s.poolPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing pool entry %s: %w", c.Digest, err)
	}
	return true, nil
}

// EmptyTrash deletes everything in the trash, workers entries at a time.
func (s *Store) EmptyTrash(workers int) error {
	ents, err := os.ReadDir(s.TrashDir())
	if err != nil {
		return fmt.Errorf("reading trash: %w", err)
	}
	if workers <= 0 {
		workers = 2
	}
	return parallelDoN(len(ents), workers, func(i int) error {
		return removeTree(filepath.Join(s.TrashDir(), ents[i].Name()))
	})
}
