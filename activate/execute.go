package activate

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

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
	t.cleanInterrupted(p.Prev)
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
	if err := os.MkdirAll(t.path("/etc"), 0o755); err != nil {
		return err
	}
	if p.Static {
		if err := Symlink(p.System.Logical+"/etc", t.path("/etc/static")); err != nil {
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
		if err := Symlink(p.etcWant[rel].link, t.path("/etc/"+rel)); err != nil {
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
		if err := CopyFile(w.src, t.path("/etc/"+rel), w.mode, &Owner{0, 0}); err != nil {
			return err
		}
	}
	if p.Localtime != "" {
		if err := Symlink(p.Localtime, t.path("/etc/localtime")); err != nil {
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
		if err := mkdirOwned(t.path(home), 0o700, own); err != nil {
			return err
		}
	}
	for _, d := range p.RuntimeDirs {
		if err := os.MkdirAll(t.path(d), 0o755); err != nil {
			return fmt.Errorf("runtime directory %s: %w", d, err)
		}
	}
	for _, f := range p.Files {
		if err := t.placeFile(m, p.Accounts, f.File); err != nil {
			return err
		}
	}
	// 7. What the generation dropped.
	for _, rel := range p.EtcRemove {
		if err := removeEntry(t.path("/etc/" + rel)); err != nil {
			return err
		}
	}
	for _, f := range p.FilesRemove {
		if err := removeEntry(t.path(f)); err != nil {
			return err
		}
	}
	var keptDirs []string
	for _, d := range sortDeepFirst(inter.Dirs) {
		if err := os.Remove(t.path("/etc/" + d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
	if err := os.MkdirAll(t.path("/run"), 0o755); err != nil {
		return err
	}
	return Symlink(p.System.Logical, t.path("/run/current-system"))
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

// mkParents creates the missing parent directories of base/rel (root,
// 0755, or own when given) and returns them relative to base.
func (t *Target) mkParents(base, rel string, own *Owner) ([]string, error) {
	var missing []string
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, err := os.Lstat(t.path(base + "/" + dir)); err == nil {
			break
		}
		missing = append(missing, dir)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := mkdirOwned(t.path(base+"/"+missing[i]), 0o755, own); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

func mkdirOwned(p string, mode fs.FileMode, own *Owner) error {
	if err := os.Mkdir(p, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if own != nil {
		if err := os.Lchown(p, own.UID, own.GID); err != nil {
			return err
		}
	}
	return os.Chmod(p, mode)
}

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
	// Parents inside the owner's home belong to the owner; others to root.
	rel := strings.TrimPrefix(f.Path, "/")
	var parentOwner *Owner
	if i := indexUser(m, f.Owner); i >= 0 && strings.HasPrefix(f.Path, strings.TrimSuffix(m.Users[i].Home, "/")+"/") {
		// Inside a home the user controls the directories: a parent that
		// is a link could aim this root-run write anywhere (~/.config ->
		// /etc). Only real directories are followed.
		home := m.Users[i].Home
		var below []string
		for d := path.Dir(f.Path); len(d) > len(home); d = path.Dir(d) {
			below = append(below, d)
		}
		for j := len(below) - 1; j >= 0; j-- {
			fi, err := os.Lstat(t.path(below[j]))
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil || !fi.IsDir() {
				return fmt.Errorf("%s (%s): %s is not a directory (a link in a home is not followed)", f.Path, f.Origin, below[j])
			}
		}
		if _, err := os.Lstat(t.path(m.Users[i].Home)); err == nil {
			home := strings.TrimPrefix(m.Users[i].Home, "/")
			if _, err := t.mkParents("", home+"/x", nil); err != nil {
				return err
			}
			if _, err := t.mkParents("/"+home, strings.TrimPrefix(f.Path, m.Users[i].Home+"/"), own); err != nil {
				return err
			}
			parentOwner = own
		}
	}
	if parentOwner == nil {
		if _, err := t.mkParents("", rel, nil); err != nil {
			return err
		}
	}
	dst := t.path(f.Path)
	switch f.Type {
	case manifest.TypeDirectory:
		if fi, err := os.Lstat(dst); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			os.Remove(dst)
		}
		return mkdirOwned(dst, mode, own)
	case manifest.TypeSymlink:
		return SymlinkOwned(f.Target, dst, own)
	default:
		src, err := t.storeFile(f.Source)
		if err != nil {
			return err
		}
		if err := CopyFile(src, dst, mode, own); err != nil {
			return fmt.Errorf("%s (%s): %w", f.Path, f.Origin, err)
		}
		return nil
	}
}

// writeAccounts replaces the account files that change, the id map
// first so an id handed out is never handed out again.
func (t *Target) writeAccounts(p *Plan) error {
	a := p.Accounts
	b, err := json.MarshalIndent(a.IDs, "", "  ")
	if err != nil {
		return err
	}
	if !t.fileIsPhys(t.idMapPath(), string(b)+"\n") {
		if err := WriteFile(t.idMapPath(), append(b, '\n'), 0o644, nil); err != nil {
			return err
		}
	}
	if len(p.AccountFiles) == 0 {
		return nil
	}
	if err := os.MkdirAll(t.path("/etc"), 0o755); err != nil {
		return err
	}
	for _, f := range p.AccountFiles {
		var err error
		switch f {
		case "group":
			err = WriteFile(t.path("/etc/group"), []byte(a.Group), 0o644, &Owner{0, 0})
		case "passwd":
			err = WriteFile(t.path("/etc/passwd"), []byte(a.Passwd), 0o644, &Owner{0, 0})
		case "shadow":
			err = WriteFile(t.path("/etc/shadow"), []byte(a.Shadow), shadowMode, &Owner{0, int(a.ShadowGID)})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *Target) fileIsPhys(p, text string) bool {
	b, err := os.ReadFile(p)
	return err == nil && string(b) == text
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
// machine's; a root without /bin/sh cannot run hooks, which is said.
func (t *Target) runHooks(phase string, hooks []manifest.Hook, out io.Writer) error {
	for _, h := range hooks {
		label := h.Name
		if h.File != "" {
			label += " (" + h.File + ")"
		}
		var cmd *exec.Cmd
		if filepath.Clean(t.Root) == "/" {
			src, err := t.storeFile(h.Source)
			if err != nil {
				return err
			}
			cmd = exec.Command("/bin/sh", "-e", src)
		} else {
			if _, err := os.Stat(t.path("/bin/sh")); err != nil {
				fmt.Fprintf(out, "%s: %s skipped: the root %s has no /bin/sh to run it in\n", phase, label, t.Root)
				continue
			}
			cmd = exec.Command("/bin/sh", "-e", h.Source)
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: t.Root}
			cmd.Dir = "/"
		}
		cmd.Env = []string{"PATH=/run/current-system/sw/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "NEXIS_HOOK=" + phase}
		fmt.Fprintf(out, "%s: running %s\n", phase, label)
		if err := runShown(cmd, h.Name, out); err != nil {
			return fmt.Errorf("%s (%s): %w", label, h.Origin, err)
		}
	}
	return nil
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
