package realise

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Repair executes a verify plan (store.Verify), as nix-store --verify
// --check-contents --repair does: first the store's own part
// (store.Repair: counters, garbage, the pool), then every damaged path
// of plan.Restore is restored with new bytes, from the caches
// (Options.Substituter) when one has the registered tree, else by
// rebuilding the derivation among roots' closure that makes it (its
// damaged inputs first), or, for a path() source, from the config
// directory. Every new copy must be the registered one (store.Restore);
// what could not be restored is reported with the reason and left as it
// is. The error is for failures of the repair itself.
func Repair(ctx context.Context, st *store.Store, plan *store.RepairPlan, roots []*builtins.Derivation, opts Options) (*RepairReport, error) {
	rep := &RepairReport{Store: []string{}, Restored: []Restoration{}, NotRestored: []Restoration{}}
	done, err := st.Repair(plan)
	rep.Store = append(rep.Store, done...)
	if err != nil {
		return rep, err
	}
	if len(plan.Restore) == 0 {
		return rep, nil
	}
	damaged := map[string]bool{}
	for _, d := range plan.Restore {
		damaged[d.Path.Hash] = true
	}
	left := map[string]store.Damage{}
	for _, d := range plan.Restore {
		left[d.Path.Hash] = d
	}
	why := map[string]string{}
	restored := func(p storepath.Path, how string) {
		rep.Restored = append(rep.Restored, Restoration{Path: st.Logical(p), How: how})
		delete(left, p.Hash)
	}

	// Sources come back from the config directory, when they still
	// hash to what they were.
	producers, sources := producersOf(roots)
	for h, src := range sources {
		if !damaged[h] || src.Abs == "" {
			continue
		}
		p := left[h].Path
		if _, err := st.Restore(store.RestoreRequest{Path: p, Src: src.Abs}); err != nil {
			why[h] = fmt.Sprintf("its source %s: %v", src.Display, err)
			continue
		}
		restored(p, "copied from the source "+src.Display)
	}

	// Derivations that make damaged paths are realised with those paths
	// restored: from a cache first, else rebuilt.
	var goals []*builtins.Derivation
	seen := map[string]bool{}
	for h := range left {
		if d := producers[h]; d != nil && !seen[d.ID()] {
			seen[d.ID()] = true
			goals = append(goals, d)
		}
	}
	sort.Slice(goals, func(i, j int) bool { return goals[i].Out() < goals[j].Out() })
	if len(goals) > 0 {
		opts.KeepGoing = true
		res, err := build(ctx, st, goals, opts, damaged)
		if res != nil {
			for _, r := range res.Restored {
				rep.Restored = append(rep.Restored, r)
				if p, _, perr := st.ParsePath(r.Path); perr == nil {
					delete(left, p.Hash)
				}
			}
			for _, f := range res.Failures {
				for _, o := range f.Drv.Outputs {
					if p, err := outputPath(f.Drv, o); err == nil && left[p.Hash].Path == p {
						why[p.Hash] = "rebuilding it failed: " + shortErr(f)
					}
				}
			}
		}
		if err != nil && !errors.Is(err, ErrFailed) {
			return rep, err
		}
	}

	// What no derivation of the config makes may still be in a cache.
	for h, d := range left {
		if producers[h] != nil || why[h] != "" {
			continue
		}
		if sub := opts.Substituter; sub != nil && len(sub.Sources) > 0 {
			url, err := sub.Restore(ctx, st, d.Path)
			if err == nil {
				restored(d.Path, "substituted from "+url)
				continue
			}
			why[h] = "no derivation of the config makes it, and the caches: " + err.Error()
			continue
		}
		why[h] = "no derivation of the config makes it and no cache is configured (give the config that builds it, with its [nexis.substituters])"
	}
	for h, d := range left {
		w := why[h]
		if w == "" {
			w = "it was not restored"
		}
		rep.NotRestored = append(rep.NotRestored, Restoration{Path: d.StorePath, How: w})
	}
	sort.Slice(rep.Restored, func(i, j int) bool { return rep.Restored[i].Path < rep.Restored[j].Path })
	sort.Slice(rep.NotRestored, func(i, j int) bool { return rep.NotRestored[i].Path < rep.NotRestored[j].Path })
	return rep, nil
}

