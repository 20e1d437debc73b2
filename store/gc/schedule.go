package gc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/trash"
)

// When the collector runs, apart from how it collects (gc.go, full.go)
// and what it learns the references from (the store): after a crash, at
// the start of the next command (Startup); on request, with the store
// closed before the slow deletion (CollectAndClose, FullAndClose); after a
// switch's retention dropped generations (AutoCleanup); and the trash's
// deletion in a detached process of this same binary (SelfLauncher).

// SelfLauncher starts this same binary as the trash worker, with args
// (the flags that locate the store, then the worker's command).
func SelfLauncher(args []string) trash.Launcher {
	return func(string) *exec.Cmd {
		// The name this process was started by, found as the shell found
		// it; os.Executable would name the file behind a link, which is
		// another program when one binary serves several names.
		exe, err := exec.LookPath(os.Args[0])
		if err == nil {
			exe, err = filepath.Abs(exe)
		}
		if err != nil {
			if exe, err = os.Executable(); err != nil {
				exe = os.Args[0]
			}
		}
		cmd := exec.Command(exe, args...)
		// A profile asked for this command is not the worker's to
		// overwrite.
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "NEXIS_CPUPROFILE=") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		return cmd
	}
}

// Startup is what every command but the trash worker runs first on the
// store at the physical directory dir: when a collection was killed
// (its marker file is there), it finishes its records; when the trash
// holds entries and no worker deletes them (a worker was killed, the
// machine rebooted), it starts one with launch. Without either it costs
// one stat and one directory read; it never waits for a lock another
// process holds. What fails is returned as warnings: the command goes on.
func Startup(dir, logicalDir string, launch trash.Launcher) []error {
	var warn []error
	// A user who cannot write the store leaves the work to one who can,
	// without a warning on every command.
	if _, err := os.Stat(store.GCMarkerIn(dir)); err == nil && unix.Access(filepath.Join(dir, ".nexis"), unix.W_OK) == nil {
		if _, err := FinishInterrupted(dir, store.Options{LogicalDir: logicalDir, OnWait: func(string) {}}, runtime.NumCPU()); err != nil {
			warn = append(warn, err)
		}
	}
	if _, err := trash.Resume(dir, launch); err != nil {
		warn = append(warn, err)
	}
	return warn
}

// CollectAndClose is Collect, then s closed, then (unless a dry run) the
// trash handed off: the store's lock is not needed to delete the trash,
// so builds may proceed meanwhile. Seconds counts the collection, not
// the deletion.
func CollectAndClose(s *store.Store, opts Options) (*Stats, error) {
	t0 := time.Now()
	st, err := Collect(s, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	st.Seconds = time.Since(t0).Seconds()
	if !opts.DryRun {
		if st.Trash, err = HandOff(s.Dir(), opts); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// FullAndClose is Full, then s closed, then (unless a dry run) the
// trash handed off. Seconds counts it all.
func FullAndClose(s *store.Store, opts FullOptions) (*FullReport, error) {
	t0 := time.Now()
	rep, err := Full(s, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if !opts.DryRun {
		if _, err := HandOff(s.Dir(), opts.Options); err != nil {
			return nil, err
		}
	}
	rep.Seconds = time.Since(t0).Seconds()
	return rep, nil
}

// AutoCleanup is what [nexis.generations] auto_cleanup runs after
// retention dropped generations: a collection, whose trash a background
// worker started by launch deletes while the switch returns.
func AutoCleanup(launch trash.Launcher) func(*store.Store) (string, error) {
	return func(st *store.Store) (string, error) {
		s, err := Run(st, Options{Launch: launch})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d paths, %s freed", s.Paths, store.HumanSize(s.Bytes)), nil
	}
}
