package host

import (
	"errors"
	"fmt"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Target is the root as an activation target, its store not open yet.
func (h *Host) Target() (*activate.Target, error) {
	r, err := h.OpenRoot()
	if err != nil {
		return nil, err
	}
	return &activate.Target{Root: r, StateDir: h.StateDir(), Version: h.Version, Reopen: h.OpenStore}, nil
}

// OpenTarget takes the root's activation lock and opens its store
// read-only; the target reopens it for writing when something in the
// database must change (most rollbacks and no-op switches never do).
// With write the store is opened writable at once (a command that knows
// it will write saves the read-only open). done releases both.
func (h *Host) OpenTarget(write bool) (*activate.Target, func(), error) {
	t, err := h.Target()
	if err != nil {
		return nil, nil, err
	}
	done, err := t.Open(write, h.OpenStoreReadOnly)
	return t, done, err
}

// OpenTargetRead opens the target for queries: no lock is taken.
func (h *Host) OpenTargetRead() (*activate.Target, func(), error) {
	t, err := h.Target()
	if err != nil {
		return nil, nil, err
	}
	st, err := h.OpenStoreReadOnly()
	if errors.Is(err, store.ErrNotInitialised) {
		return nil, nil, fmt.Errorf("no generations yet on %s: nexis switch makes the first", h.Root)
	}
	if err != nil {
		return nil, nil, err
	}
	t.Store = st
	return t, func() { st.Close() }, nil
}

// ReadManifests reads the manifests of the system outputs at the given
// logical paths that are in the store already.
func (h *Host) ReadManifests(logicals ...string) map[storepath.Path]*manifest.Manifest {
	dir, err := h.PhysicalStoreDir()
	if err != nil {
		return nil
	}
	return activate.ReadManifests(dir, h.StoreDir(), logicals...)
}

// WithTarget opens the target for activation (OpenActivation, the
// store read-only until something must change), runs f, and releases
// it.
func (h *Host) WithTarget(f func(*activate.Target) error) error {
	t, done, err := h.OpenActivation(false)
	if err != nil {
		return err
	}
	defer done()
	return f(t)
}

// WithTargetRead opens the target for queries (OpenTargetRead), runs
// f, and releases it.
func (h *Host) WithTargetRead(f func(*activate.Target) error) error {
	t, done, err := h.OpenTargetRead()
	if err != nil {
		return err
	}
	defer done()
	return f(t)
}
