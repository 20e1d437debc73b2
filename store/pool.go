package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store/treehash"
)

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
		s.damaged(fmt.Sprintf("content pool entry %s was damaged (%s): dropped from the pool and not linked to; `%s` finds the paths that share it", pool, problem, hint.Command("store verify", "--check-contents")))
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

// ensurePool re-creates pool entries for contents a commit just made live
// when the entry is missing (a concurrent collection removed it between
// our link and our commit): linking to pool entries is done without the
// lock, so this is where the pool catches up.
func (s *Store) ensurePool(regs []Registration) {
	pools := &poolDirs{}
	// Paths at once: a batch of thousands of files, one by one, waited
	// on the filesystem as long as placing them did.
	parallelDo(len(regs), func(j int) error {
		r := &regs[j]
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
		return nil
	})
}

// poolDirs is the pool bookkeeping of one batch: which pool buckets
// exist, which were touched (to fsync them), the first staged file of
// each content (duplicates within the batch link to it), and contents
// waiting for the batch's syncfs before entering the pool.
type poolDirs struct {
	mu      sync.Mutex
	made    map[string]bool
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
