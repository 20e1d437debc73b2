package deploy

import (
	"context"
	"fmt"
	"io"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Remote is a switch another machine takes part in: the system is built
// here or on Build, and activated here or on Target.
type Remote struct {
	Host *host.Host
	// Build builds the system instead of this machine (nil: here, with
	// Builder).
	Build   *BuildHost
	Builder Builder
	// Target receives the closure and activates it (nil: this machine,
	// the host's target opened for activation, with SwitchHere).
	Target     *TargetHost
	SwitchHere func(t *activate.Target, p storepath.Path) error
	// Copying shows a copy to the target's host (nil: not shown).
	Copying func(done, total int, bytes int64)
	// Prints receives what was copied.
	Prints io.Writer
}

// Switch builds sys where r says and activates it where r says.
func (r *Remote) Switch(ctx context.Context, sys System) error {
	if r.Build != nil {
		// This machine's store is not held while the build host works.
		if err := r.Build.Build(ctx, sys); err != nil {
			return err
		}
	}
	if r.Target == nil {
		t, done, err := r.Host.OpenActivation(true)
		if err != nil {
			return err
		}
		defer done()
		p, err := r.fetch(ctx, t.Store, sys)
		if err != nil {
			return err
		}
		return r.SwitchHere(t, p)
	}
	st, err := r.Host.OpenStore()
	if err != nil {
		return err
	}
	defer st.Close()
	var p storepath.Path
	if r.Build != nil {
		p, err = r.fetch(ctx, st, sys)
	} else if p, err = Realise(ctx, st, sys.Drv, r.Builder); err != nil {
		err = fmt.Errorf("the system was not built, nothing was copied or activated: %w", err)
	}
	if err != nil {
		return err
	}
	stats, err := r.Target.Copy(ctx, st, p, r.Copying)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Prints, "nexis: copied %d of %d path(s) to %s (%s)\n", stats.Sent, stats.Closure, r.Target.URL.Host, store.HumanSize(stats.Bytes))
	// The store is not needed any more: release its lock before the
	// remote side runs (the remote may be this machine).
	if err := st.Close(); err != nil {
		return err
	}
	return r.Target.Activate(ctx, sys)
}

// fetch brings the system the build host built into st.
func (r *Remote) fetch(ctx context.Context, st *store.Store, sys System) (storepath.Path, error) {
	trusted, err := r.Host.TrustedKeys()
	if err != nil {
		return storepath.Path{}, err
	}
	got, err := r.Build.Fetch(ctx, st, sys, trusted)
	if err != nil {
		return storepath.Path{}, err
	}
	fmt.Fprintf(r.Prints, "nexis: copied %d of %d path(s) from %s (%s)\n", got.Registered, got.Closure, r.Build.URL.Host, store.HumanSize(got.Bytes))
	return got.Path, nil
}
