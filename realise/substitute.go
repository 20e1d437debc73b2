package realise

import (
	"context"
	"errors"
	"fmt"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/storepath"
)

// trySubstitute asks the binary caches (Options.Substituter) for d's
// outputs before d is built, as Nix does: when every output and its
// closure can be had with trusted signatures, they are downloaded and
// registered, and d's inputs are never realised. ok is false when d must
// be built after all: no substituter, a path no cache has, or a refusal
// or failed download (which is reported, then building goes on).
func (s *scheduler) trySubstitute(d *builtins.Derivation) (status Status, ok bool, err error) {
	sub := s.opts.Substituter
	if sub == nil || len(sub.Sources) == 0 || s.opts.Check || s.opts.CheckRoots {
		return 0, false, nil
	}
	if s.hostPaths.find(d) != nil {
		// It, or what it is built from, sees host paths: what a cache
		// holds under its path says nothing about what this machine's
		// would give.
		return 0, false, nil
	}
	outs := make([]storepath.Path, 0, len(d.Outputs))
	for _, o := range d.Outputs {
		p, err := outputPath(d, o)
		if err != nil {
			return 0, false, nil
		}
		outs = append(outs, p)
	}
	var stats *cache.SubstituteStats
	if ca, ok := d.ContentAddress(); ok {
		// The derivation says what the bytes must be: a record cannot
		// drop or change that, and an address that cannot be checked
		// against a cache's copy (an unpacked archive) is fetched from
		// its origin, where the archive's hash is checked.
		if !ca.Checkable() {
			return 0, false, nil
		}
		stats, err = sub.SubstituteFixed(s.ctx, s.st, outs[0], ca)
	} else {
		stats, err = sub.Substitute(s.ctx, s.st, outs)
	}
	if err == nil {
		if stats.Paths > 0 {
			s.opts.Reporter.Note(fmt.Sprintf("substituted %s (%d path(s), %s) from %v", d.FullName(), stats.Paths, store.HumanSize(stats.Bytes), stats.From))
		}
		s.opts.Reporter.Finished(d, Substituted)
		return Substituted, true, nil
	}
	if s.ctx.Err() != nil {
		return Cancelled, true, context.Cause(s.ctx)
	}
	if !errors.Is(err, cache.ErrNotFound) {
		s.opts.Reporter.Note(fmt.Sprintf("substituting %s failed, building it instead: %v", d.FullName(), err))
	}
	return 0, false, nil
}
