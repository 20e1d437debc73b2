package gc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// EmptyTrash deletes everything in <dir>/.trash with workers in
// parallel, and returns how many entries it deleted. Workers own whole
// trash buckets (<trash>/<h0h1>/), so no two of them unlink in one
// directory and queue on its lock. It needs no store lock: only garbage
// is ever renamed into the trash. A second process emptying at the same
// time waits for the first (trash.lock), then deletes what is left.
func EmptyTrash(dir string, workers int, progress func(phase string, done, total int)) (int, error) {
	return emptyTrash(dir, workers, progress, true)
}

// errBusy says another process is emptying the trash.
var errBusy = errors.New("the trash is being emptied by another process")

func emptyTrash(dir string, workers int, progress func(phase string, done, total int), wait bool) (int, error) {
	if workers <= 0 {
		workers = 2
	}
	if progress == nil {
		progress = func(string, int, int) {}
	}
	lk, err := lockFile(filepath.Join(dir, ".nexis", "trash.lock"), wait)
	if err != nil {
		return 0, err
	}
	defer lk.Close()
	trash := filepath.Join(dir, ".trash")
	top, err := os.ReadDir(trash)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the trash: %w", err)
	}
	// Work items grouped by owner: a bucket's entries all go to one
	// worker; loose entries (left by ingest or verify --repair) are dealt
	// out round-robin.
	items := make([][]string, workers)
	total := 0
	for i, e := range top {
		p := filepath.Join(trash, e.Name())
		if !e.IsDir() || !isBucket(e.Name()) {
			items[i%workers] = append(items[i%workers], p)
			total++
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return 0, fmt.Errorf("reading the trash: %w", err)
		}
		w := (int(e.Name()[0])*32 + int(e.Name()[1])) % workers
		for _, x := range ents {
			items[w] = append(items[w], filepath.Join(p, x.Name()))
		}
		total += len(ents)
	}
	if total == 0 {
		return 0, nil
	}
	var done atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	progress("deleting", 0, total)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(list []string) {
			defer wg.Done()
			for _, p := range list {
				if err := removeAll(p); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("deleting %s from the trash: %w", p, err)
					}
					mu.Unlock()
					return
				}
				n := done.Add(1)
				if n%256 == 0 {
					progress("deleting", int(n), total)
				}
			}
		}(items[w])
	}
	wg.Wait()
	progress("deleting", int(done.Load()), total)
	return int(done.Load()), first
}

func isBucket(n string) bool {
	return len(n) == 2 && storepath.IsHashChar(n[0]) && storepath.IsHashChar(n[1])
}

func lockFile(p string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", p, err)
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
		return nil, errBusy
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return f, nil
}

// removeAll deletes p, a file or a tree, working from directory file
// descriptors: one unlinkat per entry, as rm -rf does. Stored directories
// are read-only; a process that is not root makes one writable when an
// unlink in it is refused.
func removeAll(p string) error {
	err := unix.Unlinkat(unix.AT_FDCWD, p, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	return removeDirAt(unix.AT_FDCWD, p)
}

func removeDirAt(parent int, name string) error {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	// All names first, then the unlinks: a directory changing under
	// getdents may repeat or skip entries.
	var names []string
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			unix.Close(fd)
			return err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
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

// FinishInterrupted finishes what a killed collection left in the store
// at the physical directory dir, if its marker says there may be
// something: records are completed under the writer lock, then the trash
// is emptied. It does nothing (and waits for nothing) when another
// process holds the writer lock: that process, or the next command, will
// do it. It reports whether it ran.
func FinishInterrupted(dir string, opts store.Options, workers int, progress func(string, int, int)) (bool, error) {
	marker := store.GCMarkerIn(dir)
	if _, err := os.Stat(marker); err != nil {
		return false, nil
	}
	if busy, err := writerBusy(dir); err != nil || busy {
		return false, err
	}
	s, err := store.Open(dir, opts)
	if err != nil {
		return false, err
	}
	lk, err := store.LockGC(dir)
	if err != nil {
		s.Close()
		return false, err
	}
	_, err = s.FinishCollect(workers)
	lk.Unlock()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return true, fmt.Errorf("finishing an interrupted collection: %w", err)
	}
	// A command that is not gc does not wait for another process's
	// deletion: that process finishes it.
	if _, err := emptyTrash(dir, workers, progress, false); errors.Is(err, errBusy) {
		return true, nil
	} else if err != nil {
		return true, err
	}
	return true, removeMarker(dir)
}

// removeMarker drops the marker once the trash is empty, unless a
// collection is running (it holds gc.lock): its marker must stay.
func removeMarker(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, ".nexis", "gc.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("removing the collection marker: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil
	}
	err = os.Remove(store.GCMarkerIn(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the collection marker: %w", err)
	}
	return nil
}

// FinishTrash empties the trash after a collection and drops the marker:
// the last step of `nexis gc`, run after the store is closed.
func FinishTrash(dir string, workers int, progress func(string, int, int)) (int, error) {
	n, err := EmptyTrash(dir, workers, progress)
	if err != nil {
		return n, err
	}
	return n, removeMarker(dir)
}

// writerBusy reports whether another process holds the store's writer
// lock, without waiting for it.
func writerBusy(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".nexis", "lock"), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false, nil
}
