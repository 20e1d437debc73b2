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
// a binary cache, an export file, a remote nexis) and was unpacked at a
// path given by TempPath. Unlike Ingest, nothing is scanned for
// references: the references are the ones the (signed) path-info record
// lists, so the path's closure is exactly what its signer built.
type ImportRequest struct {
	// Dir is the unpacked tree, at a TempPath of this store. It is
	// consumed: moved into the store, or removed.
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

// TempPath returns a fresh path in the store's tmp area, on the store's
// filesystem so that Import moves instead of copying; nothing is created
// there. Like everything under tmp, what the caller makes there is
// removed by the next writable Open.
func (s *Store) TempPath() (string, error) {
	if err := s.writable(); err != nil {
		return "", err
	}
	return filepath.Join(s.tmpDir(), randomName("import-")), nil
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
		removeStaging(work)
		// Whatever was not moved into the store is garbage now.
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
		if err != nil || filepath.Dir(abs) != tmp || !strings.HasPrefix(filepath.Base(abs), "import-") {
			return nil, fmt.Errorf("importing %s: %s is not a TempPath of the store", s.Logical(r.Target), r.Dir)
		}
		if len(r.Files) == 0 || r.Files[0].Path != "" {
			return nil, fmt.Errorf("importing %s: the manifest has no root entry", s.Logical(r.Target))
		}
		if got := treehash.Hash(r.Files); got != r.TreeHash {
			return nil, fmt.Errorf("importing %s: its contents hash to %s, but its record says %s", s.Logical(r.Target), got, r.TreeHash)
		}
		// A signature says who vouches for the bytes; the content
		// address, when the record gives one, says what they must be.
		if err := s.checkContentAddress(r.Target, r.ContentAddress, r.Dir, r.Files, r.TreeHash, false); err != nil {
			return nil, fmt.Errorf("importing %s: %w", s.Logical(r.Target), err)
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

// importStaged normalises, places and registers work, as ingest does,
// with the references of the requests instead of scanned ones. A small
// import is made durable file by file; a large one is placed whole and
// then made durable with one syncfs before the commit (commitStaged).
func (s *Store) importStaged(reqs []ImportRequest, work []*staged, nfiles int) error {
	refsOf := map[string][]storepath.Path{}
	for i := range reqs {
		refsOf[reqs[i].Target.Hash] = reqs[i].References
	}
	perFile := nfiles <= perFileSyncMax
	pools := &poolDirs{}
	err := parallelDo(len(work), func(i int) error {
		if err := s.stageImport(work[i], perFile, pools); err != nil {
			return fmt.Errorf("importing %s: %w", s.Logical(work[i].req.Target), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if perFile {
		if err := pools.sync(); err != nil {
			return err
		}
	}
	for _, w := range work {
		w.refs = refsOf[w.req.Target.Hash]
	}
	return s.commitStaged(work, perFile, "importing", func(w *staged) string { return s.Logical(w.req.Target) })
}

// stageImport normalises an unpacked tree where it lies, in the tmp
// area: its files get their store modes and times and join the content
// pool, its directories are made read-only (the root stays writable
// until placed: a directory moving to another parent must be writable to
// update its ".."). Nothing is hashed again: the unpacker hashed every
// file as it wrote it, into a directory no one else writes.
func (s *Store) stageImport(w *staged, perFile bool, pools *poolDirs) error {
	w.root = w.req.Src
	files := w.tree.Files
	var dirs []string
	// Duplicates within the tree wait for their first copy to reach the
	// pool, so that they link to it rather than race it.
	var firsts, dups []int
	seen := map[contentKey]bool{}
	share := s.dedup.Pools()
	for i := range files {
		f := &files[i]
		p := w.root
		if f.Path != "" {
			p = filepath.Join(w.root, filepath.FromSlash(f.Path))
		}
		switch {
		case f.Type == treehash.Directory:
			dirs = append(dirs, p)
		case f.Type == treehash.Symlink:
			if err := setMtime(p); err != nil {
				return err
			}
		case share && f.Size > 0 && seen[keyOf(f)]:
			dups = append(dups, i)
		default:
			if share && f.Size > 0 {
				seen[keyOf(f)] = true
			}
			firsts = append(firsts, i)
		}
	}
	for _, set := range [][]int{firsts, dups} {
		for _, i := range set {
			f := &files[i]
			p := w.root
			if f.Path != "" {
				p = filepath.Join(w.root, filepath.FromSlash(f.Path))
			}
			if err := s.normaliseInPlace(p, f, share && f.Size > 0, perFile, pools); err != nil {
				return err
			}
		}
	}
	// Children before parents.
	for i := len(dirs) - 1; i >= 0; i-- {
		if dirs[i] != w.root {
			if err := os.Chmod(dirs[i], modeDir); err != nil {
				return err
			}
			if err := setMtime(dirs[i]); err != nil {
				return err
			}
		}
		if perFile {
			if err := fsyncPath(dirs[i]); err != nil {
				return err
			}
		}
	}
	if perFile {
		return fsyncPath(filepath.Dir(w.root))
	}
	return nil
}
