package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/storepath"
)

// Temporary roots protect paths a running process uses (an in-flight
// build's inputs and outputs, an evaluation's realised paths) for as long
// as that process lives, like containerd's leases.
//
//	<store>/.nexis/temproots/<pid>-<rand>  one "<hash>-<name>" per line; the owner holds
//	                                      an exclusive flock on it while it lives
//	<store>/.nexis/gc.lock                 a collector holds it exclusively from reading
//	                                      the temp roots until its metadata is committed
//
// A file whose flock can be taken belongs to a dead process: the kernel
// dropped the lock when the process died, so no pid liveness guess is
// involved. AddTempRoots writes its lines, then takes gc.lock shared for
// a moment: it returns only after any collector that may have read the
// file before the write has finished. The caller then checks that the
// paths are valid; from there on no collector can take them.

func tempRootsDir(dir string) string { return filepath.Join(dir, ".nexis", "temproots") }
func gcLockPath(dir string) string   { return filepath.Join(dir, ".nexis", "gc.lock") }

// TempRoots is one process's set of temporary roots in one store.
type TempRoots struct {
	dir  string
	mu   sync.Mutex
	f    *os.File
	have map[string]bool
}

var procTempRoots struct {
	mu sync.Mutex
	m  map[string]*TempRoots
}

// ProcessTempRoots returns this process's temporary roots in the store
// at the physical directory dir, creating its file on first use. The
// roots last until the process exits.
func ProcessTempRoots(dir string) (*TempRoots, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("temporary roots: %w", err)
	}
	procTempRoots.mu.Lock()
	defer procTempRoots.mu.Unlock()
	if tr := procTempRoots.m[abs]; tr != nil {
		return tr, nil
	}
	tr, err := newTempRoots(abs)
	if err != nil {
		return nil, err
	}
	if procTempRoots.m == nil {
		procTempRoots.m = map[string]*TempRoots{}
	}
	procTempRoots.m[abs] = tr
	return tr, nil
}

func newTempRoots(dir string) (*TempRoots, error) {
	td := tempRootsDir(dir)
	if err := os.MkdirAll(td, 0o755); err != nil {
		return nil, fmt.Errorf("temporary roots: %w", err)
	}
	// Created under a "tmp-" name and locked before it gets its real
	// name, so a collector never finds it unlocked and takes it for a
	// dead process's file.
	name := randomName(strconv.Itoa(os.Getpid()) + "-")
	tmp := filepath.Join(td, "tmp-"+name)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("temporary roots: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("temporary roots: locking %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(td, name)); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("temporary roots: %w", err)
	}
	return &TempRoots{dir: dir, f: f, have: map[string]bool{}}, nil
}

// Add makes ps temporary roots of this process. After it returns, no
// collection that starts later collects them; the caller checks that they
// are (still) valid, since one that ran before may have.
func (t *TempRoots) Add(ps ...storepath.Path) error {
	t.mu.Lock()
	var b []byte
	for _, p := range ps {
		if t.have[p.Hash] {
			continue
		}
		t.have[p.Hash] = true
		b = append(b, p.Base()...)
		b = append(b, '\n')
	}
	var err error
	if len(b) > 0 {
		_, err = t.f.Write(b)
	}
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing temporary roots: %w", err)
	}
	if len(b) == 0 {
		return nil
	}
	return waitForCollector(t.dir)
}

// Has reports whether this process holds p as a temporary root.
func (t *TempRoots) Has(p storepath.Path) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.have[p.Hash]
}

// waitForCollector returns once no collector holds gc.lock.
func waitForCollector(dir string) error {
	f, err := LockFile(gcLockPath(dir), 0o644, unix.LOCK_SH)
	if err != nil {
		return fmt.Errorf("temporary roots: waiting for the collector: %w", err)
	}
	return f.Close()
}

// AddTempRoots makes ps temporary roots of this process (see TempRoots.Add).
func (s *Store) AddTempRoots(ps ...storepath.Path) error {
	tr, err := ProcessTempRoots(s.dir)
	if err != nil {
		return err
	}
	return tr.Add(ps...)
}

// GCLock is a collector's hold on gc.lock.
type GCLock struct{ f *os.File }

// LockGC takes gc.lock exclusively: from now until Unlock, AddTempRoots
// calls in other processes wait, so the temp roots read under the lock
// stay complete.
func LockGC(dir string) (*GCLock, error) {
	f, err := LockFile(gcLockPath(dir), 0o644, unix.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	return &GCLock{f: f}, nil
}

// Unlock releases gc.lock.
func (l *GCLock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// TempRoot is one temporary root and the process holding it.
type TempRoot struct {
	Path storepath.Path
	// Owner is the holding process's pid.
	Owner int
}

// ReadTempRoots returns the temporary roots of every live process, keyed
// by hash. With prune, the files of dead processes are deleted (the
// caller holds the writer lock and gc.lock). Without it nothing changes:
// why-alive reads this way.
func ReadTempRoots(dir string, prune bool) (map[string]TempRoot, error) {
	td := tempRootsDir(dir)
	ents, err := os.ReadDir(td)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]TempRoot{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading temporary roots: %w", err)
	}
	out := map[string]TempRoot{}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(td, name)
		if strings.HasPrefix(name, "tmp-") {
			// A creation in progress, or one a crash interrupted: the
			// latter are old.
			if fi, err := e.Info(); prune && err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.Remove(p)
			}
			continue
		}
		pid, _ := strconv.Atoi(strings.SplitN(name, "-", 2)[0])
		live, data, err := readIfLocked(p, prune)
		if err != nil {
			return nil, err
		}
		if !live {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			l := sc.Text()
			if len(l) < storepath.HashLen+2 {
				continue // a torn last line: its writer has not returned yet
			}
			tp, err := parseBase(l)
			if err != nil {
				continue
			}
			out[tp.Hash] = TempRoot{Path: tp, Owner: pid}
		}
	}
	return out, nil
}

// readIfLocked reads p if its owner still holds its lock; otherwise the
// owner is dead and, with prune, p is removed.
func readIfLocked(p string, prune bool) (bool, []byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("reading temporary roots: %w", err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, nil, fmt.Errorf("reading temporary roots: %w", err)
		}
		return true, data, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("reading temporary roots: %w", err)
	}
	if prune {
		os.Remove(p)
	}
	return false, nil, nil
}
