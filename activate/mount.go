package activate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/nexisos/nexis/manifest"
)

// [[filesystems]]: the generated /etc/fstab is what boot mounts. An
// activation of the running system (Options.Mount) also mounts, once
// /etc is in place and before homes are made and services start, each
// declared file system that is not mounted yet, where that hides
// nothing: its mount point is absent (then made) or an empty directory.
// Nothing is ever unmounted or remounted: a changed or dropped entry
// takes effect at the next boot.

// planMounts lists the declared file systems that are not mounted.
func (t *Target) planMounts(p *Plan) error {
	fss := p.System.Manifest.Filesystems
	if !p.Options.Mount || len(fss) == 0 {
		return nil
	}
	mounted, err := mountPoints()
	if err != nil {
		return err
	}
	for _, f := range fss {
		host, err := t.Root.Resolve(f.Mountpoint)
		if err != nil {
			return fmt.Errorf("filesystem %s: %w", f.Mountpoint, err)
		}
		if !mounted[host] {
			p.Mounts = append(p.Mounts, f)
		}
	}
	return nil
}

// executeMounts mounts what the plan lists where it is safe, a line
// each saying what was mounted or why not. A file system that does not
// mount is reported, not fatal: the generation is in place, and boot's
// mount -a tries again.
func (t *Target) executeMounts(p *Plan, out io.Writer) {
	fss := p.System.Manifest.Filesystems
	if !p.Options.Mount {
		if len(fss) > 0 {
			fmt.Fprintf(out, "nexis: [[filesystems]] are not mounted on %s, which is not the running system: its /etc/fstab mounts them when it boots\n", t.Root.Dir())
		}
		return
	}
	for _, f := range p.Mounts {
		if why := t.mount(f); why != "" {
			fmt.Fprintf(out, "nexis: %s not mounted on %s: %s\n", f.Spec, f.Mountpoint, why)
		} else {
			fmt.Fprintf(out, "nexis: mounted %s on %s (%s)\n", f.Spec, f.Mountpoint, f.Type)
		}
	}
}

// mount mounts f unless that would hide something; it returns why not.
func (t *Target) mount(f manifest.Filesystem) string {
	fi, err := t.Root.Stat(f.Mountpoint)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := t.Root.MkdirAll(f.Mountpoint, 0o755); err != nil {
			return fmt.Sprintf("making the mount point: %v", err)
		}
	case err != nil:
		return err.Error()
	case !fi.IsDir():
		return "it is not a directory"
	default:
		ents, err := t.Root.ReadDir(f.Mountpoint)
		if err != nil {
			return err.Error()
		}
		if len(ents) > 0 {
			return fmt.Sprintf("it is not empty (%d entries the mount would hide): empty it and run the activation again, or reboot to mount it from /etc/fstab", len(ents))
		}
	}
	host, err := t.Root.Resolve(f.Mountpoint)
	if err != nil {
		return err.Error()
	}
	// Its mount point resolved before the directory existed may differ:
	// an interrupted activation may have mounted it since.
	if mounted, err := mountPoints(); err == nil && mounted[host] {
		return "it already is"
	}
	opts := strings.Join(f.Options, ",")
	if opts == "" {
		opts = "defaults"
	}
	out, err := exec.Command("mount", "-t", f.Type, "-o", opts, "--", f.Spec, host).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("mount: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return ""
}

// mountPoints is the set of this mount namespace's mount points.
func mountPoints() (map[string]bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mounts (is /proc mounted?): %w", err)
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID parent major:minor root MOUNTPOINT options ...
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			set[unescapeMount(fields[4])] = true
		}
	}
	return set, sc.Err()
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space)
// of a path in mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
