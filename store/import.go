package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// ImportRequest is one tree that arrived from elsewhere (an archive from
// a binary cache, an export file, a remote nexis) and was unpacked into
// a directory made by TempDir. Unlike Ingest, nothing is scanned for
// references: the references are the ones the (signed) path-info record
// lists, so the path's closure is exactly what its signer built.
type ImportRequest struct {
	// Dir is the unpacked tree, at or under a TempDir of this store. It
	// is consumed: moved into the store, or removed.
	Dir    string
	Target storepath.Path
	// Files is the manifest the unpacker saw, sorted, digests included,
	// and TreeHash the tree hash the record promises: they must agree.
	Files    []treehash.File
	TreeHash treehash.Digest
	// References must each be valid already or imported in the same call.
	References     []storepath.Path
	Deriver        string
	ContentAddress string
}

// TempDir makes a private directory in the store's tmp area, on the
// store's filesystem so that Import moves instead of copying. Like
// everything under tmp it is removed by the next writable Open.
func (s *Store) TempDir() (string, error) {
	if err := s.writable(); err != nil {
		return "", err
	}
	d, err := os.MkdirTemp(s.tmpDir(), "import-")
	if err != nil {
		return "", fmt.Errorf("store temporary directory: %w", err)
	}
	return d, nil
}

// ErrMissingReference is wrapped by Import's error when a reference is
// neither valid nor part of the import.
var ErrMissingReference = errors.New("reference is not in the store")

// Import places and registers reqs in one atomic, synced batch: all of
// them or none. Targets that are already valid are skipped (their Dir is
// removed). Every reference must be valid or among reqs; a request whose
// manifest does not hash to its TreeHash is refused.
func (s *Store) Import(reqs []ImportRequest) ([]*PathInfo, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	out := make([]*PathInfo, len(reqs))
	var work []*staged
	defer func() {
		for _, w := range work {
			if w.dir != "" {
				removeTree(w.dir)
			}
		}
		// Whatever was not moved into the store is garbage now; the
		// caller removes its (then empty) TempDir.
		for i := range reqs {
			if _, err := os.Lstat(reqs[i].Dir); err == nil {
				removeTree(reqs[i].Dir)
			}
		}
	}()
	tmp, err := filepath.Abs(s.tmpDir())
	if err != nil {
		return nil, err
	}
	inBatch := map[string]string{}
	for i := range reqs {
		r := &reqs[i]
		if !storepath.IsHash(r.Target.Hash) {
			return nil, fmt.Errorf("importing: target hash %q is malformed", r.Target.Hash)
		}
		if err := storepath.ValidName(r.Target.Name); err != nil {
			return nil, fmt.Errorf("importing %s: %w", r.Target.Base(), err)
		}
		if prev, ok := inBatch[r.Target.Hash]; ok && prev != r.Target.Name {
			return nil, fmt.Errorf("importing %s and %s: same hash part, different names", storepath.Base(r.Target.Hash, prev), r.Target.Base())
		}
		inBatch[r.Target.Hash] = r.Target.Name
		abs, err := filepath.Abs(r.Dir)
		if err != nil || !strings.HasPrefix(abs, tmp+string(filepath.Separator)) {
			return nil, fmt.Errorf("importing %s: %s is not in the store's temporary area (use TempDir)", s.Logical(r.Target), r.Dir)
		}
		if len(r.Files) == 0 || r.Files[0].Path != "" {
			return nil, fmt.Errorf("importing %s: the manifest has no root entry", s.Logical(r.Target))
		}
		if got := treehash.Hash(r.Files); got != r.TreeHash {
			return nil, fmt.Errorf("importing %s: its contents hash to %s, but its record says %s", s.Logical(r.Target), got, r.TreeHash)
		}
	}
	for i := range reqs {
		r := &reqs[i]
		for _, ref := range r.References {
			if name, ok := inBatch[ref.Hash]; ok {
				if name != ref.Name {
					return nil, fmt.Errorf("importing %s: its reference %s does not match %s", s.Logical(r.Target), ref.Base(), storepath.Base(ref.Hash, name))
				}
				continue
			}
			ok, err := s.IsValid(ref)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("importing %s: %w: %s (import or copy its closure, references first)", s.Logical(r.Target), ErrMissingReference, s.Logical(ref))
			}
		}
	}
	seen := map[string]bool{}
	nfiles := 0
	for i := range reqs {
		r := &reqs[i]
		pi, err := s.queryValid(r.Target)
		if err != nil {
			return nil, err
		}
		if pi != nil || seen[r.Target.Hash] {
			out[i] = pi
			continue
		}
		seen[r.Target.Hash] = true
		w := &staged{
			req: &IngestRequest{Src: r.Dir, Target: r.Target, IngestOptions: IngestOptions{
				Move: true, Deriver: r.Deriver, ContentAddress: r.ContentAddress,
			}},
			tree: &treehash.Tree{Files: r.Files, Hash: r.TreeHash},
		}
		work = append(work, w)
		nfiles += len(r.Files)
	}
	if len(work) > 0 {
		if err := s.importStaged(reqs, work, nfiles); err != nil {
			return nil, err
		}
	}
	byHash := map[string]*PathInfo{}
	for _, w := range work {
		byHash[w.req.Target.Hash] = w.info
	}
	for i := range reqs {
		if out[i] == nil {
			out[i] = byHash[reqs[i].Target.Hash]
		}
		if out[i] == nil {
			// A duplicate of a target valid before the call.
			pi, err := s.QueryPathInfo(reqs[i].Target)
			if err != nil {
				return nil, err
			}
			out[i] = pi
		}
	}
	return out, nil
}

// importStaged stages, places and registers work, as ingest does, with
// the references of the requests instead of scanned ones.
func (s *Store) importStaged(reqs []ImportRequest, work []*staged, nfiles int) error {
	refsOf := map[string][]storepath.Path{}
	for i := range reqs {
		refsOf[reqs[i].Target.Hash] = reqs[i].References
	}
	perFile := nfiles <= perFileSyncMax
	pools := &poolDirs{perFile: perFile}
	for _, w := range work {
		if err := s.stage(w, perFile, pools); err != nil {
			return fmt.Errorf("importing %s: %w", s.Logical(w.req.Target), err)
		}
	}
	if perFile {
		if err := pools.sync(); err != nil {
			return err
		}
	} else if err := syncFS(s.tmpDir()); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("importing: store is closed")
	}
	var regs []Registration
	var placed []*staged
	for _, w := range work {
		if pi, err := s.queryValid(w.req.Target); err != nil {
			return err
		} else if pi != nil {
			w.info = pi
			continue
		}
		if err := s.place(w.root, w.req.Target, w.tree.Files[0].Type); err != nil {
			s.trashPlaced(placed)
			return fmt.Errorf("importing %s: %w", s.Logical(w.req.Target), err)
		}
		placed = append(placed, w)
		regs = append(regs, Registration{
			Path:           w.req.Target,
			TreeHash:       w.tree.Hash,
			Files:          w.tree.Files,
			References:     refsOf[w.req.Target.Hash],
			Deriver:        w.req.Deriver,
			ContentAddress: w.req.ContentAddress,
		})
	}
	infos, err := s.registerLocked(regs)
	if err != nil {
		s.trashPlaced(placed)
		return err
	}
	if s.dedup == DedupHardlink || s.dedup == DedupReflink {
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
