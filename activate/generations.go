package activate

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Generations lists the profile's generations, oldest first.
func (t *Target) Generations() ([]store.Generation, error) {
	return t.Store.ListGenerations(Profile)
}

// generationsAndCurrent lists the generations, oldest first, and the
// number of the current one (0 when there is none).
func (t *Target) generationsAndCurrent() ([]store.Generation, uint64, error) {
	gens, err := t.Generations()
	if err != nil {
		return nil, 0, err
	}
	cur, _, err := t.Current()
	return gens, cur, err
}

// Generation returns generation n.
func (t *Target) Generation(n uint64) (store.Generation, error) {
	g, ok, err := t.Store.GetGeneration(Profile, n)
	if err != nil {
		return g, err
	}
	if !ok {
		return g, fmt.Errorf("there is no generation %d (see nexis generations list)", n)
	}
	return g, nil
}

// AddGeneration records sys as a new generation, a GC root with its
// profile link. When the current generation already is sys, nothing is
// added: switching an unchanged config makes no new generation.
func (t *Target) AddGeneration(p storepath.Path, configHash string) (store.Generation, bool, error) {
	gens, err := t.Generations()
	if err != nil {
		return store.Generation{}, false, err
	}
	cur, ok, err := t.Current()
	if err != nil {
		return store.Generation{}, false, err
	}
	if ok {
		for _, g := range gens {
			if g.Number == cur && g.Path == p {
				// The profile link may be missing after a crash between
				// the record and the link.
				return g, false, t.setGenLink(g.Number, t.Store.Logical(p))
			}
		}
	}
	// A switch interrupted after recording its generation but before
	// making it current finishes with that generation, not a new one.
	if n := len(gens); n > 0 && gens[n-1].Path == p && gens[n-1].Number > cur {
		return gens[n-1], false, t.setGenLink(gens[n-1].Number, t.Store.Logical(p))
	}
	high, err := t.Store.MaxGeneration(Profile)
	if err != nil {
		return store.Generation{}, false, err
	}
	// The next number after the highest ever recorded, deleted ones
	// included, so no number names two systems; a number whose link is
	// still there (a crash in the middle of a delete) is skipped.
	next := high + 1
	for {
		if _, err := t.Root.Lstat(t.genLink(next)); err != nil {
			break
		}
		next++
	}
	g := store.Generation{
		Profile:      Profile,
		Number:       next,
		Path:         p,
		Time:         time.Now().UTC(),
		ConfigHash:   configHash,
		NexisVersion: t.Version,
	}
	if err := t.writable(); err != nil {
		return g, false, err
	}
	// The record (and root) first: a crash before the link leaves a
	// rooted generation without a link, which the next switch repairs; a
	// link without a record would point at collectable garbage.
	if err := t.Store.PutGeneration(g); err != nil {
		return g, false, fmt.Errorf("recording generation %d: %w", next, err)
	}
	if err := t.setGenLink(next, t.Store.Logical(p)); err != nil {
		return g, false, err
	}
	return g, true, nil
}

// SetPinned pins or unpins generation n: a pinned generation survives
// retention until it is unpinned.
func (t *Target) SetPinned(n uint64, pinned bool) error {
	g, err := t.Generation(n)
	if err != nil {
		return err
	}
	if g.Pinned == pinned {
		return nil
	}
	g.Pinned = pinned
	if err := t.writable(); err != nil {
		return err
	}
	return t.Store.PutGeneration(g)
}

// DeleteGenerations drops generations: their records and roots, their
// profile links. The current generation cannot be deleted.
func (t *Target) DeleteGenerations(ns []uint64) error {
	if err := t.checkDeletable(ns); err != nil {
		return err
	}
	if len(ns) == 0 {
		return nil
	}
	if err := t.writable(); err != nil {
		return err
	}
	for _, n := range ns {
		// The link first: once the root is gone its target may be
		// collected, and a dangling link would be offered for rollback.
		if err := t.remove(t.genLink(n)); err != nil {
			return fmt.Errorf("generation %d: %w", n, err)
		}
		if err := t.Store.DeleteGeneration(Profile, n); err != nil {
			return fmt.Errorf("generation %d: %w", n, err)
		}
	}
	return nil
}

// OlderThan lists the generations created before now-d, except the
// current one and pinned ones.
func (t *Target) OlderThan(d time.Duration, now time.Time) ([]uint64, error) {
	gens, cur, err := t.generationsAndCurrent()
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, g := range gens {
		if g.Number != cur && !g.Pinned && g.Time.Before(now.Add(-d)) {
			out = append(out, g.Number)
		}
	}
	return out, nil
}

// Retention is what a retention pass keeps and drops.
type Retention struct {
	Keep []uint64 `json:"keep"`
	Drop []uint64 `json:"drop"`
}

// PlanRetention keeps the keepLast newest generations, every pinned one
// (in the store's records or in the config's pinned list) and the
// current one; the others are to be dropped.
func (t *Target) PlanRetention(keepLast int64, pinned []int64) (*Retention, error) {
	gens, cur, err := t.generationsAndCurrent()
	if err != nil {
		return nil, err
	}
	r := &Retention{}
	for i, g := range gens {
		newest := int64(len(gens)-i) <= keepLast
		if newest || g.Pinned || g.Number == cur || slices.Contains(pinned, int64(g.Number)) {
			r.Keep = append(r.Keep, g.Number)
		} else {
			r.Drop = append(r.Drop, g.Number)
		}
	}
	return r, nil
}

