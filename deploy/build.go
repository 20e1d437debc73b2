package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
	"github.com/nexisos/nexis/store/storepath"
)

// Settings are what building takes of a config: its
// [nexis.substituters] and its [nexis.builders].
type Settings struct {
	Caches   realise.Caches
	Builders []pool.Spec
}

// Build is how a command builds on the host: its machine, a config's
// caches and builders, and what the command line tunes.
type Build struct {
	Host     *host.Host
	Settings Settings
	// LocalFiles stand in for downloads (a --stdenv's tarballs).
	LocalFiles map[string]string
	// Downloads shows how substitutions progress (nil: not shown).
	Downloads func(done, total int, bytes int64)
	// PrintLogs shows every build's log lines (-L).
	PrintLogs bool
	// Tuning is what the command line sets of the build (-j, -k, ...).
	Tuning Tuning
}

// Tuning is what the command line sets of a build: builds at once (0:
// the machine's default), going on past failures, a time limit, and
// --check's rebuilds.
type Tuning struct {
	Jobs              int
	KeepGoing         bool
	Timeout           time.Duration
	Check, CheckRoots bool
}

// Builder gives the machine, the options and the builder pool, when
// something must be built.
func (b *Build) Builder() Builder {
	return func() (*realise.Machine, realise.Options, func(), error) {
		m, err := b.Host.Machine(b.LocalFiles, b.Downloads)
		if err != nil {
			return nil, realise.Options{}, nil, err
		}
		m.PrintLogs = b.PrintLogs
		opts, err := m.Options(b.Settings.Caches)
		if err != nil {
			return nil, opts, nil, err
		}
		t := b.Tuning
		opts.Jobs, opts.KeepGoing, opts.Timeout = t.Jobs, t.KeepGoing, t.Timeout
		opts.Check, opts.CheckRoots = t.Check, t.CheckRoots
		builders, err := b.Host.Builders(b.Settings.Builders, b.Settings.Caches.URLs)
		if err != nil {
			return nil, opts, nil, err
		}
		opts.Remote = host.Remote(builders)
		return m, opts, func() { builders.Close() }, nil
	}
}

// ErrInterrupted is the error of a build its context stopped: nothing
// partial was registered.
var ErrInterrupted = errors.New("interrupted; nothing partial was registered")

// Built is what `nexis build` built (its --json form).
type Built struct {
	Outputs     map[string]string `json:"outputs"`
	Built       int               `json:"built"`
	Fetched     int               `json:"fetched"`
	Substituted int               `json:"substituted"`
	Checks      []realise.Check   `json:"checks,omitempty"`
	// paths are the outputs' paths in the derivation's order.
	paths []string
}

// Run builds target into the host's store, as nexis build does: the
// store opened for writing (waiting for another writer), target's
// closure realised, and, unless link is "", an out-link to its output
// made, a GC root. ctx gives the build's context once the store is
// open. A build ctx stopped fails with ErrInterrupted.
func (b *Build) Run(target *builtins.Derivation, link string, ctx func() (context.Context, context.CancelFunc)) (*Built, error) {
	st, err := b.Host.OpenStore()
	if err != nil {
		return nil, err
	}
	defer st.Close()
	m, opts, release, err := b.Builder()()
	if err != nil {
		return nil, err
	}
	defer release()
	c, stop := ctx()
	defer stop()
	res, err := m.Run(c, st, []*builtins.Derivation{target}, opts)
	if err != nil {
		if c.Err() != nil {
			return nil, ErrInterrupted
		}
		return nil, err
	}
	if link != "" {
		p, _, err := storepath.Parse(st.LogicalDir(), target.Out())
		if err != nil {
			return nil, err
		}
		if err := realise.OutLink(st, p, link); err != nil {
			return nil, err
		}
	}
	out := &Built{Outputs: map[string]string{}, Built: res.Count(realise.Built), Fetched: res.Count(realise.Fetched), Substituted: res.Count(realise.Substituted), Checks: res.Checks}
	for _, name := range target.Outputs {
		p, _ := target.OutputPath(name)
		out.Outputs[name] = p
		out.paths = append(out.paths, p)
	}
	return out, nil
}

// PrintChecks writes what --check found of each rebuild.
func (b *Built) PrintChecks(w io.Writer) {
	for _, c := range b.Checks {
		switch {
		case c.Damaged != "":
			fmt.Fprintf(w, "nexis: check: the store's copy of %s is damaged: %s (the rebuild hashes to blake3:%s, registered blake3:%s); %s restores it\n", c.Path, c.Damaged, c.Got, c.Want, hint.Command("store verify", "--check-contents", "--repair"))
		case c.Identical:
			fmt.Fprintf(w, "nexis: check: %s is bit-identical when rebuilt\n", c.Path)
		default:
			fmt.Fprintf(w, "nexis: check: %s differs when rebuilt:\n  registered tree: blake3:%s\n  rebuilt tree:    blake3:%s\n", c.Path, c.Want, c.Got)
		}
	}
}

// Differs tells whether a rebuild differed from the store, or found the
// store's copy damaged.
func (b *Built) Differs() bool {
	for _, c := range b.Checks {
		if c.Damaged != "" || !c.Identical {
			return true
		}
	}
	return false
}

// Print writes the output paths, one a line.
func (b *Built) Print(w io.Writer) {
	for _, p := range b.paths {
		fmt.Fprintln(w, p)
	}
}

// ReceiveBuildConfig unpacks the config tar r (what switch --build-host
// sends) under the host's state directory, and returns the path of its
// config rel and the function that removes it again.
func ReceiveBuildConfig(h *host.Host, r io.Reader, rel string) (string, func(), error) {
	state, err := h.PhysicalStateDir()
	if err != nil {
		return "", nil, err
	}
	return ReceiveConfigIn(filepath.Join(state, "build-configs"), r, rel)
}

// PlanBuild is what building target on the host would fetch and build
// (build --dry-run), with nothing changed.
func PlanBuild(h *host.Host, target *builtins.Derivation) (*realise.Plan, error) {
	st, err := h.OpenStoreRead()
	if err != nil {
		// A store nothing was added to yet: everything is to do, which
		// a fresh (writable) open tells just as well.
		if st, err = h.OpenStore(); err != nil {
			return nil, err
		}
	}
	defer st.Close()
	return realise.MakePlan(st, []*builtins.Derivation{target})
}

// Outputs realises the one derivation d in the host's store (the
// repl's :b), with no out-link, and returns its output paths.
func (b *Build) Outputs(d *builtins.Derivation) ([]string, error) {
	built, err := b.Run(d, "", func() (context.Context, context.CancelFunc) {
		return context.WithCancel(context.Background())
	})
	if err != nil {
		return nil, err
	}
	return built.paths, nil
}
