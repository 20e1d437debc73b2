package activate

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"time"

	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Open takes the root's activation lock and opens its store: read-only
// through openRead, unless write, or the store was never written (then
// writable, through Reopen). A read-only target reopens the store for
// writing when something in the database must change, which most
// rollbacks and no-op switches never do. done releases both.
func (t *Target) Open(write bool, openRead func() (*store.Store, error)) (done func(), err error) {
	lk, err := t.LockTarget()
	if err != nil {
		return nil, err
	}
	var st *store.Store
	if !write {
		st, err = openRead()
		t.ReadOnly = err == nil
	}
	if write || errors.Is(err, store.ErrNotInitialised) {
		st, err = t.Reopen()
	}
	if err != nil {
		lk.Unlock()
		return nil, err
	}
	t.Store = st
	return func() { lk.Unlock(); t.Store.Close() }, nil
}

// ProfileSystem is the logical system path the profile's current
// generation links to ("" when there is none), read from the links
// alone: it needs no store, so a switch knows before opening the store
// whether it will write to the database.
func (t *Target) ProfileSystem() string {
	gen, err := t.Root.Readlink(path.Join(t.ProfilesDir(), Profile))
	if err != nil {
		return ""
	}
	p, err := t.Root.Readlink(path.Join(t.ProfilesDir(), path.Base(gen)))
	if err != nil {
		return ""
	}
	return p
}

// ReadManifests reads the manifests of the system outputs at the logical
// paths given that are in the store already (see ReadManifest), the
// store being at physical on this machine and logical in paths.
func ReadManifests(physical, logical string, paths ...string) map[storepath.Path]*manifest.Manifest {
	out := map[storepath.Path]*manifest.Manifest{}
	for _, l := range paths {
		p, rest, err := storepath.Parse(logical, l)
		if err != nil || rest != "" {
			continue
		}
		if m, err := ReadManifest(filepath.Join(physical, filepath.FromSlash(p.Rel()))); err == nil {
			out[p] = m
		}
	}
	return out
}

// ActiveSystem is the system the last activation made live, nil when
// there is none (or it cannot be read).
func (t *Target) ActiveSystem() *System {
	st, err := t.LoadState()
	if err != nil || st.System == "" {
		return nil
	}
	p, _, err := storepath.Parse(t.Store.LogicalDir(), st.System)
	if err != nil {
		return nil
	}
	sys, err := t.LoadSystem(p)
	if err != nil {
		return nil
	}
	return sys
}

// GenerationInfo is one generation as `nexis generations list` shows it.
type GenerationInfo struct {
	Number       uint64    `json:"number"`
	Path         string    `json:"path"`
	Time         time.Time `json:"time"`
	ConfigHash   string    `json:"config_hash"`
	NexisVersion string    `json:"nexis_version"`
	Pinned       bool      `json:"pinned"`
	Current      bool      `json:"current"` // the profile's (the boot default)
	Active       bool      `json:"active"`  // what the last activation made live
}

// ListGenerations describes every generation, oldest first.
func (t *Target) ListGenerations() (Generations, error) {
	gens, cur, err := t.generationsAndCurrent()
	if err != nil {
		return nil, err
	}
	st, err := t.LoadState()
	if err != nil {
		return nil, err
	}
	out := Generations{}
	for _, g := range gens {
		logical := t.Store.Logical(g.Path)
		out = append(out, GenerationInfo{
			Number: g.Number, Path: logical, Time: g.Time.UTC(), ConfigHash: g.ConfigHash,
			NexisVersion: g.NexisVersion, Pinned: g.Pinned, Current: g.Number == cur, Active: st.System == logical,
		})
	}
	return out, nil
}

// CheckCurrent walks the root against the current generation (Check
// and CheckBoot) and returns every way the root differs from it.
func (t *Target) CheckCurrent() (*Drift, error) {
	cur, ok, err := t.Current()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no generation is current on %s", t.Root.Dir())
	}
	g, err := t.Generation(cur)
	if err != nil {
		return nil, err
	}
	sys, err := t.LoadSystem(g.Path)
	if err != nil {
		return nil, err
	}
	probs, err := t.Check(sys)
	if err != nil {
		return nil, err
	}
	boot, err := t.CheckBoot()
	if err != nil {
		return nil, err
	}
	return &Drift{Generation: cur, Problems: append(append([]string{}, probs...), boot...)}, nil
}
