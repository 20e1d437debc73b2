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
	// Impure is recorded as given (PathInfo.Impure).
	Impure string
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
// named name (treehash.ContentPath), by default src's base name.
func (s *Store) AddPath(src, name string) (*PathInfo, error) {
	if name == "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return nil, err
		}
		name = filepath.Base(abs)
	}
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
	// refs are the references it is registered with: found in its
	// contents (ingest), or listed by its signed record (import).
	refs []storepath.Path
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
	defer func() { removeStaging(work) }()
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
		w.refs = scannedRefs(w)
	}
	if syncAll {
		if err := syncFS(s.tmpDir()); err != nil {
			return nil, err
		}
	}
	if err := s.commitPending(pools); err != nil {
		return nil, err
	}

	err := s.commitStaged(work, true, "ingesting", func(w *staged) string { return w.req.Src })
	if err != nil {
		return nil, err
	}
	for _, w := range work {
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
	share := s.dedup.Pools() && !w.req.Private
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

func fileMode(f *treehash.File) uint32 {
	if f.Type == treehash.Executable {
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
