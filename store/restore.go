package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/contentaddr"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// RestoreRequest is a new copy of a registered path whose bytes on disk
// are damaged or gone (VerifyReport.Damaged): a rebuild, a download, a
// source read again.
type RestoreRequest struct {
	Path storepath.Path
	// Src is the new copy; with Move it is handed over (IngestOptions.Move).
	Src  string
	Move bool
	// Private restores a secret (IngestOptions.Private).
	Private bool
}

// ErrNotIdentical is wrapped when a new copy is not the registered one.
var ErrNotIdentical = errors.New("the new copy is not the registered one")

// Restore puts req.Src in place of the registered path req.Path, as
// nix-store --repair-path does: the copy is normalised and deduplicated
// (through pool entries that are checked first) and must hash to the
// tree the path is registered with, and match its content address. It
// is swapped in atomically (RENAME_EXCHANGE), and the damaged copy goes
// to the trash: a crash leaves one or the other in place, never none.
// The registration does not change, with one exception: a
// content-addressed path registered with bytes its address refuses (an
// import before nexis checked addresses) is registered again with the
// bytes it names, its references kept.
func (s *Store) Restore(req RestoreRequest) (*PathInfo, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	pi, err := s.QueryPathInfo(req.Path)
	if err != nil {
		return nil, err
	}
	old, err := s.Manifest(req.Path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(req.Src); err != nil {
		return nil, fmt.Errorf("restoring %s: %w", s.Logical(req.Path), err)
	}
	w := &staged{req: &IngestRequest{Src: req.Src, Target: req.Path, IngestOptions: IngestOptions{
		Move: req.Move, Private: req.Private, ContentAddress: pi.ContentAddress, Deriver: pi.Deriver, Impure: pi.Impure,
	}}}
	defer func() {
		if w.dir != "" {
			removeTree(w.dir)
		}
		if req.Move && !w.moved {
			removeTree(req.Src)
		}
	}()
	pools := &poolDirs{}
	if err := s.stageTree(w, nil, pools); err != nil {
		return nil, fmt.Errorf("restoring %s: %w", s.Logical(req.Path), err)
	}
	if err := s.checkContentAddress(req.Path, pi.ContentAddress, w.root, w.tree.Files, w.tree.Hash, false); err != nil {
		return nil, fmt.Errorf("restoring %s: the new copy: %w", s.Logical(req.Path), err)
	}
	reregister := false
	if w.tree.Hash != pi.TreeHash {
		c, err := contentaddr.Parse(pi.ContentAddress)
		if err != nil || !c.Checkable() {
			return nil, fmt.Errorf("restoring %s: %w: it hashes to %s, registered %s (a build that is not reproducible, or another build)", s.Logical(req.Path), ErrNotIdentical, w.tree.Hash, pi.TreeHash)
		}
		// The new copy is what the address names (checked above), so
		// the registered tree is not.
		reregister = true
	}
	if !w.perFile {
		if err := syncFS(s.tmpDir()); err != nil {
			return nil, err
		}
	}
	if err := s.commitPending(pools); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("restoring: store is closed")
	}
	if err := s.swapIn(w, req.Path); err != nil {
		return nil, fmt.Errorf("restoring %s: %w", s.Logical(req.Path), err)
	}
	reg := Registration{Path: req.Path, TreeHash: w.tree.Hash, Files: w.tree.Files, References: pi.References, Deriver: pi.Deriver, ContentAddress: pi.ContentAddress, Impure: pi.Impure}
	if reregister {
		if err := s.reregisterLocked(pi, old, reg); err != nil {
			return nil, err
		}
		pi.TreeHash, pi.Size, pi.Files = w.tree.Hash, w.tree.Size, len(w.tree.Files)
	}
	if s.dedup.Pools() && !req.Private {
		s.ensurePool([]Registration{reg})
	}
	return pi, nil
}

// swapIn exchanges the staged tree with whatever is at p's place (or
// renames it there when nothing is) and moves the old copy to the trash.
func (s *Store) swapIn(w *staged, p storepath.Path) error {
	final := s.Physical(p)
	bucket := filepath.Dir(final)
	if err := mkdirAllSynced(bucket, s.dir); err != nil {
		return err
	}
	exchanged := false
	if _, err := os.Lstat(final); err == nil {
		if err := unix.Renameat2(unix.AT_FDCWD, w.root, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("swapping in the new copy: %w", err)
		}
		exchanged = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	} else if err := os.Rename(w.root, final); err != nil {
		return fmt.Errorf("moving into the store: %w", err)
	}
	if err := settle(final, w.tree.Files[0].Type, true); err != nil {
		return err
	}
	if err := fsyncPath(bucket); err != nil {
		return err
	}
	if exchanged {
		// The damaged copy now lies where the new one was staged.
		return s.moveToTrash(w.root)
	}
	return nil
}

// reregisterLocked replaces p's registered tree (old manifest) with
// reg's in one batch: record, manifest, content counts, stats. The
// references stay.
func (s *Store) reregisterLocked(pi *PathInfo, old []treehash.File, reg Registration) error {
	t := s.newTxn()
	defer t.destroy()
	st, err := t.loadStats()
	if err != nil {
		return err
	}
	for i := range old {
		if f := &old[i]; f.Type.IsRegular() && f.Size > 0 {
			if _, err := t.addContent(keyOf(f), f.Size, -1); err != nil {
				return err
			}
		}
	}
	var size int64
	for i := range reg.Files {
		if f := &reg.Files[i]; f.Type.IsRegular() {
			size += f.Size
			if f.Size > 0 {
				if _, err := t.addContent(keyOf(f), f.Size, 1); err != nil {
					return err
				}
			}
		}
	}
	st.Files += int64(len(reg.Files) - pi.Files)
	st.Bytes += size - pi.Size
	npi := *pi
	npi.TreeHash, npi.Size, npi.Files = reg.TreeHash, size, len(reg.Files)
	hk := []byte(pi.Path.Hash)
	t.put(cfPaths, hk, encodeInfo(&npi))
	t.put(cfManifest, hk, encodeManifest(reg.Files))
	return t.commit()
}
