// Package trash empties a store's trash, in the background.
//
// Whatever leaves the store is first renamed into <store>/.trash: the
// collector's paths (store/gc), an interrupted ingest's leftovers,
// unregistered directories that verify --repair found. A rename is cheap
// and atomic; deleting is slow (an unlink per file, and the file system
// frees inodes and blocks). So the command the user runs returns once
// its renames are durable, and a worker deletes the trash afterwards.
//
// # On disk
//
//	<store>/.trash/<h0h1>/<hash>-<name>[.<rand>]  collected paths, one bucket per hash prefix
//	<store>/.trash/staged-<rand>/<h0h1>/...       a collection's staging directory, moved in whole
//	                                              (store.StagedPrefix): buckets as above
//	<store>/.trash/<anything else>                loose entries: files or trees
//	<store>/.trash/release-<rand>                 release list: pool entries to unlink once
//	                                              nothing links their inode (store.ReleaseListPrefix)
//	<store>/.nexis/trash.lock                     held by whoever empties the trash
//
// # The worker
//
// One process per store empties the trash: whoever holds trash.lock.
// `nexis gc` takes the lock without waiting and hands it to a detached
// worker (a re-executed nexis, Start), so that no moment passes in which
// entries wait and nobody holds it. If the lock is taken, the worker
// that holds it will find the new entries: a worker, after it released
// the lock, looks at the trash once more and takes the lock again if
// anything is there (Work). Every nexis command starts a worker when it
// finds entries and no worker (Resume): a worker killed by a crash or a
// reboot is replaced by the next command, or at boot on NexisOS by the
// nexis-trash dinit service (docs/gc.md).
//
// The worker takes no other lock: not the store's writer lock, not
// gc.lock. Builds, switches and collections never wait for it; only
// `nexis gc --wait` does, on purpose. Deleting needs no lock because
// nothing in the trash is registered: the collector unregistered it in a
// synced batch before the rename.
//
// Workers partition the work by trash bucket, so no two of them unlink
// in one directory and queue on its lock.
package trash

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/internal/parallel"
	"github.com/nexisos/nexis/store/storepath"
)

// releasePrefix names release lists (store.ReleaseListPrefix: the
// store package writes them; this one must not import it).
const releasePrefix = "release-"

// stagedPrefix names a collection's staging directory, moved into the
// trash in one rename (store.StagedPrefix): its buckets are worked on
// like the trash's own.
const stagedPrefix = "staged-"

// Dir is the trash of the store at the physical directory store.
func Dir(store string) string { return filepath.Join(store, ".trash") }

func lockPath(store string) string { return filepath.Join(store, ".nexis", "trash.lock") }

// Options tune the deletion.
type Options struct {
	// Workers delete in parallel (default: four per core). Deleting
	// waits on the file system's journal more than it computes: at 10,000
	// paths eight workers on two cores deleted 10-15% faster than two.
	Workers int
	// Progress, when set, is told how many entries are deleted.
	Progress func(done, total int)
}

func (o *Options) fill() {
	if o.Workers <= 0 {
		o.Workers = 4 * runtime.NumCPU()
	}
	if o.Progress == nil {
		o.Progress = func(int, int) {}
	}
}

// Stats is what emptying the trash did.
type Stats struct {
	// Entries are paths and loose entries deleted.
	Entries int `json:"entries_deleted"`
	// Released are pool entries unlinked from release lists; Kept were
	// linked again by a new path meanwhile and stay.
	Released int     `json:"pool_entries_released"`
	Kept     int     `json:"pool_entries_kept"`
	Passes   int     `json:"passes"`
	Seconds  float64 `json:"seconds"`
}

func (s *Stats) add(o Stats) {
	s.Entries += o.Entries
	s.Released += o.Released
	s.Kept += o.Kept
	s.Passes += o.Passes
}

// Pending reports whether the trash of store holds anything: one
// directory read, cheap enough for every command. The worker removes
// empty buckets, so an empty trash is an empty directory.
func Pending(store string) bool {
	f, err := os.Open(Dir(store))
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) > 0
}

// Lock is a hold on trash.lock.
type Lock struct{ f *os.File }

