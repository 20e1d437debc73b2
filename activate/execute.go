package activate

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
)

// Exec tunes Execute.
type Exec struct {
	// Out receives hook output and service commands' output.
	Out io.Writer
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
	// A crash in an earlier activation may have left the temporary files
	// of its atomic writes; whichever command runs next (a repair, the
	// same switch again) removes them. We hold the activation lock, so
	// no other writer's are among them.
	if err := t.cleanInterrupted(p.Prev); err != nil {
		return err
	}
	m := p.System.Manifest
	if p.Options.Hooks {
		if err := t.runHooks("pre_switch", m.Hooks.PreSwitch, x.Out); err != nil {
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
	if err := t.dinit(p.StopFirst, x); err != nil {
		return err
	}
	// 3. Accounts, before anything is chowned to them.
	if err := t.writeAccounts(p); err != nil {
		return err
	}
	// 4. /etc/static: the one rename that moves every linked file.
	if err := t.Root.MkdirAll("/etc", 0o755); err != nil {
		return err
	}
	if p.Static {
		if err := t.Root.Symlink(p.System.Logical+"/etc", "/etc/static", nil); err != nil {
			return err
		}
	}
	// 5. /etc entries the generation adds or changes.
	var dirs []string
	for _, rel := range p.EtcLinks {
		made, err := t.mkParents("/etc", rel, nil)
		if err != nil {
			return err
		}
		dirs = append(dirs, made...)
		if err := t.Root.Symlink(p.etcWant[rel].link, "/etc/"+rel, nil); err != nil {
			return err
		}
	}
	for _, rel := range p.EtcCopies {
		made, err := t.mkParents("/etc", rel, nil)
		if err != nil {
			return err
		}
		dirs = append(dirs, made...)
		w := p.etcWant[rel]
		if err := t.copyFile(w.src, t.Root, "/etc/"+rel, w.mode, &durable.Owner{}); err != nil {
			return err
		}
	}
	if p.Localtime != "" {
		if err := t.Root.Symlink(p.Localtime, "/etc/localtime", nil); err != nil {
			return err
		}
	}
	// Directories made for links are recorded, so they go when empty.
	if len(dirs) > 0 {
		inter.Dirs = union(inter.Dirs, dirs)
		if err := t.saveState(inter); err != nil {
			return err
		}
	}
	// 6. Homes and runtime directories, then files.
	for _, u := range p.Homes {
		own, err := p.Accounts.owner(u, groupOf(m, u))
		if err != nil {
			return err
		}
		home := m.Users[indexUser(m, u)].Home
		if _, err := t.mkParents("", strings.TrimPrefix(home, "/"), nil); err != nil {
			return err
		}
		if err := t.Root.Mkdir(home, 0o700, own); err != nil {
			return err
		}
	}
	for _, d := range p.RuntimeDirs {
		if err := t.Root.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("runtime directory %s: %w", d, err)
		}
	}
	for _, f := range p.Files {
		err := t.placeFile(m, p.Accounts, f.File)
		if durable.IsLink(err) && homeOf(m, f.File) != "" {
			// A link the user made in a home since the plan: that
			// user's file waits, everyone else's activation goes on.
			p.Conflicts = append(p.Conflicts, Conflict{Path: f.Path, Origin: f.Origin, Reason: t.homeLinkReason(m, f.File)})
			continue
		}
		if err != nil {
			return err
		}
	}
	// 7. What the generation dropped.
	for _, rel := range p.EtcRemove {
		if err := t.remove("/etc/" + rel); err != nil {
			return err
		}
	}
	for _, f := range p.FilesRemove {
		if err := t.remove(f); err != nil {
			return err
		}
	}
	var keptDirs []string
	for _, d := range sortDeepFirst(inter.Dirs) {
		if err := t.Root.Remove("/etc/" + d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			keptDirs = append(keptDirs, d) // not empty: still needed
		}
	}
	ns.Dirs = union(keptDirs)
	if err := t.currentSystem(p); err != nil {
		return err
	}
	// 8. Services start from their new files.
	if err := t.dinit(p.StartAfter, x); err != nil {
		return err
	}
	// 9. The record shrinks to the generation.
	if err := t.saveState(ns); err != nil {
		return err
	}
	return t.postHooks(p, x)
}

func (t *Target) postHooks(p *Plan, x Exec) error {
	if !p.Options.Hooks {
		return nil
	}
	if err := t.runHooks("post_switch", p.System.Manifest.Hooks.PostSwitch, x.Out); err != nil {
		return fmt.Errorf("post_switch hook failed (the generation is active): %w", err)
	}
	return nil
}

func (t *Target) currentSystem(p *Plan) error {
	if !p.CurrentSys {
		return nil
	}
	if err := t.Root.MkdirAll("/run", 0o755); err != nil {
		return err
	}
	return t.Root.Symlink(p.System.Logical, "/run/current-system", nil)
}

// remove removes the entry p of the target; a missing one is success.
func (t *Target) remove(p string) error {
	if err := t.Root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// copyFile atomically replaces dst of in with a copy of the store file
// src, with mode and owner.
func (t *Target) copyFile(src string, in *durable.Root, dst string, mode fs.FileMode, owner *durable.Owner) error {
	f, err := t.Root.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return in.Write(dst, mode, owner, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

func groupOf(m *manifest.Manifest, user string) string {
	return m.Users[indexUser(m, user)].Group
}

func indexUser(m *manifest.Manifest, user string) int {
	for i, u := range m.Users {
		if u.Name == user {
			return i
		}
	}
	return -1
}

// sortDeepFirst orders directories so children come before parents.
func sortDeepFirst(ds []string) []string {
	out := append([]string(nil), ds...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if strings.Count(out[j], "/") > strings.Count(out[i], "/") {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// mkParents creates the missing parent directories of base/rel in in
// (root, 0755, or own when given) and returns them relative to base.
func mkParents(in *durable.Root, base, rel string, own *durable.Owner) ([]string, error) {
	var missing []string
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, err := in.Lstat(base + "/" + dir); err == nil {
			break
		}
		missing = append(missing, dir)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := in.Mkdir(base+"/"+missing[i], 0o755, own); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

func (t *Target) mkParents(base, rel string, own *durable.Owner) ([]string, error) {
	return mkParents(t.Root, base, rel, own)
}

// placeFile places f. Inside its owner's home it is placed through a
// root on the home that follows no link (fileRoot), with the parents it
// makes there owned by the user; an error that IsLink reports a link
// the user made on the way.
func (t *Target) placeFile(m *manifest.Manifest, acc *Accounts, f manifest.File) error {
	own, err := acc.owner(f.Owner, f.Group)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", f.Path, f.Origin, err)
	}
	var mode fs.FileMode
	if f.Mode != "" {
		v, _ := strconv.ParseUint(f.Mode, 8, 32)
		mode = fs.FileMode(v)
	}
	in, dst, done, err := t.fileRoot(m, f)
	if err != nil {
		return err
	}
	defer done()
	var parentOwner *durable.Owner
	if in != t.Root {
		parentOwner = own
	}
	if _, err := mkParents(in, "", dst, parentOwner); err != nil {
		return fmt.Errorf("%s (%s): %w", f.Path, f.Origin, err)
	}
	switch f.Type {
	case manifest.TypeDirectory:
		if fi, err := in.Lstat(dst); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if err := in.Remove(dst); err != nil {
				return err
			}
		}
		err = in.Mkdir(dst, mode, own)
	case manifest.TypeSymlink:
		err = in.Symlink(f.Target, dst, own)
	default:
		var src string
		if src, err = t.storeFile(f.Source); err == nil {
			err = t.copyFile(src, in, dst, mode, own)
		}
	}
	if err != nil {
		return fmt.Errorf("%s (%s): %w", f.Path, f.Origin, err)
	}
	return nil
}

// writeAccounts replaces the account files that change, the id map
// first so an id handed out is never handed out again.
func (t *Target) writeAccounts(p *Plan) error {
	a := p.Accounts
	b, err := json.MarshalIndent(a.IDs, "", "  ")
	if err != nil {
		return err
	}
	if !t.fileIs(t.idMapPath(), string(b)+"\n") {
		if err := t.Root.MkdirAll(t.StateDir, 0o755); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if err := t.Root.WriteFile(t.idMapPath(), append(b, '\n'), 0o644, nil); err != nil {
			return err
		}
	}
	if len(p.AccountFiles) == 0 {
		return nil
	}
	if err := t.Root.MkdirAll("/etc", 0o755); err != nil {
		return err
	}
	for _, f := range p.AccountFiles {
		var err error
		switch f {
		case "group":
			err = t.Root.WriteFile("/etc/group", []byte(a.Group), 0o644, &durable.Owner{})
		case "passwd":
			err = t.Root.WriteFile("/etc/passwd", []byte(a.Passwd), 0o644, &durable.Owner{})
		case "shadow":
			err = t.Root.WriteFile("/etc/shadow", []byte(a.Shadow), shadowMode, &durable.Owner{GID: int(a.ShadowGID)})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dinit runs each service operation through dinitctl, in order. A
// failure to start or stop one service is reported, not fatal: the
// generation's files are in place and `dinitctl` tells more.
func (t *Target) dinit(ops []ServiceOp, x Exec) error {
	if len(ops) == 0 {
		return nil
	}
	prog := x.Dinitctl
	if prog == "" {
		prog = "dinitctl"
	}
	bin, err := exec.LookPath(prog)
	if err != nil {
		return fmt.Errorf("controlling services: %w (install dinit, or activate without --live)", err)
	}
	for _, op := range ops {
		cmd := exec.Command(bin, op.Verb, op.Name)
		out, err := cmd.CombinedOutput()
		if len(out) > 0 {
			fmt.Fprintf(x.Out, "dinitctl %s %s: %s", op.Verb, op.Name, out)
		}
		if err != nil {
			fmt.Fprintf(x.Out, "nexis: warning: dinitctl %s %s: %v\n", op.Verb, op.Name, err)
		}
	}
	return nil
}

// runHooks runs each hook with /bin/sh -e, in order, its output shown
// line by line under the hook's name. On a root other than / the hook
// runs chrooted into it, so it sees the root's files and nothing of this
// machine's; a root without a /bin/sh that can start there cannot run
// hooks, which is said, naming what is missing.
func (t *Target) runHooks(phase string, hooks []manifest.Hook, out io.Writer) error {
	if len(hooks) == 0 {
		return nil
	}
	chroot := path.Clean(t.Root.Dir()) != "/"
	if chroot {
		if why := t.missingShell(); why != "" {
			for _, h := range hooks {
				fmt.Fprintf(out, "%s: %s skipped: %s\n", phase, hookLabel(h), why)
			}
			return nil
		}
	}
	for _, h := range hooks {
		label := hookLabel(h)
		src, err := t.storeFile(h.Source)
		if err != nil {
			return err
		}
		cmd := exec.Command("/bin/sh", "-e", src)
		if chroot {
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: t.Root.Dir()}
			cmd.Dir = "/"
		}
		cmd.Env = []string{"PATH=/run/current-system/sw/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "NEXIS_HOOK=" + phase}
		fmt.Fprintf(out, "%s: running %s\n", phase, label)
		if err := runShown(cmd, h.Name, out); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOEXEC) {
				err = fmt.Errorf("starting /bin/sh in %s: %w", t.Root.Dir(), err)
			}
			return fmt.Errorf("%s (%s): %w", label, h.Origin, err)
		}
	}
	return nil
}

func hookLabel(h manifest.Hook) string {
	if h.File != "" {
		return h.Name + " (" + h.File + ")"
	}
	return h.Name
}

// missingShell says why /bin/sh of the root cannot start chrooted there
// ("" when it can): missing, a link to nothing inside the root (an
// absolute link means the root's path, not this machine's), or an ELF
// program whose interpreter (the dynamic loader) is missing there.
func (t *Target) missingShell() string {
	const sh = "/bin/sh"
	f, err := t.Root.Open(sh)
	if err != nil {
		if target, lerr := t.Root.Readlink(sh); lerr == nil {
			return fmt.Sprintf("%s in the root %s is a link to %s, which does not exist inside the root", sh, t.Root.Dir(), target)
		}
		return fmt.Sprintf("the root %s has no %s to run it in (%v)", t.Root.Dir(), sh, errors.Unwrap(err))
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return "" // a script or another format: the kernel will say
	}
	for _, prog := range ef.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			return ""
		}
		interp := strings.TrimRight(string(b), "\x00")
		if _, err := t.Root.Stat(interp); err != nil {
			return fmt.Sprintf("%s in the root %s needs the dynamic loader %s, which does not exist inside the root", sh, t.Root.Dir(), interp)
		}
	}
	return ""
}

func runShown(cmd *exec.Cmd, name string, out io.Writer) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return err
	}
	w.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			fmt.Fprintf(out, "  %s> %s\n", name, sc.Text())
		}
		r.Close()
	}()
	wg.Wait()
	return cmd.Wait()
}

// privateSecrets makes the store sources of the generation's secrets
// readable by root only before anything is copied from them.
func (t *Target) privateSecrets(m *manifest.Manifest) error {
	var srcs []string
	for _, u := range m.Users {
		if u.PasswordHashFile != "" {
			srcs = append(srcs, u.PasswordHashFile)
		}
	}
	for _, f := range m.Files {
		if f.Secret {
			srcs = append(srcs, f.Source)
		}
	}
	for _, s := range srcs {
		p, rest, err := parseLogical(t, s)
		if err != nil {
			return err
		}
		if rest != "" {
			continue
		}
		if err := t.Store.MakePrivate(p); err != nil {
			return fmt.Errorf("secret %s: %w", s, err)
		}
	}
	return nil
}
