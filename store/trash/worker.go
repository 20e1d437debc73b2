package trash

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Launcher makes the command of a worker for the store at the physical
// directory store: a re-executed nexis (`nexis trash-worker --lock-fd
// 3`) that calls RunWorker with the lock it finds on descriptor LockFD.
// Tests use the test binary.
type Launcher func(store string) *exec.Cmd

// LockFD is the descriptor on which a started worker finds the
// trash.lock its parent took for it.
const LockFD = 3

// Start hands the trash of store to a detached worker, unless the trash
// is empty or a worker already holds it (that worker finds the new
// entries: see Work). It takes trash.lock itself, without waiting, and
// passes it down, so the lock is never free while entries wait. The
// worker runs in a session of its own, with no terminal and its output
// appended to <store>/.nexis/trash.log: the caller's exit or ^C does
// not stop it. It returns the worker's pid, or 0 when none was started.
func Start(store string, launch Launcher) (int, error) {
	if !Pending(store) {
		return 0, nil
	}
	lk, err := TryLock(store)
	if errors.Is(err, ErrBusy) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer lk.Unlock()
	cmd := launch(store)
	cmd.ExtraFiles = []*os.File{lk.f}
	cmd.Stdin, cmd.Stdout = nil, nil
	logf, err := os.OpenFile(filepath.Join(store, ".nexis", "trash.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		defer logf.Close()
		cmd.Stderr = logf
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the trash worker: %w", err)
	}
	pid := cmd.Process.Pid
	// Reaped here if this process outlives it; otherwise init reaps it.
	go cmd.Wait()
	return pid, nil
}

// Resume starts a worker when the trash of store holds entries and no
// worker is running: what every nexis command does first, so that a
// worker killed by a crash or a reboot is replaced. A user who cannot
// write the store leaves it to one who can. Without entries it costs one
// directory read.
func Resume(store string, launch Launcher) (int, error) {
	if !Pending(store) || unix.Access(Dir(store), unix.W_OK) != nil {
		return 0, nil
	}
	return Start(store, launch)
}

// RunWorker is the body of `nexis trash-worker`: with the lock its
// parent passed down on lockFD (Start), or else (lockFD < 0: started by
// hand or by the service manager) the one it can take, it empties the
// trash. When another worker holds the lock it has nothing to do. It
// runs at the priority it was given: deletion is mostly the file
// system's journal, and a niced worker only finishes later while holding
// nothing anyone waits for.
func RunWorker(store string, lockFD int, opts Options) (Stats, error) {
	var lk *Lock
	if lockFD >= 0 {
		var st unix.Stat_t
		if err := unix.Fstat(lockFD, &st); err != nil {
			return Stats{}, fmt.Errorf("trash lock on descriptor %d: %w", lockFD, err)
		}
		lk = LockFromFile(os.NewFile(uintptr(lockFD), "trash.lock"))
	} else {
		var err error
		if lk, err = TryLock(store); errors.Is(err, ErrBusy) {
			return Stats{}, nil
		} else if err != nil {
			return Stats{}, err
		}
	}
	return Work(store, lk, opts)
}