// ErrBusy says another process holds trash.lock.
var ErrBusy = errors.New("the trash is being emptied by another process")

// TryLock takes trash.lock without waiting (ErrBusy when taken).
func TryLock(store string) (*Lock, error) { return lock(store, false) }

// WaitLock takes trash.lock, waiting for a worker that holds it.
func WaitLock(store string) (*Lock, error) { return lock(store, true) }

func lock(store string, wait bool) (*Lock, error) {
	p := lockPath(store)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the trash: %w", err)
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, ErrBusy
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the trash: %w", err)
	}
	return &Lock{f: f}, nil
}

// LockFromFile adopts a trash.lock that the parent process took and
// passed down (Start).
func LockFromFile(f *os.File) *Lock { return &Lock{f: f} }

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Empty deletes everything in the trash of store, waiting first for a
// worker that holds the lock. It is `nexis gc --wait`, and the library's
// way when no worker can be started.
func Empty(store string, opts Options) (Stats, error) {
	t0 := time.Now()
	lk, err := WaitLock(store)
	if err != nil {
		return Stats{}, err
	}
	defer lk.Unlock()
	st, err := emptyLocked(store, opts)
	st.Seconds = time.Since(t0).Seconds()
	return st, err
}

// Work is the worker: with lk held, it empties the trash; after it lets
// go of the lock it looks again, and goes on if something arrived and
// no other worker took over. It returns when the trash is empty or
// another process holds the lock.
func Work(store string, lk *Lock, opts Options) (Stats, error) {
	t0 := time.Now()
	var total Stats
	for {
		st, err := emptyLocked(store, opts)
		total.add(st)
		lk.Unlock()
		if err != nil {
			total.Seconds = time.Since(t0).Seconds()
			return total, err
		}
		if !Pending(store) {
			break
		}
		if lk, err = TryLock(store); err != nil {
			if errors.Is(err, ErrBusy) {
				err = nil
			}
			total.Seconds = time.Since(t0).Seconds()
			return total, err
		}
	}
	total.Seconds = time.Since(t0).Seconds()
	return total, nil
}

// emptyLocked makes passes over the trash until it is empty. Entries
// that arrive during a pass are left to the next: in particular a
// release list is only processed in the pass that also deleted the
// paths whose files share its entries' inodes (the collector writes the
// list after their renames, so they are in the same listing).
func emptyLocked(store string, opts Options) (Stats, error) {
	opts.fill()
	var total Stats
	for {
		st, more, err := pass(store, opts)
		total.add(st)
		if err != nil || !more {
			return total, err
		}
	}
}

type item struct {
	dir  string // bucket directory ("" for loose entries)
	name string
}

// pass deletes what the trash holds now and reports whether anything
// arrived meanwhile.
func pass(store string, opts Options) (Stats, bool, error) {
	st := Stats{Passes: 1}
	trash := Dir(store)
	top, err := os.ReadDir(trash)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("reading the trash: %w", err)
	}
	if len(top) == 0 {
		return st, false, nil
	}
	// Work units: one per bucket (its entries), one per loose entry.
	var units [][]item
	var buckets, staged []string
	var lists []string
	total := 0
	addBucket := func(d string) error {
		names, err := readNames(d)
		if err != nil {
			return err
		}
		u := make([]item, len(names))
		for i, n := range names {
			u[i] = item{dir: d, name: n}
		}
		units = append(units, u)
		buckets = append(buckets, d)
		total += len(u)
		return nil
	}
	for _, e := range top {
		name := e.Name()
		switch {
		case e.IsDir() && storepath.IsBucket(name):
			if err := addBucket(filepath.Join(trash, name)); err != nil {
				return st, false, err
			}
		case e.IsDir() && strings.HasPrefix(name, stagedPrefix):
			d := filepath.Join(trash, name)
			inner, err := readNames(d)
			if err != nil {
				return st, false, err
			}
			for _, b := range inner {
				if storepath.IsBucket(b) {
					if err := addBucket(filepath.Join(d, b)); err != nil {
						return st, false, err
					}
				} else {
					units = append(units, []item{{dir: d, name: b}})
					total++
				}
			}
			staged = append(staged, d)
		case !e.IsDir() && strings.HasPrefix(name, releasePrefix):
			lists = append(lists, filepath.Join(trash, name))
		default:
			units = append(units, []item{{dir: trash, name: name}})
			total++
		}
	}
	var done atomic.Int64
	opts.Progress(0, total)
	err = parallel.Do(len(units), opts.Workers, func(i int) error {
		if err := removeUnit(units[i]); err != nil {
			return err
		}
		n := done.Add(int64(len(units[i])))
		opts.Progress(int(n), total)
		return nil
	})
	st.Entries = int(done.Load())
	if err != nil {
		return st, false, err
	}
	for _, b := range buckets {
		// A collector may be renaming into it again: then it is not
		// empty and stays, or it is recreated.
		unix.Rmdir(b)
	}
	for _, d := range staged {
		unix.Rmdir(d) // a bucket left in it is the next pass's
	}
	for _, l := range lists {
		r, k, err := release(store, l, opts.Workers)
		st.Released += r
		st.Kept += k
		if err != nil {
			return st, false, err
		}
	}
	return st, Pending(store), nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the trash: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading the trash: %w", err)
	}
	return names, nil
}

