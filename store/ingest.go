package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// IngestOptions tune Ingest.
type IngestOptions struct {
	// RefCandidates are the only store paths looked for in the tree's
	// contents (the target itself is always looked for).
	RefCandidates []storepath.Path
	// Deriver is the identity of the derivation that built the tree.
	Deriver string
	// ContentAddress is recorded as given.
	ContentAddress string
	// Move hands src over: it is renamed into the store when on the same
	// filesystem (else copied, then removed) and is gone afterwards, even
	// when the target was already valid.
	Move bool
}

// IngestRequest is one tree of an IngestBatch.
type IngestRequest struct {
	Src    string
	Target storepath.Path
	IngestOptions
}

// perFileSyncMax is the size (in regular files) up to which a tree is
// made durable with an fsync per file; larger trees use one syncfs.
const perFileSyncMax = 32

// Ingest normalises, hashes and dedupes the finished tree at src, puts it
// at target and registers it with the references found among
// opts.RefCandidates. A target that is already valid is success.
func (s *Store) Ingest(src string, target storepath.Path, opts IngestOptions) (*PathInfo, error) {
	out, err := s.IngestBatch([]IngestRequest{{Src: src, Target: target, IngestOptions: opts}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// AddPath ingests the file or tree at src as a content-addressed path
// named name (treehash.ContentPath).
func (s *Store) AddPath(src, name string) (*PathInfo, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	tree, err := treehash.Scan(src, treehash.ScanOptions{})
	if err != nil {
		return nil, fmt.Errorf("adding %s: %w", src, err)
	}
	target, err := treehash.ContentPath(s.logical, name, tree.Hash)
	if err != nil {
		return nil, fmt.Errorf("adding %s: %w", src, err)
	}
	req := IngestRequest{Src: src, Target: target, IngestOptions: IngestOptions{ContentAddress: treehash.ContentAddress(tree.Hash)}}
	out, err := s.ingest([]IngestRequest{req}, []*treehash.Tree{tree})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// IngestBatch ingests several trees and registers them in one atomic
// batch, so that outputs of one build may refer to each other.
func (s *Store) IngestBatch(reqs []IngestRequest) ([]*PathInfo, error) {
	return s.ingest(reqs, make([]*treehash.Tree, len(reqs)))
}

type staged struct {
	req   *IngestRequest
	tree  *treehash.Tree
	dir   string // private directory under tmp
	root  string // the tree inside dir
	info  *PathInfo
	reg   Registration
	moved bool // src was consumed by a rename
}

func (s *Store) ingest(reqs []IngestRequest, trees []*treehash.Tree) ([]*PathInfo, error) {
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
	}()
	for i := range reqs {
		r := &reqs[i]
		if !storepath.IsHash(r.Target.Hash) {
			return nil, fmt.Errorf("ingesting %s: target hash %q is malformed", r.Src, r.Target.Hash)
		}
		if err := storepath.ValidName(r.Target.Name); err != nil {
			return nil, fmt.Errorf("ingesting %s: %w", r.Src, err)
		}
		if _, err := os.Lstat(r.Src); err != nil {
			return nil, fmt.Errorf("ingesting: %w", err)
		}
		pi, err := s.queryValid(r.Target)
		if err != nil {
			return nil, err
		}
		if pi != nil {
			out[i] = pi
			if r.Move {
				removeTree(r.Src)
			}
			continue
		}
		w := &staged{req: r, tree: trees[i]}
		if w.tree == nil {
			cands := map[string]struct{}{r.Target.Hash: {}}
			for _, c := range r.RefCandidates {
				cands[c.Hash] = struct{}{}
			}
			if w.tree, err = treehash.Scan(r.Src, treehash.ScanOptions{RefCandidates: cands}); err != nil {
				return nil, fmt.Errorf("ingesting %s: %w", r.Src, err)
			}
		}
		work = append(work, w)
	}
	if len(work) == 0 {
		return out, nil
	}
	nfiles := 0
	for _, w := range work {
		nfiles += len(w.tree.Files)
	}
	perFile := nfiles <= perFileSyncMax
	pools := &poolDirs{perFile: perFile}
	for _, w := range work {
		if err := s.stage(w, perFile, pools); err != nil {
			return nil, fmt.Errorf("ingesting %s: %w", w.req.Src, err)
		}
	}
	if perFile {
		if err := pools.sync(); err != nil {
			return nil, err
		}
	} else if err := syncFS(s.tmpDir()); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("ingesting: store is closed")
	}
	var regs []Registration
	var placed []*staged
	for _, w := range work {
		// Another goroutine may have registered the same path meanwhile.
		if pi, err := s.queryValid(w.req.Target); err != nil {
			return nil, err
		} else if pi != nil {
			w.info = pi
			continue
		}
		if err := s.place(w.root, w.req.Target, w.tree.Files[0].Type); err != nil {
			s.trashPlaced(placed)
			return nil, fmt.Errorf("ingesting %s: %w", w.req.Src, err)
		}
		placed = append(placed, w)
		refs := make([]storepath.Path, 0, len(w.tree.Refs))
		byHash := map[string]storepath.Path{w.req.Target.Hash: w.req.Target}
		for _, c := range w.req.RefCandidates {
			byHash[c.Hash] = c
		}
		for h := range w.tree.Refs {
			refs = append(refs, byHash[h])
		}
		regs = append(regs, Registration{
			Path:           w.req.Target,
			TreeHash:       w.tree.Hash,
			Files:          w.tree.Files,
			References:     refs,
			Deriver:        w.req.Deriver,
			ContentAddress: w.req.ContentAddress,
		})
	}
	infos, err := s.registerLocked(regs)
	if err != nil {
		s.trashPlaced(placed)
		return nil, err
	}
	if s.dedup == DedupHardlink || s.dedup == DedupReflink {
		s.ensurePool(regs)
	}
	byTarget := map[string]*PathInfo{}
	for _, pi := range infos {
		byTarget[pi.Path.Hash] = pi
	}
	for _, w := range work {
		if w.info == nil {
			w.info = byTarget[w.req.Target.Hash]
		}
		if w.req.Move && !w.moved {
			removeTree(w.req.Src)
		}
	}
	for i := range reqs {
		if out[i] == nil {
			out[i] = byTarget[reqs[i].Target.Hash]
			if out[i] == nil {
				for _, w := range work {
					if w.req.Target == reqs[i].Target && w.info != nil {
						out[i] = w.info
					}
				}
			}
		}
	}
	return out, nil
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

// MoveToTrash renames an unregistered path's directory into the trash,
// where the garbage collector deletes it. A registered path is refused.
func (s *Store) MoveToTrash(p storepath.Path) error {
	if err := s.writable(); err != nil {
		return err
	}
	if ok, err := s.IsValid(p); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%s is registered: unregister it first", s.Logical(p))
	}
	return s.moveToTrash(s.Physical(p))
}

// place renames a staged tree into its bucket. The root directory keeps
// a writable mode until after the rename (a directory moving to another
// parent must be writable to update its ".."), then gets its final mode.
func (s *Store) place(root string, target storepath.Path, rootType treehash.Type) error {
	final := s.Physical(target)
	bucket := filepath.Dir(final)
	if err := mkdirAllSynced(bucket, s.dir); err != nil {
		return err
	}
	if _, err := os.Lstat(final); err == nil {
		// An unregistered leftover of an interrupted ingest.
		if err := s.moveToTrash(final); err != nil {
			return err
		}
	}
	if err := os.Rename(root, final); err != nil {
		return fmt.Errorf("moving into the store: %w", err)
	}
	if rootType == treehash.Directory {
		if err := os.Chmod(final, modeDir); err != nil {
			return err
		}
		if err := setMtime(final); err != nil {
			return err
		}
		if err := fsyncPath(final); err != nil {
			return err
		}
	}
	return fsyncPath(bucket)
}

// stage builds the normalised, deduplicated tree of w under tmp.
func (s *Store) stage(w *staged, perFile bool, pools *poolDirs) error {
	dir, err := os.MkdirTemp(s.tmpDir(), "ingest-")
	if err != nil {
		return err
	}
	w.dir = dir
	w.root = filepath.Join(dir, "t")
	files := w.tree.Files
	move := false
	if w.req.Move {
		err := os.Rename(w.req.Src, w.root)
		switch {
		case err == nil:
			move, w.moved = true, true
		case errors.Is(err, unix.EXDEV):
		default:
			return fmt.Errorf("moving into the store: %w", err)
		}
	}
	var dirs []string
	for i := range files {
		f := &files[i]
		p := filepath.Join(w.root, filepath.FromSlash(f.Path))
		switch f.Type {
		case treehash.Directory:
			dirs = append(dirs, p)
			if move {
				// Writable while we work in it, whatever the builder left.
				if err := os.Chmod(p, 0o755); err != nil {
					return err
				}
			} else if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case treehash.Symlink:
			if !move {
				if err := os.Symlink(f.Target, p); err != nil {
					return err
				}
			}
			if err := setMtime(p); err != nil {
				return err
			}
		}
	}
	// Duplicates within the tree wait for their first copy to reach the
	// pool, so that they link to it rather than race it.
	var firsts, dups []int
	seen := map[contentKey]bool{}
	share := s.dedup == DedupHardlink || s.dedup == DedupReflink
	for i := range files {
		f := &files[i]
		if !f.Type.IsRegular() {
			continue
		}
		if share && f.Size > 0 {
			k := keyOf(f)
			if seen[k] {
				dups = append(dups, i)
				continue
			}
			seen[k] = true
		}
		firsts = append(firsts, i)
	}
	put := func(i int) error {
		f := &files[i]
		src := filepath.Join(w.req.Src, filepath.FromSlash(f.Path))
		dst := filepath.Join(w.root, filepath.FromSlash(f.Path))
		if move {
			return s.normaliseInPlace(dst, f, perFile, pools)
		}
		return s.putFile(src, dst, f, perFile, pools)
	}
	for _, set := range [][]int{firsts, dups} {
		if err := parallelDo(len(set), func(k int) error { return put(set[k]) }); err != nil {
			return err
		}
	}
	// Children before parents; the root stays writable until placed.
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
		return fsyncPath(dir)
	}
	return nil
}

func fileMode(f *treehash.File) uint32 {
	if f.Type == treehash.Executable {
		return modeExec
	}
	return modeFile
}

func (s *Store) poolPath(k contentKey) string {
	return filepath.Join(s.contentDir(), filepath.FromSlash(k.poolRel()))
}

// fromPool makes dst a copy of the pool's content k: a hard link to the
// pool inode, or a clone of it.
func (s *Store) fromPool(k contentKey, dst string, mode uint32) error {
	pool := s.poolPath(k)
	if s.dedup == DedupHardlink {
		return os.Link(pool, dst)
	}
	pf, err := os.Open(pool)
	if err != nil {
		return err
	}
	defer pf.Close()
	df, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer df.Close()
	if err := clone(df, pf); err != nil {
		os.Remove(dst)
		return err
	}
	if err := df.Chmod(fs.FileMode(mode)); err != nil {
		return err
	}
	return setMtimeFd(int(df.Fd()))
}

// toPool records the normalised file at p as the pool's copy of k. A
// pool entry that appeared meanwhile is as good as ours.
func (s *Store) toPool(k contentKey, p string, pools *poolDirs) error {
	pool := s.poolPath(k)
	if err := pools.ensure(filepath.Dir(pool)); err != nil {
		return err
	}
	if s.dedup == DedupHardlink {
		err := os.Link(p, pool)
		if err == nil || errors.Is(err, fs.ErrExist) {
			return nil
		}
		return fmt.Errorf("adding to the content pool: %w", err)
	}
	src, err := os.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := filepath.Join(s.tmpDir(), randomName("pool-"))
	df, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer df.Close()
	err = clone(df, src)
	if err == nil {
		err = df.Chmod(fs.FileMode(fileModeOfKey(k)))
	}
	if err == nil {
		err = setMtimeFd(int(df.Fd()))
	}
	if err == nil && pools.perFile {
		err = df.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, pool)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("adding to the content pool: %w", err)
	}
	return nil
}

