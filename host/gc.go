package host

import (
	"strconv"

	"github.com/nexisos/nexis/store/gc"
	"github.com/nexisos/nexis/store/trash"
)

// TrashLauncher starts this same binary as the trash worker of the
// host's store, with the flags that locate it, and workers (0: the
// worker's default).
func (h *Host) TrashLauncher(workers int) trash.Launcher {
	args := []string{"--root", h.Root, "--store", h.StoreDir(), "trash-worker", "--lock-fd", strconv.Itoa(trash.LockFD)}
	if workers > 0 {
		args = append(args, "--workers", strconv.Itoa(workers))
	}
	return gc.SelfLauncher(args)
}

// FinishInterruptedGC finishes what a crash left of a collection (see
// gc.Startup), and returns what it could not do: warnings, which stop
// nothing. A root that cannot be opened is left for the command to
// report.
func (h *Host) FinishInterruptedGC(workers int) []error {
	dir, err := h.PhysicalStoreDir()
	if err != nil {
		return nil
	}
	return gc.Startup(dir, h.StoreDir(), h.TrashLauncher(workers))
}

// RunTrashWorker deletes the store's trash (the trash-worker command),
// with the trash lock the parent took at lockFD.
func (h *Host) RunTrashWorker(lockFD, workers int) error {
	dir, err := h.PhysicalStoreDir()
	if err != nil {
		return err
	}
	_, err = trash.RunWorker(dir, lockFD, trash.Options{Workers: workers})
	return err
}

// Collect collects the store's garbage (gc.CollectAndClose), or with
// full marks from the roots and sweeps every bucket (gc.FullAndClose):
// one of the results is set.
func (h *Host) Collect(o gc.FullOptions, full bool) (*gc.Stats, *gc.FullReport, error) {
	s, err := h.OpenStore()
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	if full {
		rep, err := gc.FullAndClose(s, o)
		return nil, rep, err
	}
	st, err := gc.CollectAndClose(s, o.Options)
	return st, nil, err
}