// removeUnit deletes the entries of one unit (all in one directory),
// each a file or a tree, from directory descriptors: one unlinkat per
// entry, as rm -rf does.
func removeUnit(u []item) error {
	if len(u) == 0 {
		return nil
	}
	pfd, err := unix.Open(u[0].dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("deleting from the trash: %w", err)
	}
	defer unix.Close(pfd)
	for _, it := range u {
		err := removeDirAt(pfd, it.name)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			err = unix.Unlinkat(pfd, it.name, 0)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting %s from the trash: %w", filepath.Join(it.dir, it.name), err)
		}
	}
	return nil
}

// removeDirAt empties and removes the directory name in parent. Stored
// directories are read-only; a process that is not root makes one
// writable when an unlink in it is refused.
func removeDirAt(parent int, name string) error {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := direntNames(fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	chmodded := false
	for _, e := range names {
		err := unix.Unlinkat(fd, e, 0)
		if errors.Is(err, unix.EACCES) && !chmodded {
			chmodded = true
			if err = unix.Fchmod(fd, 0o755); err == nil {
				err = unix.Unlinkat(fd, e, 0)
			}
		}
		if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
			err = removeDirAt(fd, e)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			unix.Close(fd)
			return err
		}
	}
	unix.Close(fd)
	err = unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// direntNames reads all names of the open directory fd (all of them
// before any unlink: a directory changing under getdents may repeat or
// skip entries).
func direntNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// release unlinks the pool entries a release list names, unless a new
// path linked one since the collection: the entry is unlinked first and
// its inode's link count read through a descriptor opened before; a
// count above zero means another name holds it, and the entry is linked
// back. A new ingest that finds the entry gone meanwhile makes its own
// copy and pool entry. Idempotent: a killed worker runs the list again.
func release(store, list string, workers int) (released, kept int, err error) {
	b, err := os.ReadFile(list)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading the release list: %w", err)
	}
	var entries []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.Contains(l, "..") || filepath.IsAbs(l) {
			continue
		}
		entries = append(entries, filepath.Join(store, l))
	}
	var rel, kep atomic.Int64
	err = parallel.Do(len(entries), workers, func(i int) error {
		r, err := releaseOne(entries[i])
		if err != nil {
			return err
		}
		if r {
			rel.Add(1)
		} else {
			kep.Add(1)
		}
		return nil
	})
	if err == nil {
		err = os.Remove(list)
	}
	return int(rel.Load()), int(kep.Load()), err
}

// releaseOne unlinks p unless another name links its inode; it reports
// whether it did (a missing p counts as released).
func releaseOne(p string) (bool, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("releasing pool entry %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Unlink(p); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return true, nil
		}
		return false, fmt.Errorf("releasing pool entry %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("releasing pool entry %s: %w", p, err)
	}
	if st.Nlink == 0 {
		return true, nil
	}
	// Linked by a path registered since: the pool keeps it.
	err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, p, unix.AT_SYMLINK_FOLLOW)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("keeping pool entry %s: %w", p, err)
	}
	return false, nil
}
