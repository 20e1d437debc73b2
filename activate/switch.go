package activate

import (
	"fmt"
	"io"
	"path"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Mode is what a switch does with the new system.
type Mode int

const (
	// ModeSwitch activates it and makes it the boot default.
	ModeSwitch Mode = iota
	// ModeBoot makes it the boot default without activating it.
	ModeBoot
	// ModeTest activates it without recording it for boot.
	ModeTest
)

// LiveRoot is the store root that holds whatever system is active, so
// a `nexis test` of an unrecorded system is not collected under it.
const LiveRoot = "activation/live"

// SwitchOptions tune Switch and SwitchTo.
type SwitchOptions struct {
	Options
	Mode Mode
	// ConfigHash identifies the evaluated config (recorded in a new
	// generation).
	ConfigHash string
	// Out receives hook and service output.
	Out io.Writer
	// Notes receives what activation says of steps it passes over (see
	// Exec.Notes): Out when nil.
	Notes io.Writer
	// Dinitctl overrides the service control program.
	Dinitctl string
	// Cleanup, when set, runs after retention dropped generations and the
	// config asks for auto_cleanup (the garbage collector); it returns a
	// summary of what it freed.
	Cleanup func(*store.Store) (string, error)
}

// Result is what a switch did.
type Result struct {
	Generation store.Generation
	// New is false when the system already was a generation (an
	// unchanged config, a rollback).
	New       bool
	Plan      *Plan
	Boot      *BootReport
	Retention *Retention
	// Cleaned is the cleanup's summary ("" when it did not run).
	Cleaned string
}

// Switch makes the realised system at p the target's system as mode says.
func (t *Target) Switch(p storepath.Path, o SwitchOptions) (*Result, error) {
	sys, err := t.LoadSystem(p)
	if err != nil {
		return nil, err
	}
	// What the machine refuses is refused before a generation is
	// recorded.
	if err := t.checkLogPaths(sys.Manifest); err != nil {
		return nil, err
	}
	res := &Result{}
	if o.Mode == ModeTest {
		// Tested systems get no generation; one that already is a
		// generation keeps its number in the record.
		gens, err := t.Generations()
		if err != nil {
			return nil, err
		}
		for _, g := range gens {
			if g.Path == p {
				res.Generation = g
			}
		}
		return res, t.activate(sys, res, o, 0)
	}
	g, created, err := t.AddGeneration(p, o.ConfigHash)
	if err != nil {
		return nil, err
	}
	res.Generation, res.New = g, created
	return res, t.finish(sys, res, o)
}

// SwitchTo makes generation n the system as mode says (rollback and
// `switch --generation N`): nothing is evaluated or built.
func (t *Target) SwitchTo(n uint64, o SwitchOptions) (*Result, error) {
	g, err := t.Generation(n)
	if err != nil {
		return nil, err
	}
	sys, err := t.LoadSystem(g.Path)
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", n, err)
	}
	if err := t.setGenLink(n, sys.Logical); err != nil {
		return nil, err
	}
	res := &Result{Generation: g}
	if o.Mode == ModeTest {
		return res, t.activate(sys, res, o, 0)
	}
	return res, t.finish(sys, res, o)
}

func (t *Target) finish(sys *System, res *Result, o SwitchOptions) error {
	n := res.Generation.Number
	if err := t.PrepareBoot(); err != nil {
		return fmt.Errorf("boot: %w (the root was not changed)", err)
	}
	if o.Mode == ModeBoot {
		if err := t.SetCurrent(n); err != nil {
			return err
		}
	} else if err := t.activate(sys, res, o, n); err != nil {
		return err
	}
	pol := sys.Manifest.Generations
	ret, err := t.PlanRetention(pol.KeepLast, pol.Pinned)
	if err != nil {
		return err
	}
	res.Retention = ret
	if err := t.DeleteGenerations(ret.Drop); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if res.Boot, err = t.WriteBootMenu(); err != nil {
		return fmt.Errorf("boot menu: %w", err)
	}
	if len(ret.Drop) > 0 && pol.AutoCleanup && o.Cleanup != nil {
		if err := t.writable(); err != nil {
			return err
		}
		sum, err := o.Cleanup(t.Store)
		if err != nil {
			return fmt.Errorf("auto_cleanup: %w", err)
		}
		res.Cleaned = sum
	}
	return nil
}

