package activate

import (
	"fmt"
	"io"
)

// Exec tunes Execute.
type Exec struct {
	// Out receives hook output and service commands' output.
	Out io.Writer
	// Notes receives what activation says of steps it passes over (a
	// hook a root cannot run, SELinux modules a kernel without SELinux
	// does not take): Out when nil; nexis -q discards them.
	Notes io.Writer
	// SetCurrent, when non-zero, makes that generation the profile's
	// current one after the pre_switch hooks succeeded and before the
	// root changes.
	SetCurrent uint64
	// Dinitctl is the program that controls services ("dinitctl" on
	// PATH when empty).
	Dinitctl string
}

// Execute does what p says, in an order where a crash between any two
// steps leaves a state that running the same plan again (repair) finishes:
// the record of managed entries grows before anything is created and
// shrinks only after everything the generation dropped is gone.
func (t *Target) Execute(p *Plan, x Exec) error {
	if x.Out == nil {
		x.Out = io.Discard
	}
	if x.Notes == nil {
		x.Notes = x.Out
	}
	// A crash in an earlier activation may have left the temporary files
	// of its atomic writes; whichever command runs next (a repair, the
	// same switch again) removes them. We hold the activation lock, so
	// no other writer's are among them.
	if err := t.cleanInterrupted(p.Prev); err != nil {
		return err
	}
	m := p.System.Manifest
	if p.Options.Hooks {
		if err := t.runHooks("pre_switch", m.Hooks.PreSwitch, x); err != nil {
			return fmt.Errorf("pre_switch hook failed, nothing was changed: %w", err)
		}
	}
	if x.SetCurrent != 0 {
		if err := t.SetCurrent(x.SetCurrent); err != nil {
			return err
		}
	}
	if err := t.privateSecrets(m); err != nil {
		return err
	}
	if p.Empty() {
		t.executeMounts(p, x.Out)
		return t.postHooks(p, x)
	}
	// 1. The record grows: whatever this activation creates is known as
	// nexis's before it exists.
	ns := p.newState
	inter := &State{
		Version: 1, Status: statusActivating, Generation: ns.Generation, System: ns.System,
		Etc: union(p.Prev.Etc, ns.Etc), Files: union(p.Prev.Files, ns.Files),
		Users: union(p.Prev.Users, ns.Users), Groups: union(p.Prev.Groups, ns.Groups),
		Locked: p.Prev.Locked, Services: p.Prev.Services, Dirs: p.Prev.Dirs,
	}
	if err := t.saveState(inter); err != nil {
		return err
	}
	// 2. Services that go or change stop while their old files are there.
	if err := t.dinit(p.ServicesBefore, x); err != nil {
		return err
	}
	// 3. Accounts, before anything is chowned to them.
	if err := t.writeAccounts(p); err != nil {
		return err
	}
	// 4. /etc/static and the /etc entries the generation adds or changes.
	dirs, err := t.executeEtc(p)
	if err != nil {
		return err
	}
	// Directories made for links are recorded, so they go when empty.
	if len(dirs) > 0 {
		inter.Dirs = union(inter.Dirs, dirs)
		if err := t.saveState(inter); err != nil {
			return err
		}
	}
	// The declared file systems not mounted yet, before homes and
	// files are made on them and services start.
	t.executeMounts(p, x.Out)
	// 5. Homes and runtime directories, then files.
	if err := t.makeHomes(p); err != nil {
		return err
	}
	if err := t.executeFiles(p); err != nil {
		return err
	}
	// The policy modules, once the files they label are in place.
	if err := t.executeSELinux(p, x.Notes); err != nil {
		return err
	}
	// 6. What the generation dropped.
	if err := t.removeEtc(p); err != nil {
		return err
	}
	if err := t.removeFiles(p); err != nil {
		return err
	}
	ns.Dirs = t.removeEtcDirs(inter.Dirs)
	if err := t.currentSystem(p); err != nil {
		return err
	}
	// 7. Services start from their new files.
	if err := t.dinit(p.ServicesAfter, x); err != nil {
		return err
	}
	// 8. The record shrinks to the generation.
	if err := t.saveState(ns); err != nil {
		return err
	}
	return t.postHooks(p, x)
}

func (t *Target) currentSystem(p *Plan) error {
	if !p.CurrentSystem {
		return nil
	}
	if err := t.Root.MkdirAll("/run", 0o755); err != nil {
		return err
	}
	return t.Root.Symlink(p.System.Logical, "/run/current-system", nil)
}
