package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Every tree enters the store the same way, whether it was built here
// (ingest), arrived from elsewhere (import) or replaces a damaged copy
// (restore): staged under tmp, normalised and pooled, then placed in its
// bucket and registered, in that order, under the commit lock.

// commitStaged places the staged trees of work in their buckets and
// registers them, with w.refs, in one batch; w.info is set for each. A
// target registered meanwhile (by another batch, or a content-addressed
// path added before) is taken as it is. With synced each placement is
// fsynced; otherwise one syncfs makes them all durable before the
// commit, so that a crash before it leaves unregistered directories,
// which verify reports as garbage, never a registered path that is
// incomplete. A failure moves what was placed to the trash. verb and
// name say what failed in errors ("ingesting <src>").
func (s *Store) commitStaged(work []*staged, synced bool, verb string, name func(*staged) string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: store is closed", verb)
	}
	// Placing is a rename and a few metadata calls per path, mostly
	// waiting on the filesystem: one at a time, it was the larger part
	// of committing a substitution of a thousand paths, so distinct
	// targets are placed several at once. A target twice in the batch
	// (two sources with the same content address) is placed again
	// afterwards, replacing the first, as one at a time did.
	var todo, again []*staged
	targets := map[string]bool{}
	for _, w := range work {
		if pi, err := s.queryValid(w.req.Target); err != nil {
			return err
		} else if pi != nil {
			w.info = pi
			continue
		}
		if targets[w.req.Target.Hash] {
			again = append(again, w)
			continue
		}
		targets[w.req.Target.Hash] = true
		todo = append(todo, w)
	}
	parallel := len(todo)
	todo = append(todo, again...)
	buckets := &bucketSet{made: map[string]bool{}}
	done := make([]bool, len(todo))
	placeOne := func(i int) error {
		w := todo[i]
		if err := s.place(w.root, w.req.Target, w.tree.Files[0].Type, synced, buckets); err != nil {
			return fmt.Errorf("%s %s: %w", verb, name(w), err)
		}
		done[i] = true
		return nil
	}
	err := parallelDo(parallel, placeOne)
	for i := parallel; i < len(todo) && err == nil; i++ {
		err = placeOne(i)
	}
	var placed []*staged
	for i, w := range todo {
		if done[i] {
			placed = append(placed, w)
		}
	}
	if err != nil {
		s.trashPlaced(placed)
		return err
	}
	regs := make([]Registration, 0, len(placed))
	for _, w := range placed {
		regs = append(regs, Registration{
			Path:           w.req.Target,
			TreeHash:       w.tree.Hash,
			Files:          w.tree.Files,
			References:     w.refs,
			Deriver:        w.req.Deriver,
			ContentAddress: w.req.ContentAddress,
			Impure:         w.req.Impure,
		})
	}
	if !synced {
		if err := syncFS(s.dir); err != nil {
			s.trashPlaced(placed)
			return err
		}
	}
	infos, err := s.registerLocked(regs)
	if err != nil {
		s.trashPlaced(placed)
		return err
	}
	if s.dedup.Pools() {
		s.ensurePool(regs)
	}
	byHash := make(map[string]*PathInfo, len(infos))
	for _, pi := range infos {
		byHash[pi.Path.Hash] = pi
	}
	for _, w := range work {
		if w.info == nil {
			w.info = byHash[w.req.Target.Hash]
		}
	}
	return nil
}

// removeStaging removes the private staging directories of work; what
// was placed has left them.
func removeStaging(work []*staged) {
	for _, w := range work {
		if w.dir != "" {
			removeTree(w.dir)
		}
	}
}

// scannedRefs are the references ingest found in w's contents, as paths:
// the target itself or one of the request's candidates.
func scannedRefs(w *staged) []storepath.Path {
	byHash := map[string]storepath.Path{w.req.Target.Hash: w.req.Target}
	for _, c := range w.req.RefCandidates {
		byHash[c.Hash] = c
	}
	refs := make([]storepath.Path, 0, len(w.tree.Refs))
	for h := range w.tree.Refs {
		refs = append(refs, byHash[h])
	}
	return refs
}

// queryValid returns p's info when p is valid, nil when it is not.
func (s *Store) queryValid(p storepath.Path) (*PathInfo, error) {
	pi, err := s.QueryPathInfo(p)
	if errors.Is(err, ErrNotValid) {
		return nil, nil
	}
	return pi, err
}

// trashPlaced undoes place for a batch whose commit failed: the paths are
// unregistered, so the trash is where they belong.
func (s *Store) trashPlaced(placed []*staged) {
	for _, w := range placed {
		s.moveToTrash(s.Physical(w.req.Target))
	}
}

func (s *Store) moveToTrash(p string) error {
	dst := filepath.Join(s.TrashDir(), randomName(filepath.Base(p)+"."))
	if err := os.Rename(p, dst); err != nil {
		return fmt.Errorf("moving %s to the trash: %w", p, err)
	}
	return nil
}

// place renames a staged tree into its bucket: an unregistered
// leftover of an interrupted ingest at the same place goes to the trash
// first. The root directory keeps a writable mode until after the rename
// (a directory moving to another parent must be writable to update its
// ".."), then settles. With synced the bucket and the root are fsynced;
// otherwise the caller syncs the filesystem, and buckets remembers the
// buckets made so far.
func (s *Store) place(root string, target storepath.Path, rootType treehash.Type, synced bool, buckets *bucketSet) error {
	final := s.Physical(target)
	bucket := filepath.Dir(final)
	if synced {
		if err := mkdirAllSynced(bucket, s.dir); err != nil {
			return err
		}
	} else if err := buckets.ensure(bucket); err != nil {
		return err
	}
	if _, err := os.Lstat(final); err == nil {
		if err := s.moveToTrash(final); err != nil {
			return err
		}
	}
	if err := os.Rename(root, final); err != nil {
		return fmt.Errorf("moving into the store: %w", err)
	}
	if err := settle(final, rootType, synced); err != nil {
		return err
	}
	if synced {
		return fsyncPath(bucket)
	}
	return nil
}

// bucketSet remembers the buckets a batch made sure of, for the places
// that run at once.
type bucketSet struct {
	mu   sync.Mutex
	made map[string]bool
}

// ensure creates bucket when missing (MkdirAll tolerates a concurrent
// creator).
func (b *bucketSet) ensure(bucket string) error {
	b.mu.Lock()
	ok := b.made[bucket]
	b.mu.Unlock()
	if ok {
		return nil
	}
	if err := os.MkdirAll(bucket, 0o755); err != nil {
		return err
	}
	b.mu.Lock()
	b.made[bucket] = true
	b.mu.Unlock()
	return nil
}

// settle gives a tree's root, once in its bucket, its final mode and
// mtime (a directory's; the rest of the tree has them already), and
// makes that durable when synced.
func settle(final string, rootType treehash.Type, synced bool) error {
	if rootType != treehash.Directory {
		return nil
	}
	if err := os.Chmod(final, modeDir); err != nil {
		return err
	}
	if err := setMtime(final); err != nil {
		return err
	}
	if synced {
		return fsyncPath(final)
	}
	return nil
}
