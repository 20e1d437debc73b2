package realise

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
)

// Machine is what realising on this machine takes besides the
// derivations: where build logs are kept, which keys it trusts, the files
// it has instead of downloads, and where progress shows. Every command
// that builds makes one; Options combines it with a config's caches, and
// Run and Repair run with a progress display.
type Machine struct {
	// LogDir keeps the build logs (<state>/logs).
	LogDir string
	// TrustedFile lists the keys this machine trusts
	// (<root>/etc/nexis/trusted-keys, sign.DefaultTrustedFile).
	TrustedFile string
	// LocalFiles stand in for downloads (Options.LocalFiles): a stdenv
	// made on this machine.
	LocalFiles map[string]string
	// Progress shows builds, failures and downloads (stderr).
	Progress *os.File
	// PrintLogs shows every build's log lines too (-L).
	PrintLogs bool
	// Verbosity is how much Progress shows (-q, -v).
	Verbosity Verbosity
	// Downloads is told how substitutions progress (nil: not shown).
	Downloads func(cache.SubstituteProgress)
}

// Caches are a config's [nexis.substituters]: the binary caches a build
// may take outputs from, and the keys besides the machine's whose
// signatures it accepts there.
type Caches struct {
	URLs        []string
	TrustedKeys []string
}

// Options are Build's options on m for a config with caches c; the
// caller sets what its command line tunes (Jobs, KeepGoing, ...).
func (m *Machine) Options(c Caches) (Options, error) {
	o := Options{LogDir: m.LogDir, LocalFiles: m.LocalFiles}
	if len(c.URLs) == 0 {
		return o, nil
	}
	trusted, err := sign.LoadTrusted(m.TrustedFile, c.TrustedKeys...)
	if err != nil {
		return o, fmt.Errorf("[nexis.substituters] trusted_keys: %w", err)
	}
	sub, err := cache.NewSubstituter(c.URLs, trusted)
	if err != nil {
		return o, fmt.Errorf("[nexis.substituters] urls: %w", err)
	}
	sub.Progress = m.Downloads
	o.Substituter = sub
	return o, nil
}

// Run is Build with m's progress display. When builds failed it says
// which ("nexis: 2 failed: a-1.0 b-2.1"), after each failure's own
// report, and the error wraps ErrFailed.
func (m *Machine) Run(ctx context.Context, st *store.Store, roots []*builtins.Derivation, opts Options) (*Result, error) {
	rep := NewReporter(m.Progress, m.PrintLogs, m.Verbosity)
	opts.Reporter = rep
	res, err := Build(ctx, st, roots, opts)
	CloseReporter(rep)
	if err != nil && res != nil && len(res.Failures) > 0 {
		names := make([]string, len(res.Failures))
		for i, f := range res.Failures {
			names[i] = f.Drv.FullName()
		}
		fmt.Fprintf(m.Progress, "nexis: %d failed: %s\n", len(names), strings.Join(names, " "))
	}
	return res, err
}

// Repair is the package's Repair with m's progress display.
func (m *Machine) Repair(ctx context.Context, st *store.Store, plan *store.RepairPlan, roots []*builtins.Derivation, opts Options) (*RepairReport, error) {
	rep := NewReporter(m.Progress, false, m.Verbosity)
	opts.Reporter = rep
	defer CloseReporter(rep)
	return Repair(ctx, st, plan, roots, opts)
}
