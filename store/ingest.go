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

// TreeHash is the canonical tree hash of the file or tree at p (see
// package treehash, which evaluation uses without linking RocksDB).
func TreeHash(p string) (treehash.Digest, error) { return treehash.TreeHash(p) }

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
	// Private makes the path, which must be a single regular file (a
	// secret), readable by root only from the moment it is in the store:
	// mode 0400 on an inode of its own, never shared through the pool,
	// so that no public copy of the same bytes becomes unreadable and
	// the secret never becomes readable.
	Private bool
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
	if err := storepath.ValidName(name); err != nil {
		return nil, fmt.Errorf("adding %s: %w", src, err)
	}
	out, err := s.ingest([]IngestRequest{{Src: src}}, name)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// IngestBatch ingests several trees and registers them in one atomic
// batch, so that outputs of one build may refer to each other.
func (s *Store) IngestBatch(reqs []IngestRequest) ([]*PathInfo, error) {
	return s.ingest(reqs, "")
}

type staged struct {
	req   *IngestRequest
	tree  *treehash.Tree
	dir   string // private directory under tmp
	root  string // the tree inside dir
	info  *PathInfo
	moved bool // src was consumed by a rename
	// perFile: the tree was made durable file by file; otherwise the
	// batch ends with one syncfs.
	perFile bool
}

