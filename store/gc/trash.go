package gc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/trash"
)

// TrashStats is the second phase of a collection: the deletion of the
// trash, by a detached worker (mode "background") or by the collecting
// process itself ("waited").
type TrashStats struct {
	Mode string `json:"mode"`
	// WorkerPID is the background worker started for this collection; 0
	// when one was already running (it takes the new entries too).
	WorkerPID int `json:"worker_pid,omitempty"`
	// Deleted is set when the deletion was waited for.
	Deleted *trash.Stats `json:"deleted,omitempty"`
}

// HandOff gives the trash of the store at the physical directory dir to
// its deleter, after a collection (or a recovery) moved paths there:
// with opts.Launch set, a detached worker that nothing waits for;
// otherwise (opts.Wait, or no way to start a worker) this process
// deletes it now, waiting for a worker that holds the trash first. It
// takes no store lock: call it after the store is closed, or with it
// open when a background worker is wanted (activation's automatic
// cleanup), since then nothing waits.
func HandOff(dir string, opts Options) (*TrashStats, error) {
	workers := opts.Workers // 0: trash.Options's default, not fill's
	opts.fill()
	if opts.Launch != nil && !opts.Wait {
		pid, err := trash.Start(dir, opts.Launch)
		if err != nil {
			return nil, err
		}
		return &TrashStats{Mode: "background", WorkerPID: pid}, nil
	}
	tst, err := trash.Empty(dir, trash.Options{Workers: workers, Progress: func(done, total int) {
		opts.Progress("deleting", done, total)
	}})
	return &TrashStats{Mode: "waited", Deleted: &tst}, err
}

// FinishInterrupted finishes what a killed collection left in the store
// at the physical directory dir, if its marker says there may be
// something: the records are completed under the writer lock (the
// directories move into the trash, which the caller then hands off). It
// does nothing (and waits for nothing) when another process holds the
// writer lock: that process, or the next command, will do it. It reports
// whether it ran.
func FinishInterrupted(dir string, opts store.Options, workers int) (bool, error) {
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
	if err == nil {
		err = os.Remove(marker)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	lk.Unlock()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return true, fmt.Errorf("finishing an interrupted collection: %w", err)
	}
	return true, nil
}

// writeMarker creates the marker that says collection records may be
// waiting, durably, before the first collecting commit.
func writeMarker(p string) error {
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("writing the collection marker: %w", err)
	}
	f.Close()
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return fmt.Errorf("writing the collection marker: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("writing the collection marker: %w", err)
	}
	return nil
}

// removeMarker drops the marker once no records wait (the caller holds
// gc.lock). Unsynced: a marker that comes back after a power cut costs
// the next command one look at an empty record list.
func removeMarker(p string) error {
	err := os.Remove(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the collection marker: %w", err)
	}
	return nil
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
