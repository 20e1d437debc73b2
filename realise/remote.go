package realise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Remote builds derivations on other machines instead of this one: a
// pool of builders ([nexis.builders], realise/pool). Builds a Remote
// takes do not hold a local job slot; fetches and builtin steps always
// run here.
type Remote interface {
	// Accepts says whether a machine of the pool can build d: its
	// system, and the features it requires (RequiredFeaturesEnv).
	Accepts(d *builtins.Derivation) bool
	// Build builds d on a machine of the pool and registers its
	// outputs in st, checked as every arrival is. inputs is d's input
	// closure, valid in st. started is told the machine once the build
	// runs there; log receives the build's log. An error wrapping
	// ErrNoMachine means no machine that could build d is left (the
	// others went away): the caller may build d itself.
	Build(ctx context.Context, st *store.Store, d *builtins.Derivation, inputs []storepath.Path, started func(machine string), log io.Writer) error
}

// ErrNoMachine is wrapped when no machine of a pool can build a
// derivation.
var ErrNoMachine = errors.New("no builder of the pool can build it")

// RequiredFeaturesEnv lists, space-separated, the features a derivation
// needs of the machine that builds it ("kvm", "big-parallel"), as Nix's
// requiredSystemFeatures: a pool sends it only to machines that list
// them all.
const RequiredFeaturesEnv = "NEXIS_REQUIRED_FEATURES"

// RequiredFeatures are d's RequiredFeaturesEnv.
func RequiredFeatures(d *builtins.Derivation) []string {
	return strings.Fields(d.Getenv(RequiredFeaturesEnv))
}

// remoteAccepts says whether d goes to Options.Remote: a sandboxed
// build a machine of the pool accepts (it may be for another system
// than this machine's) and that sees no host paths.
func (s *scheduler) remoteAccepts(d *builtins.Derivation) bool {
	r := s.opts.Remote
	return r != nil && !s.opts.Check && !s.opts.CheckRoots && d.Fixed == nil && !builtins.IsBuiltin(d.Builder) && s.hostPaths.find(d) == nil && r.Accepts(d)
}

// buildRemote hands d to Options.Remote when remoteAccepts; done is false
// when d is to be built here.
func (s *scheduler) buildRemote(d *builtins.Derivation) (status Status, done bool, err error) {
	r := s.opts.Remote
	if !s.remoteAccepts(d) {
		if by := s.hostPaths.find(d); r != nil && by != nil && d.Fixed == nil && !builtins.IsBuiltin(d.Builder) {
			s.opts.Reporter.Note(fmt.Sprintf("building %s here, not on a builder of the pool: its outputs are impure (%s), and an impure build never leaves this machine", d.FullName(), HostPathsImpurity(d, by)))
		}
		return 0, false, nil
	}
	j := &job{s: s, d: d}
	inputs, err := j.closure()
	if err != nil {
		return Failed, true, s.fail(d, err, nil)
	}
	log, err := openLog(s.opts.LogDir, d, s.opts.Reporter)
	if err != nil {
		return Failed, true, s.fail(d, err, nil)
	}
	var once sync.Once
	started := func(machine string) {
		// Once: a job started again on another machine is one build.
		once.Do(func() { s.opts.Reporter.Started(d, "build") })
		fmt.Fprintf(log, "nexis: building %s on %s\n", d.FullName(), machine)
	}
	err = r.Build(s.ctx, s.st, d, inputs, started, log)
	log.Close()
	switch {
	case err == nil:
		s.opts.Reporter.Finished(d, Built)
		return Built, true, nil
	case s.ctx.Err() != nil:
		return Cancelled, true, context.Cause(s.ctx)
	case errors.Is(err, ErrNoMachine):
		if serr := checkSystem(d); serr != nil {
			return Failed, true, s.fail(d, fmt.Errorf("%w, and %v", err, serr), log)
		}
		s.opts.Reporter.Note(fmt.Sprintf("%s: %v; building it here", d.FullName(), err))
		return 0, false, nil
	}
	return Failed, true, s.fail(d, err, log)
}