// ingest stages, syncs, places and registers reqs. With caName set there
// is one request whose target is the content-addressed path of that name,
// known only once the tree is hashed.
func (s *Store) ingest(reqs []IngestRequest, caName string) ([]*PathInfo, error) {
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
		if _, err := os.Lstat(r.Src); err != nil {
			return nil, fmt.Errorf("ingesting: %w", err)
		}
		if caName == "" {
			if !storepath.IsHash(r.Target.Hash) {
				return nil, fmt.Errorf("ingesting %s: target hash %q is malformed", r.Src, r.Target.Hash)
			}
			if err := storepath.ValidName(r.Target.Name); err != nil {
				return nil, fmt.Errorf("ingesting %s: %w", r.Src, err)
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
		}
		work = append(work, &staged{req: r})
	}
	if len(work) == 0 {
		return out, nil
	}
	pools := &poolDirs{}
	syncAll := false
	for _, w := range work {
		cands := map[string]struct{}{}
		if caName == "" {
			cands[w.req.Target.Hash] = struct{}{}
			for _, c := range w.req.RefCandidates {
				cands[c.Hash] = struct{}{}
			}
		}
		if err := s.stageTree(w, cands, pools); err != nil {
			return nil, fmt.Errorf("ingesting %s: %w", w.req.Src, err)
		}
		if err := s.checkContentAddress(w.req.Target, w.req.ContentAddress, w.root, w.tree.Files, w.tree.Hash, false); err != nil {
			return nil, fmt.Errorf("ingesting %s as %s: %w", w.req.Src, s.Logical(w.req.Target), err)
		}
		syncAll = syncAll || !w.perFile
		if caName != "" {
			t, err := treehash.ContentPath(s.logical, caName, w.tree.Hash)
			if err != nil {
				return nil, fmt.Errorf("adding %s: %w", w.req.Src, err)
			}
			w.req.Target = t
			w.req.ContentAddress = treehash.ContentAddress(w.tree.Hash)
		}
	}
	if syncAll {
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
		return nil, errors.New("ingesting: store is closed")
	}
	var regs []Registration
	var placed []*staged
	for _, w := range work {
		// Already valid: registered by someone else meanwhile, or a
		// content-addressed path added before.
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
			for _, w := range work {
				if w.req == &reqs[i] {
					out[i] = w.info
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

// stage builds the normalised, deduplicated tree of w under tmp. Each
// file is hashed and then copied (or linked) by the same worker while its
// data is in the page cache: one pass over the tree, not a hashing pass
// and then a copying pass.
func (s *Store) stageTree(w *staged, cands map[string]struct{}, pools *poolDirs) error {
	files, err := treehash.List(w.req.Src)
	if err != nil {
		return err
	}
	expected := w.tree
	w.tree = &treehash.Tree{Files: files, Refs: map[string]struct{}{}}
	w.perFile = len(files) <= perFileSyncMax
	dir, err := os.MkdirTemp(s.tmpDir(), "ingest-")
	if err != nil {
		return err
	}
	w.dir = dir
	w.root = filepath.Join(dir, "t")
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
	var regular []int
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
			if len(cands) > 0 {
				treehash.ScanRefs([]byte(f.Target), cands, w.tree.Refs)
			}
			if !move {
				if err := os.Symlink(f.Target, p); err != nil {
					return err
				}
			}
			if err := setMtime(p); err != nil {
				return err
			}
		default:
			regular = append(regular, i)
			w.tree.Size += f.Size
		}
	}
	if w.req.Private && (len(files) != 1 || files[0].Type != treehash.Regular) {
		return fmt.Errorf("only a single plain file can be private")
	}
	share := (s.dedup == DedupHardlink || s.dedup == DedupReflink) && !w.req.Private
	var (
		mu sync.Mutex
		// first holds, per content, a channel closed once the first file
		// with it reached the pool: later ones wait and link to it
		// rather than race it.
		first = map[contentKey]chan struct{}{}
	)
	err = parallelDo(len(regular), func(k int) error {
		f := &files[regular[k]]
		src := filepath.Join(w.req.Src, filepath.FromSlash(f.Path))
		dst := filepath.Join(w.root, filepath.FromSlash(f.Path))
		hashed := src
		if move {
			hashed = dst
		}
		var refs map[string]struct{}
		if len(cands) > 0 {
			refs = map[string]struct{}{}
		}
		// One descriptor serves hashing and copying.
		sfd, err := treehash.OpenRegular(hashed)
		if err != nil {
			return err
		}
		defer unix.Close(sfd)
		d, n, err := treehash.HashFD(sfd, hashed, cands, refs)
		if err != nil {
			return err
		}
		if n != f.Size {
			return fmt.Errorf("%s changed while it was read (%d bytes, then %d)", hashed, f.Size, n)
		}
		f.Digest = d
		if len(refs) > 0 {
			mu.Lock()
			for r := range refs {
				w.tree.Refs[r] = struct{}{}
			}
			mu.Unlock()
		}
		shareThis := share && f.Size > 0
		if shareThis {
			key := keyOf(f)
			mu.Lock()
			ch, waiting := first[key]
			if !waiting {
				ch = make(chan struct{})
				first[key] = ch
			}
			mu.Unlock()
			if waiting {
				<-ch
			} else {
				defer close(ch)
			}
		}
		if move {
			return s.normaliseInPlace(dst, f, shareThis, w.perFile, pools)
		}
		return s.putFileFD(sfd, src, dst, f, shareThis, w.perFile, pools)
	})
	if err != nil {
		return err
	}
	if w.req.Private {
		// The file is ours alone (not shared, and copied when moved in
		// with other links): narrowing its mode touches nothing else.
		if err := os.Chmod(w.root, modePrivate); err != nil {
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
		if w.perFile {
			if err := fsyncPath(dirs[i]); err != nil {
				return err
			}
		}
	}
	w.tree.Hash = treehash.Hash(files)
	if expected != nil && expected.Hash != w.tree.Hash {
		return fmt.Errorf("contents hash to %s, expected %s", w.tree.Hash, expected.Hash)
	}
	if w.perFile {
		return fsyncPath(dir)
	}
	return nil
}

// stage is stageTree for callers that know the tree they expect (w.tree,
// checked against what is on disk) and scan no references. perFile is
// decided per tree now; pool entries of a tree that is not synced file by
// file wait for commitPending, or for ensurePool after registration.
func (s *Store) stage(w *staged, perFile bool, pools *poolDirs) error {
	return s.stageTree(w, nil, pools)
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

// linkOrClone makes dst share the data of src: a hard link, or a clone
// with its own inode (then given mode and mtime).
func (s *Store) linkOrClone(src, dst string, mode uint32) error {
	if s.dedup == DedupHardlink {
		return os.Link(src, dst)
	}
	sf, err := os.Open(src)
	if err != nil {
		return err
	}
	defer sf.Close()
	df, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer df.Close()
	if err := clone(df, sf); err != nil {
		os.Remove(dst)
		return err
	}
	if err := df.Chmod(fs.FileMode(mode)); err != nil {
		return err
	}
	return setMtimeFd(int(df.Fd()))
}

// fromPool makes dst a copy of the pool's content k.
func (s *Store) fromPool(k contentKey, dst string, mode uint32) error {
	return s.linkOrClone(s.poolPath(k), dst, mode)
}

// shareExisting makes dst a copy of content k (f's) taken from a file
// staged earlier in this batch or from the pool, and reports whether it
// could. A missing pool entry means new content; EMLINK (too many links
// to one inode) and the like mean a private copy. A pool entry is
// checked before anything links to it (checkPoolEntry): a damaged one
// is dropped from the pool, so the caller's fresh copy takes its place.
func (s *Store) shareExisting(k contentKey, f *treehash.File, dst string, pools *poolDirs) bool {
	mode := fileMode(f)
	if p := pools.firstOf(k); p != "" {
		if s.linkOrClone(p, dst, mode) == nil {
			return true
		}
	}
	if !s.checkPoolEntry(k, f.Size) {
		return false
	}
	if s.fromPool(k, dst, mode) != nil {
		return false
	}
	// Later files of the batch with this content share dst: the entry
	// is checked once per batch.
	pools.setFirst(k, dst)
	return true
}

// checkPoolEntry reports whether the pool's entry for k exists and holds
// exactly content k: the right size and mode, and bytes that hash to
// k's digest. Dedup trusts the pool with every later copy of a content,
// so one flipped byte in an entry would otherwise spread to every path
// that ever holds those bytes (and, with hard links, already did to the
// paths sharing its inode, which verify --check-contents then reports).
// A damaged entry is unlinked from the pool (its inode stays in the
// paths that hold it) and reported.
func (s *Store) checkPoolEntry(k contentKey, size int64) bool {
	pool := s.poolPath(k)
	fd, err := treehash.OpenRegular(pool)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	problem := ""
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	switch {
	case st.Size != size:
		problem = fmt.Sprintf("it has %d bytes, not %d", st.Size, size)
	case st.Mode&0o7777 != fileModeOfKey(k):
		problem = fmt.Sprintf("its mode is %04o, not %04o", st.Mode&0o7777, fileModeOfKey(k))
	default:
		d, n, err := treehash.HashFD(fd, pool, nil, nil)
		if err != nil {
			return false
		}
		if n != size || d != k.Digest() {
			problem = fmt.Sprintf("its bytes hash to %s", d)
		}
	}
	if problem == "" {
		return true
	}
	if err := os.Remove(pool); err == nil {
		s.damaged(fmt.Sprintf("content pool entry %s was damaged (%s): dropped from the pool and not linked to; `nexis store verify --check-contents` finds the paths that share it", pool, problem))
	}
	return false
}

// poolable reports whether the file at p may become a pool entry: a
// normalised public file. A private one (a secret, 0400) never is.
func poolable(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	m := uint32(fi.Mode().Perm())
	return m == modeFile || m == modeExec
}

// offer makes the normalised file at p the batch's copy of k, and the
// pool's: at once when its data is already durable, else after the
// batch's syncfs (commitPending), so that no pool entry ever exists whose
// data a crash could lose.
func (s *Store) offer(k contentKey, p string, durable bool, pools *poolDirs) error {
	pools.setFirst(k, p)
	if durable {
		return s.toPool(k, p, pools)
	}
	pools.addPending(k, p)
	return nil
}

// toPool records the normalised, durable file at p as the pool's copy of
// k. A pool entry that appeared meanwhile is as good as ours.
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
	tmp, err := s.cloneToTmp(k, p)
	if err == nil {
		err = fsyncPath(tmp)
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

// cloneToTmp clones p into a new file under tmp with k's mode.
func (s *Store) cloneToTmp(k contentKey, p string) (string, error) {
	src, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp := filepath.Join(s.tmpDir(), randomName("pool-"))
	df, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	defer df.Close()
	err = clone(df, src)
	if err == nil {
		err = df.Chmod(fs.FileMode(fileModeOfKey(k)))
	}
	if err == nil {
		err = setMtimeFd(int(df.Fd()))
	}
	return tmp, err
}

// commitPending adds the batch's new contents to the pool once the
// batch's syncfs made their data durable: hard links directly, clones
// through tmp and one more syncfs.
func (s *Store) commitPending(pools *poolDirs) error {
	type moved struct{ tmp, pool string }
	var clones []moved
	for _, e := range pools.pending {
		pool := s.poolPath(e.key)
		if err := pools.ensure(filepath.Dir(pool)); err != nil {
			return err
		}
		if s.dedup == DedupHardlink {
			if err := os.Link(e.path, pool); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("adding to the content pool: %w", err)
			}
			continue
		}
		tmp, err := s.cloneToTmp(e.key, e.path)
		if err != nil {
			os.Remove(tmp)
			return fmt.Errorf("adding to the content pool: %w", err)
		}
		clones = append(clones, moved{tmp, pool})
	}
	if len(clones) > 0 {
		if err := syncFS(s.tmpDir()); err != nil {
			return err
		}
		for _, c := range clones {
			if err := os.Rename(c.tmp, c.pool); err != nil {
				return fmt.Errorf("adding to the content pool: %w", err)
			}
		}
	}
	pools.pending = nil
	return pools.sync()
}

func fileModeOfKey(k contentKey) uint32 {
	if treehash.Type(k[32]) == treehash.Executable {
		return modeExec
	}
	return modeFile
}

// putFileFD creates dst with the contents of the open file sfd (src,
// known to be f), shared with other copies of the content when share.
func (s *Store) putFileFD(sfd int, src, dst string, f *treehash.File, share, perFile bool, pools *poolDirs) error {
	if share && s.shareExisting(keyOf(f), f, dst, pools) {
		return nil
	}
	if err := s.copyFileFD(sfd, src, dst, f, perFile); err != nil {
		return err
	}
	if share {
		return s.offer(keyOf(f), dst, perFile, pools)
	}
	return nil
}

// copyFile makes dst a private, normalised copy of src.
func (s *Store) copyFile(src, dst string, f *treehash.File, sync bool) error {
	sfd, err := treehash.OpenRegular(src)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	return s.copyFileFD(sfd, src, dst, f, sync)
}

// copyFileFD makes dst a private, normalised copy of the open file sfd:
// a clone where the filesystem can, else a kernel copy.
func (s *Store) copyFileFD(sfd int, src, dst string, f *treehash.File, sync bool) error {
	dfd, err := unix.Open(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	defer unix.Close(dfd)
	if f.Size > 0 {
		if s.dedup != DedupReflink || unix.IoctlFileClone(dfd, sfd) != nil {
			if err := copyDataFD(dfd, sfd, f.Size); err != nil {
				return fmt.Errorf("copying %s: %w", src, err)
			}
		}
	}
	if err := unix.Fchmod(dfd, fileMode(f)); err != nil {
		return fmt.Errorf("chmod %s: %w", dst, err)
	}
	if err := setMtimeFd(dfd); err != nil {
		return fmt.Errorf("setting mtime of %s: %w", dst, err)
	}
	if sync {
		if err := unix.Fsync(dfd); err != nil {
			return fmt.Errorf("syncing %s: %w", dst, err)
		}
	}
	return nil
}

// normaliseInPlace finishes a file of a tree that was moved in: when
// share, it is replaced by a shared copy if one exists; otherwise it gets
// its own inode if it had other links (which may be outside the tree and
// must not see our chmod), its final mode and mtime, and (when share) is
// offered to the pool.
func (s *Store) normaliseInPlace(p string, f *treehash.File, share, perFile bool, pools *poolDirs) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	tmp := p + ".nexis-tmp"
	if share {
		if s.shareExisting(keyOf(f), f, tmp, pools) {
			return os.Rename(tmp, p)
		}
		os.Remove(tmp)
	}
	if st.Nlink > 1 {
		if err := s.copyFile(p, tmp, f, perFile); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	} else {
		if err := os.Chmod(p, fs.FileMode(fileMode(f))); err != nil {
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
		return s.offer(keyOf(f), p, perFile, pools)
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
			if p := filepath.Join(s.Physical(r.Path), filepath.FromSlash(f.Path)); poolable(p) {
				s.toPool(k, p, pools)
			}
		}
	}
}

// poolDirs is the pool bookkeeping of one batch: which pool buckets
// exist, which were touched (to fsync them), the first staged file of
// each content (duplicates within the batch link to it), and contents
// waiting for the batch's syncfs before entering the pool.
type poolDirs struct {
	mu      sync.Mutex
	made    map[string]bool
	perFile bool // kept for callers that set it; durability is per call now
	firsts  map[contentKey]string
	pending []pendingContent
}

type pendingContent struct {
	key  contentKey
	path string
}

func (pd *poolDirs) firstOf(k contentKey) string {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return pd.firsts[k]
}

func (pd *poolDirs) setFirst(k contentKey, p string) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.firsts == nil {
		pd.firsts = map[contentKey]string{}
	}
	if _, ok := pd.firsts[k]; !ok {
		pd.firsts[k] = p
	}
}

func (pd *poolDirs) addPending(k contentKey, p string) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	pd.pending = append(pd.pending, pendingContent{k, p})
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
	if len(pd.made) > 8 {
		// One syncfs beats hundreds of directory fsyncs.
		for d := range pd.made {
			return syncFS(d)
		}
	}
	for d := range pd.made {
		if err := fsyncPath(d); err != nil {
			return err
		}
	}
	return nil
}
