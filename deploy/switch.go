package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/internal/gcpace"
	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store/storepath"
)

// Config is the config a switch activates, as deploy sees it: how to
// get its system, which the caller evaluates (deploy never imports lang).
type Config struct {
	// Cached is the system the evaluation cache gives for the config,
	// ok false when the cache cannot answer (a file changed, no entry).
	Cached func() (c Cached, ok bool)
	// Evaluate evaluates the config: its system, and how to build it.
	Evaluate func() (*builtins.Derivation, Builder, error)
}

// Cached is a system the evaluation cache gives: its output path, its
// identity, and what its evaluation printed (shown when it is used).
type Cached struct {
	Out, ID string
	Prints  []string
}

// Local is a switch (boot, test) of the host's root to a config.
type Local struct {
	Host   *host.Host
	Config Config
	// Prints gets what a cached evaluation printed.
	Prints io.Writer
}

// Switched is a switch done: the target (open until Done is called),
// what the switch did, and the system that was active before.
type Switched struct {
	Target *activate.Target
	Done   func()
	Result *activate.Result
	Prev   *activate.System
}

// Switch gets the config's system (from the cache when it can answer
// and the system is still valid, else evaluated and realised) and
// switches the target to it with the options o gives for the config's
// identity. Nothing is activated from an unbuilt or half-built system.
//
// Evaluating and opening the store writable are each about a third of a
// switch and need different cores (Go and RocksDB), so they run at once:
// a one-file switch takes 113 ms instead of 145. An unchanged config
// would do with a read-only open, but waiting for the evaluation to know
// that costs more than the writable open does beside it.
func (l *Local) Switch(ctx context.Context, o func(configHash string) activate.SwitchOptions) (*Switched, error) {
	// Before the evaluation: its garbage is most of a switch's (see
	// host.OpenActivation).
	gcpace.Late(400)
	type opened struct {
		t    *activate.Target
		done func()
		err  error
	}
	// What the profile links to now, read without the store.
	current := ""
	if t, err := l.Host.Target(); err == nil {
		current = t.ProfileSystem()
	}
	ch := make(chan opened, 1)
	go func() {
		t, done, err := l.Host.OpenActivation(true)
		ch <- opened{t, done, err}
	}()
	// The current system's manifest is read beside them too: the open
	// spends milliseconds waiting on fsyncs, and decoding the first
	// manifest is the dearest (encoding/json learns the types), so it no
	// longer waits for the evaluation to end. Store paths never change,
	// so reading before the activation lock is held is safe.
	curRead := make(chan map[storepath.Path]*manifest.Manifest, 1)
	go func() { curRead <- l.Host.ReadManifests(current) }()
	cached, ok := l.Config.Cached()
	var drv *builtins.Derivation
	var build Builder
	out := cached.Out
	if !ok {
		var err error
		if drv, build, err = l.Config.Evaluate(); err != nil {
			// Not waiting for the open: it may wait for a lock, and the
			// store recovers from an open cut short like from any crash.
			return nil, err
		}
		out = drv.Out()
	}
	// The core that evaluated is free while the open finishes: read the
	// new system's manifest meanwhile.
	var read map[storepath.Path]*manifest.Manifest
	if out != current {
		read = l.Host.ReadManifests(out)
	}
	op := <-ch
	if op.err != nil {
		return nil, op.err
	}
	t := op.t
	for _, ms := range []map[storepath.Path]*manifest.Manifest{read, <-curRead} {
		for p, m := range ms {
			t.AdoptManifest(p, m)
		}
	}
	p, hash, err := l.system(ctx, t, cached, drv, build)
	if err != nil {
		op.done()
		return nil, err
	}
	prev := t.ActiveSystem()
	res, err := t.Switch(p, o(hash))
	if err != nil {
		op.done()
		return nil, err
	}
	return &Switched{Target: t, Done: op.done, Result: res, Prev: prev}, nil
}

// system is the valid system to switch to and the config's identity:
// the cached one when it is still in the store (a system collected
// since is evaluated again, for the derivations to build), else drv
// realised.
func (l *Local) system(ctx context.Context, t *activate.Target, cached Cached, drv *builtins.Derivation, build Builder) (storepath.Path, string, error) {
	if drv == nil {
		p, ok, err := Held(t.Store, cached.Out)
		if err != nil {
			return p, "", err
		}
		if ok {
			for _, m := range cached.Prints {
				io.WriteString(l.Prints, m+"\n")
			}
			return p, cached.ID, nil
		}
		if drv, build, err = l.Config.Evaluate(); err != nil {
			return p, "", err
		}
	}
	p, err := RealiseOn(ctx, t, drv, build)
	if errors.Is(err, realise.ErrFailed) {
		return p, "", fmt.Errorf("the system was not built, nothing was activated: %w", err)
	}
	return p, drv.ID(), err
}