func fileModeOfKey(k contentKey) uint32 {
	if treehash.Type(k[32]) == treehash.Executable {
		return modeExec
	}
	return modeFile
}

// putFile creates dst with the contents of src (known to be f).
func (s *Store) putFile(src, dst string, f *treehash.File, perFile bool, pools *poolDirs) error {
	mode := fileMode(f)
	share := (s.dedup == DedupHardlink || s.dedup == DedupReflink) && f.Size > 0
	if share {
		err := s.fromPool(keyOf(f), dst, mode)
		if err == nil {
			return nil
		}
		// A missing pool entry is new content; EMLINK (too many links to
		// one inode) and the like fall back to a private copy.
		if _, statErr := os.Lstat(dst); statErr == nil {
			os.Remove(dst)
		}
	}
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", src, err)
	}
	sf := os.NewFile(uintptr(sfd), src)
	defer sf.Close()
	df, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer df.Close()
	if f.Size > 0 {
		if s.dedup != DedupReflink || clone(df, sf) != nil {
			if err := copyData(df, sf, f.Size); err != nil {
				return fmt.Errorf("copying %s: %w", src, err)
			}
		}
	}
	if err := df.Chmod(fs.FileMode(mode)); err != nil {
		return err
	}
	if err := setMtimeFd(int(df.Fd())); err != nil {
		return err
	}
	if perFile {
		if err := df.Sync(); err != nil {
			return err
		}
	}
	if share {
		return s.toPool(keyOf(f), dst, pools)
	}
	return nil
}

