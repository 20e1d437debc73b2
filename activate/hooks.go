package activate

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/nexisos/nexis/manifest"
)

func (t *Target) postHooks(p *Plan, x Exec) error {
	if !p.Options.Hooks {
		return nil
	}
	if err := t.runHooks("post_switch", p.System.Manifest.Hooks.PostSwitch, x); err != nil {
		return fmt.Errorf("post_switch hook failed (the generation is active): %w", err)
	}
	return nil
}

// runHooks runs each hook with /bin/sh -e, in order, its output shown
// line by line under the hook's name. On a root other than / the hook
// runs chrooted into it, so it sees the root's files and nothing of this
// machine's; a root without a /bin/sh that can start there cannot run
// hooks, which is said, naming what is missing.
func (t *Target) runHooks(phase string, hooks []manifest.Hook, x Exec) error {
	out := x.Out
	if len(hooks) == 0 {
		return nil
	}
	chroot := path.Clean(t.Root.Dir()) != "/"
	if chroot {
		if why := t.missingShell(); why != "" {
			for _, h := range hooks {
				fmt.Fprintf(x.Notes, "%s: %s skipped: %s\n", phase, hookLabel(h), why)
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