// RepairReport says what Repair did.
type RepairReport struct {
	// Store is what the store's own repair did.
	Store []string `json:"store"`
	// Restored are the damaged paths put back, NotRestored the others,
	// with how, or why not.
	Restored    []Restoration `json:"restored"`
	NotRestored []Restoration `json:"not_restored"`
}

// Restoration is one damaged path and how it was restored (or why it
// was not).
type Restoration struct {
	Path string `json:"path"`
	How  string `json:"how"`
}

// producersOf maps the output paths of roots' closure to their
// derivations, and their sources' paths to
// the sources.
func producersOf(roots []*builtins.Derivation) (map[string]*builtins.Derivation, map[string]*builtins.Source) {
	producers := map[string]*builtins.Derivation{}
	sources := map[string]*builtins.Source{}
	for _, d := range builtins.Closure(roots...) {
		for _, o := range d.Outputs {
			if p, err := outputPath(d, o); err == nil {
				producers[p.Hash] = d
			}
		}
		for _, src := range d.Srcs {
			if p, _, err := storepath.Parse(d.Store, src.Path); err == nil {
				sources[p.Hash] = src
			}
		}
	}
	return producers, sources
}

// damagedOutputs lists d's outputs that are registered but damaged.
func (s *scheduler) damagedOutputs(d *builtins.Derivation) []storepath.Path {
	var out []storepath.Path
	for _, o := range d.Outputs {
		if p, err := outputPath(d, o); err == nil && s.damaged[p.Hash] {
			out = append(out, p)
		}
	}
	return out
}

// restore puts back d's damaged outputs: from a cache when one has them
// all, else rebuilt (after its inputs, damaged ones restored first).
func (s *scheduler) restore(d *builtins.Derivation) (Status, error) {
	damaged := s.damagedOutputs(d)
	if sub := s.opts.Substituter; sub != nil && len(sub.Sources) > 0 {
		var urls []string
		for _, p := range damaged {
			url, err := sub.Restore(s.ctx, s.st, p)
			if err != nil {
				s.opts.Reporter.Note(fmt.Sprintf("restoring %s from the caches failed, rebuilding it: %v", s.st.Logical(p), err))
				break
			}
			urls = append(urls, url)
		}
		if len(urls) == len(damaged) {
			for i, p := range damaged {
				s.restored(p, "substituted from "+urls[i])
			}
			s.opts.Reporter.Finished(d, Substituted)
			return Substituted, nil
		}
	}
	if err := s.need(d.Drvs); err != nil {
		return DependencyFailed, err
	}
	for _, src := range d.Srcs {
		if err := s.addSource(src); err != nil {
			return Failed, s.fail(d, err, nil)
		}
	}
	uid, release, err := s.slot(d)
	if err != nil {
		return Cancelled, err
	}
	defer release()
	j := &job{s: s, d: d, uid: uid}
	outs, status, cleanup, err := j.produce()
	defer cleanup()
	if err != nil {
		if s.ctx.Err() != nil && errors.Is(err, context.Cause(s.ctx)) {
			return Cancelled, err
		}
		return Failed, s.fail(d, err, j.log)
	}
	for _, p := range damaged {
		o := d.Outputs[0]
		for _, name := range d.Outputs {
			if q, _ := outputPath(d, name); q == p {
				o = name
			}
		}
		if _, err := s.st.Restore(store.RestoreRequest{Path: p, Src: outs[o], Move: true, Private: d.WritesSecret()}); err != nil {
			return Failed, s.fail(d, err, j.log)
		}
		s.restored(p, "rebuilt")
	}
	s.opts.Reporter.Finished(d, status)
	return status, nil
}

func (s *scheduler) restored(p storepath.Path, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.res.Restored = append(s.res.Restored, Restoration{Path: s.st.Logical(p), How: how})
}
