// Package deploy takes an evaluated system to where it runs: it realises
// it here (Realise), or on a build host over ssh, whose nexis builds the
// config sent to it as a tar and sends the signed closure back
// (BuildHost); and it copies a closure to a target host and activates it
// there with that host's nexis (TargetHost). Evaluation is the caller's:
// a System is what deploying needs of its result.
package deploy

import (
	"context"
	"path/filepath"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// System is an evaluated system as deploying it needs it.
type System struct {
	Drv *builtins.Derivation
	// Dir is the config's directory, absolute; Files are the config
	// files the evaluation read, relative to it, the main one first.
	Dir   string
	Files []string
}

// Held is the system's store path at the logical path out, and whether
// it is valid already; a valid one is held by a temporary root from
// then on.
func Held(st *store.Store, out string) (storepath.Path, bool, error) {
	p, _, err := storepath.Parse(st.LogicalDir(), out)
	if err != nil {
		return storepath.Path{}, false, err
	}
	if ok, err := st.IsValid(p); err != nil || !ok {
		return p, false, err
	}
	if err := st.AddTempRoots(p); err != nil {
		return p, false, err
	}
	ok, err := st.IsValid(p)
	return p, ok && err == nil, nil
}

// Builder gives the machine and the options to build with, and release,
// called once the build is done (it closes the connections to builders
// of [nexis.builders]); Realise asks for them only when something must
// be built, so that a system that is valid already never reads the
// build settings (a cache that cannot be opened, say).
type Builder func() (m *realise.Machine, opts realise.Options, release func(), err error)

// Realise makes the system drv valid in st, building what is missing,
// and returns its path, held by a temporary root (realise.Build holds
// every output it looks at). A failed build's error wraps
// realise.ErrFailed.
func Realise(ctx context.Context, st *store.Store, drv *builtins.Derivation, b Builder) (storepath.Path, error) {
	return realiseIn(ctx, func() *store.Store { return st }, nil, drv, b)
}

// RealiseOn is Realise in the target's store, which is reopened
// writable only when something must be built.
func RealiseOn(ctx context.Context, t *activate.Target, drv *builtins.Derivation, b Builder) (storepath.Path, error) {
	return realiseIn(ctx, func() *store.Store { return t.Store }, t.Writable, drv, b)
}

func realiseIn(ctx context.Context, st func() *store.Store, writable func() error, drv *builtins.Derivation, b Builder) (storepath.Path, error) {
	p, ok, err := Held(st(), drv.Out())
	if err != nil || ok {
		return p, err
	}
	if writable != nil {
		if err := writable(); err != nil {
			return p, err
		}
	}
	m, opts, release, err := b()
	if err != nil {
		return p, err
	}
	defer release()
	_, err = m.Run(ctx, st(), []*builtins.Derivation{drv}, opts)
	return p, err
}

// eachDerivation calls visit once for every derivation of root's build
// graph, root included.
func eachDerivation(root *builtins.Derivation, visit func(*builtins.Derivation)) {
	seen := map[string]bool{}
	var walk func(d *builtins.Derivation)
	walk = func(d *builtins.Derivation) {
		if seen[d.ID()] {
			return
		}
		seen[d.ID()] = true
		visit(d)
		for _, in := range d.Drvs {
			walk(in)
		}
	}
	walk(root)
}

// inside reports whether p is dir or below it.
func inside(dir, p string) bool {
	r, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(r)
}