// activate plans and executes sys on the root; setCurrent (when not 0)
// becomes the profile's generation once the pre_switch hooks passed.
func (t *Target) activate(sys *System, res *Result, o SwitchOptions, setCurrent uint64) error {
	opts := o.Options
	opts.Generation = res.Generation.Number
	plan, err := t.Plan(sys, opts)
	if err != nil {
		return err
	}
	res.Plan = plan
	// A generation is rooted by its record; an unrecorded system under
	// test is rooted by LiveRoot while it is active.
	live, ok, err := t.Store.Root(LiveRoot)
	if err != nil {
		return err
	}
	switch {
	case res.Generation.Number == 0 && (!ok || live != sys.Path):
		if err := t.writable(); err != nil {
			return err
		}
		if err := t.Store.AddRoot(LiveRoot, sys.Path); err != nil {
			return err
		}
	case res.Generation.Number != 0 && ok:
		if err := t.writable(); err != nil {
			return err
		}
		if err := t.Store.RemoveRoot(LiveRoot); err != nil {
			return err
		}
	}
	return t.Execute(plan, Exec{Out: o.Out, Notes: o.Notes, SetCurrent: setCurrent, Dinitctl: o.Dinitctl})
}

// Repair finishes an activation a crash interrupted: the root ends up
// exactly as the generation it was activating says. The record says
// "activating" from the moment the root starts changing: that system is
// activated again. Otherwise the crash came before any change (the
// profile may already name the new generation): the profile's current
// generation is activated.
func (t *Target) Repair(o SwitchOptions) (*Result, error) {
	st, err := t.LoadState()
	if err != nil {
		return nil, err
	}
	o.Hooks = false // hooks ran (or failed) in the interrupted activation
	if st.Status != statusActivating || st.System == "" {
		cur, ok, err := t.Current()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("nothing was ever activated on %s: run %s", t.Root.Dir(), hint.Command("switch"))
		}
		return t.SwitchTo(cur, o)
	}
	p, _, err := parseLogical(t, st.System)
	if err != nil {
		return nil, fmt.Errorf("activation state: %w", err)
	}
	sys, err := t.LoadSystem(p)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if st.Generation != 0 {
		if g, ok, err := t.Store.GetGeneration(Profile, st.Generation); err == nil && ok && g.Path == p {
			res.Generation = g
		}
	}
	if err := t.activate(sys, res, o, 0); err != nil {
		return nil, err
	}
	if res.Generation.Number != 0 {
		if cur, _, _ := t.Current(); cur == res.Generation.Number {
			if res.Boot, err = t.WriteBootMenu(); err != nil {
				return nil, fmt.Errorf("boot menu: %w", err)
			}
		}
	}
	return res, nil
}

// cleanInterrupted removes the temporary files interrupted atomic
// writes left beside their destinations.
func (t *Target) cleanInterrupted(st *State) error {
	dirs := []string{"/etc", "/run", t.ProfilesDir(), t.StateDir, "/boot/grub", bootDir}
	for _, d := range st.Dirs {
		dirs = append(dirs, "/etc/"+d)
	}
	for _, l := range [][]string{st.Etc, st.Files} {
		for _, f := range l {
			if !path.IsAbs(f) {
				f = "/etc/" + f
			}
			dirs = append(dirs, path.Dir(f))
		}
	}
	for _, d := range union(dirs) {
		if err := t.Root.RemoveTemps(d); err != nil {
			return err
		}
	}
	return nil
}