// normaliseInPlace finishes a file of a tree that was moved in: it gets
// its own inode if it had other links (which may be outside the tree and
// must not see our chmod), then is replaced by the pool's copy or becomes
// it.
func (s *Store) normaliseInPlace(p string, f *treehash.File, perFile bool, pools *poolDirs) error {
	mode := fileMode(f)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	share := (s.dedup == DedupHardlink || s.dedup == DedupReflink) && f.Size > 0
	if share {
		tmp := p + ".nexis-tmp"
		if err := s.fromPool(keyOf(f), tmp, mode); err == nil {
			return os.Rename(tmp, p)
		}
		os.Remove(tmp)
	}
	if st.Nlink > 1 {
		tmp := p + ".nexis-tmp"
		if err := s.putFile(p, tmp, f, perFile, pools); err != nil {
			return err
		}
		return os.Rename(tmp, p)
	}
	{
		if err := os.Chmod(p, fs.FileMode(mode)); err != nil {
			return err
		}
		if err := setMtime(p); err != nil {
			return err
		}
		if perFile {
			if err := fsyncPath(p); err != nil {
				return err
			}
		}
	}
	if share {
		return s.toPool(keyOf(f), p, pools)
	}
	return nil
}

// ensurePool re-creates pool entries for contents a commit just made live
// when the entry is missing (a concurrent collection removed it between
// our link and our commit): linking to pool entries is done without the
// lock, so this is where the pool catches up.
func (s *Store) ensurePool(regs []Registration) {
	pools := &poolDirs{}
	for _, r := range regs {
		for i := range r.Files {
			f := &r.Files[i]
			if !f.Type.IsRegular() || f.Size == 0 {
				continue
			}
			k := keyOf(f)
			if _, err := os.Lstat(s.poolPath(k)); err == nil {
				continue
			}
			s.toPool(k, filepath.Join(s.Physical(r.Path), filepath.FromSlash(f.Path)), pools)
		}
	}
}

// poolDirs remembers which pool buckets exist, and which were touched so
// that a small ingest can fsync them.
type poolDirs struct {
	mu      sync.Mutex
	made    map[string]bool
	perFile bool
}

func (pd *poolDirs) ensure(dir string) error {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.made == nil {
		pd.made = map[string]bool{}
	}
	if _, ok := pd.made[dir]; ok {
		return nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	pd.made[dir] = true
	return nil
}

func (pd *poolDirs) sync() error {
	for d := range pd.made {
		if err := fsyncPath(d); err != nil {
			return err
		}
	}
	return nil
}