// Previous is the newest generation older than the current one.
func (t *Target) Previous() (uint64, error) {
	gens, err := t.Generations()
	if err != nil {
		return 0, err
	}
	cur, ok, err := t.Current()
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("no generation is current yet: nothing to roll back")
	}
	var prev uint64
	for _, g := range gens {
		if g.Number < cur {
			prev = g.Number
		}
	}
	if prev == 0 {
		return 0, fmt.Errorf("generation %d is the oldest there is: nothing to roll back to", cur)
	}
	return prev, nil
}

// ResolveGeneration is the generation number arg names: a number,
// "current" or "previous" (the one a rollback goes to).
func (t *Target) ResolveGeneration(arg string) (uint64, error) {
	switch arg {
	case "current":
		cur, ok, err := t.Current()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("no generation is current yet")
		}
		return cur, nil
	case "previous":
		return t.Previous()
	}
	n, err := strconv.ParseUint(arg, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a generation: want its number, current or previous (see nexis generations list)", arg)
	}
	return n, nil
}

// ResolveGenerations resolves each of args (ResolveGeneration).
func (t *Target) ResolveGenerations(args []string) ([]uint64, error) {
	var out []uint64
	for _, a := range args {
		n, err := t.ResolveGeneration(a)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// checkDeletable refuses to delete the current generation, a pinned
// one or one that does not exist.
func (t *Target) checkDeletable(ns []uint64) error {
	cur, _, err := t.Current()
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n == cur {
			return fmt.Errorf("generation %d is the current one; switch to another first", n)
		}
		g, err := t.Generation(n)
		if err != nil {
			return err
		}
		if g.Pinned {
			return fmt.Errorf("generation %d is pinned: %s first", n, hint.Command("generations unpin", fmt.Sprint(n)))
		}
	}
	return nil
}

// PlanRemoval is what RemoveGenerations(ns) would delete, refused as
// it would be; nothing changes.
func (t *Target) PlanRemoval(ns []uint64) (*Removal, error) {
	if err := t.checkDeletable(ns); err != nil {
		return nil, err
	}
	return &Removal{Deleted: ns, DryRun: true}, nil
}

// Removal is what RemoveGenerations did.
type Removal struct {
	Deleted []uint64
	Boot    *BootReport
	DryRun  bool // PlanRemoval's: nothing was deleted
}

// RemoveGenerations deletes the generations ns (DeleteGenerations) and
// writes the boot menu without them. When only the menu fails, the
// removal is returned with the error.
func (t *Target) RemoveGenerations(ns []uint64) (*Removal, error) {
	r := &Removal{}
	if len(ns) == 0 {
		return r, nil
	}
	if err := t.DeleteGenerations(ns); err != nil {
		return nil, err
	}
	r.Deleted = ns
	b, err := t.WriteBootMenu()
	if err != nil {
		return r, fmt.Errorf("boot menu: %w", err)
	}
	r.Boot = b
	return r, nil
}

// GenerationDiff is what changed from one generation to another
// (nexis generations diff); its JSON is the diff's.
type GenerationDiff struct {
	From, To uint64
	Diff     *Diff
}

// DiffGenerations compares the generations a and b name
// (ResolveGeneration), closures' sizes included.
func (t *Target) DiffGenerations(a, b string) (*GenerationDiff, error) {
	ns, err := t.ResolveGenerations([]string{a, b})
	if err != nil {
		return nil, err
	}
	var syss [2]*System
	for i, n := range ns {
		g, err := t.Generation(n)
		if err != nil {
			return nil, err
		}
		if syss[i], err = t.LoadSystem(g.Path); err != nil {
			return nil, fmt.Errorf("generation %d: %w", n, err)
		}
	}
	d, err := t.DiffSystems(syss[0], syss[1], true)
	if err != nil {
		return nil, err
	}
	return &GenerationDiff{From: ns[0], To: ns[1], Diff: d}, nil
}

// Print writes the generations' numbers, then what changed.
func (d *GenerationDiff) Print(w io.Writer) {
	fmt.Fprintf(w, "generation %d -> %d\n", d.From, d.To)
	d.Diff.Print(w)
}

// MarshalJSON is the diff's JSON.
func (d *GenerationDiff) MarshalJSON() ([]byte, error) { return json.Marshal(d.Diff) }

// PinGenerations pins (or unpins) the generations args name
// (ResolveGeneration), and returns their numbers.
func (t *Target) PinGenerations(args []string, pinned bool) ([]uint64, error) {
	ns, err := t.ResolveGenerations(args)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if err := t.SetPinned(n, pinned); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// DeleteNamed deletes the generations args name (ResolveGeneration),
// or, when olderThan is not nil, those created more than *olderThan
// before now (OlderThan); with dryRun it only plans (PlanRemoval).
func (t *Target) DeleteNamed(args []string, olderThan *time.Duration, now time.Time, dryRun bool) (*Removal, error) {
	var ns []uint64
	var err error
	if olderThan != nil {
		ns, err = t.OlderThan(*olderThan, now)
	} else {
		ns, err = t.ResolveGenerations(args)
	}
	if err != nil {
		return nil, err
	}
	if dryRun {
		return t.PlanRemoval(ns)
	}
	return t.RemoveGenerations(ns)
}
