package activate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
)

// Check walks the root and reports every way it differs from what sys
// says: the checker of the tests, and `nexis activate --check`. Links
// are resolved inside the root, as they would be with the root mounted
// as /. An empty result means the root is exactly the generation.
func (t *Target) Check(sys *System) ([]string, error) {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	m := sys.Manifest

	if cur, err := t.Root.Readlink("/etc/static"); err != nil || cur != sys.Logical+"/etc" {
		bad("/etc/static points at %q, want %s/etc", cur, sys.Logical)
	}
	if cur, err := t.Root.Readlink("/run/current-system"); err != nil || cur != sys.Logical {
		bad("/run/current-system points at %q, want %s", cur, sys.Logical)
	}
	st, err := t.LoadState()
	if err != nil {
		return nil, err
	}
	if st.Status != statusActive || st.System != sys.Logical {
		bad("activation record: status %q of %s, want active of %s", st.Status, st.System, sys.Logical)
	}

	// /etc: every entry, and nothing through /etc/static that is not one.
	want := map[string]manifest.EtcEntry{}
	for _, e := range m.Etc {
		want[e.Path] = e
		dst := "/etc/" + e.Path
		src, err := t.storeFile(e.Source)
		if err != nil {
			bad("/etc/%s: %v", e.Path, err)
			continue
		}
		fi, err := t.Root.Lstat(dst)
		if err != nil {
			bad("/etc/%s: %v", e.Path, err)
			continue
		}
		if e.Mode == "" {
			if cur, _ := t.Root.Readlink(dst); cur != "/etc/static/"+e.Path {
				bad("/etc/%s is not a link to /etc/static/%s", e.Path, e.Path)
				continue
			}
		} else {
			mode, _ := strconv.ParseUint(e.Mode, 8, 32)
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != fs.FileMode(mode) || !ownedBy(fi, 0, 0) {
				bad("/etc/%s: want a root-owned copy with mode %s, have %v", e.Path, e.Mode, fi.Mode())
			}
		}
		if same, err := t.sameResolved("/etc/"+e.Path, src); err != nil || !same {
			bad("/etc/%s does not hold the content of %s (%v)", e.Path, e.Source, err)
		}
	}
	fs.WalkDir(t.Root.FS(), "etc", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), durable.TempPrefix) {
			bad("/%s: a temporary file of an interrupted write", p)
		}
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel := strings.TrimPrefix(p, "etc/")
		if target, _ := t.Root.Readlink(p); strings.HasPrefix(target, "/etc/static/") {
			if _, ok := want[rel]; !ok {
				bad("/etc/%s links through /etc/static but the generation has no such entry", rel)
			}
		}
		return nil
	})
	for _, rel := range st.Etc {
		if _, ok := want[rel]; !ok && rel != "localtime" {
			bad("activation record still manages /etc/%s", rel)
		}
	}
	if m.System.Localtime != "" {
		if cur, _ := t.Root.Readlink("/etc/localtime"); cur != m.System.Localtime {
			bad("/etc/localtime points at %q, want %s", cur, m.System.Localtime)
		}
	}

	for _, pkg := range m.Packages {
		for _, d := range pkg.RuntimeDirs {
			if fi, err := t.Root.Stat(d); path.IsAbs(d) && (err != nil || !fi.IsDir()) {
				bad("runtime directory %s of %s is missing", d, pkg.Name)
			}
		}
	}
	probs = append(probs, t.checkAccounts(m)...)
	probs = append(probs, t.checkFiles(m)...)
	probs = append(probs, t.checkSecrets(m)...)

	// Services: each file in place with the generation's content, boot
	// waiting for exactly the enabled ones.
	for _, s := range m.Services {
		src, err := t.storeFile(s.Source)
		if err != nil {
			bad("service %s: %v", s.Name, err)
			continue
		}
		if same, err := t.sameResolved("/etc/"+s.File, src); err != nil || !same {
			bad("service %s: /etc/%s does not hold %s (%v)", s.Name, s.File, s.Source, err)
		}
	}
	if len(m.Services) > 0 {
		b, err := t.Root.ReadFile("/etc/dinit.d/boot")
		if err != nil {
			bad("/etc/dinit.d/boot: %v", err)
		} else {
			var waits []string
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "waits-for = "); ok {
					waits = append(waits, v)
				}
			}
			if !slices.Equal(union(waits), union(m.Boot)) {
				bad("/etc/dinit.d/boot waits for %v, want %v", waits, m.Boot)
			}
		}
	}
	for name, src := range st.Services {
		if !slices.ContainsFunc(m.Services, func(s manifest.Service) bool { return s.Name == name && s.Source == src }) {
			bad("activation record has service %s from %s, not the generation's", name, src)
		}
	}
	return probs, nil
}

// CheckBoot reports how the boot menu differs from the kept generations
// with a kernel, the current one the default.
func (t *Target) CheckBoot() ([]string, error) {
	var probs []string
	gens, err := t.Generations()
	if err != nil {
		return nil, err
	}
	cur, _, err := t.Current()
	if err != nil {
		return nil, err
	}
	var want []uint64
	for i := len(gens) - 1; i >= 0; i-- {
		sys, err := t.LoadSystem(gens[i].Path)
		if err != nil {
			return nil, err
		}
		if sys.Manifest.Kernel != nil {
			want = append(want, gens[i].Number)
		}
	}
	b, err := t.Root.ReadFile(grubCfg)
	if len(want) == 0 {
		if err == nil && t.menuIsOurs() && strings.Contains(string(b), "menuentry") {
			probs = append(probs, "grub.cfg has entries but no kept generation has a kernel")
		}
		return probs, nil
	}
	if err != nil {
		return append(probs, fmt.Sprintf("grub.cfg: %v", err)), nil
	}
	got, def := ParseMenu(string(b))
	if !slices.Equal(got, want) {
		probs = append(probs, fmt.Sprintf("boot menu lists generations %v, want %v", got, want))
	}
	if slices.Contains(want, cur) && def != fmt.Sprintf("nexis-%d", cur) {
		probs = append(probs, fmt.Sprintf("boot menu default is %q, want nexis-%d", def, cur))
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		for _, kw := range []string{"linux ", "initrd "} {
			if v, ok := strings.CutPrefix(l, kw); ok {
				f := strings.Trim(strings.Fields(v)[0], "'")
				if _, err := t.Root.Stat(path.Join("/boot", strings.TrimPrefix(f, "/boot"))); err != nil {
					probs = append(probs, fmt.Sprintf("boot menu names %s: %v", f, err))
				}
			}
		}
	}
	return probs, nil
}

func ownedBy(fi fs.FileInfo, uid, gid int64) bool {
	s, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int64(s.Uid) == uid && int64(s.Gid) == gid
}

func (t *Target) sameResolved(p, storeFile string) (bool, error) {
	a, err := t.Root.ReadFile(p)
	if err != nil {
		return false, err
	}
	b, err := t.Root.ReadFile(storeFile)
	if err != nil {
		return false, err
	}
	return bytes.Equal(a, b), nil
}

func (t *Target) checkAccounts(m *manifest.Manifest) []string {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	pw, err1 := readDB(t.Root, "/etc/passwd", parsePw, func(e *pwEnt) string { return e.Name })
	gr, err2 := readDB(t.Root, "/etc/group", parseGr, func(e *grEnt) string { return e.Name })
	sp, err3 := readDB(t.Root, "/etc/shadow", parseSp, func(e *spEnt) string { return e.Name })
	if err := errors.Join(err1, err2, err3); err != nil {
		return []string{err.Error()}
	}
	if fi, err := t.Root.Stat("/etc/shadow"); err != nil {
		bad("/etc/shadow: %v", err)
	} else {
		s := fi.Sys().(*syscall.Stat_t)
		shadowGID := int64(-1)
		if g, ok := gr.ents["shadow"]; ok {
			shadowGID = g.GID
		}
		if fi.Mode().Perm()&0o037 != 0 || s.Uid != 0 || (s.Gid != 0 && int64(s.Gid) != shadowGID) {
			bad("/etc/shadow is %v %d:%d, want 0640 root:shadow or stricter", fi.Mode().Perm(), s.Uid, s.Gid)
		}
	}
	for _, b := range baseUsers {
		e, ok := pw.ents[b.Name]
		if !ok {
			bad("base user %s is missing from /etc/passwd", b.Name)
		} else if e.UID != b.UID {
			bad("base user %s has uid %d, want %d", b.Name, e.UID, b.UID)
		}
	}
	uids := map[int64]string{}
	for n, e := range pw.ents {
		if o, dup := uids[e.UID]; dup {
			bad("uid %d is both %s and %s", e.UID, o, n)
		}
		uids[e.UID] = n
	}
	for _, u := range m.Users {
		e, ok := pw.ents[u.Name]
		if !ok {
			bad("user %s is missing from /etc/passwd", u.Name)
			continue
		}
		if u.UID != nil && e.UID != *u.UID {
			bad("user %s has uid %d, want %d", u.Name, e.UID, *u.UID)
		}
		g, ok := gr.ents[u.Group]
		if !ok || g.GID != e.GID {
			bad("user %s: primary group %s (gid %d) does not match", u.Name, u.Group, e.GID)
		}
		if e.Home != u.Home || e.Shell != u.Shell || e.Gecos != u.Description {
			bad("user %s: passwd line %s does not match the generation", u.Name, e.line())
		}
		for _, sg := range u.Groups {
			if g, ok := gr.ents[sg]; !ok || !slices.Contains(g.Members, u.Name) {
				bad("user %s is not a member of %s", u.Name, sg)
			}
		}
		s, ok := sp.ents[u.Name]
		wantPass := u.PasswordLock
		if u.PasswordHashFile != "" {
			src, err := t.storeFile(u.PasswordHashFile)
			if err == nil {
				b, _ := t.Root.ReadFile(src)
				wantPass = strings.TrimSpace(string(b))
				if fi, err := t.Root.Stat(src); err != nil || fi.Mode().Perm() != 0o400 || !ownedBy(fi, 0, 0) {
					bad("user %s: the password hash's store file is not root-only (0400)", u.Name)
				}
			}
		}
		if !ok || s.Pass != wantPass || s.Rest[5] != "" {
			bad("user %s: /etc/shadow does not hold the generation's password", u.Name)
		}
		if u.CreateHome {
			fi, err := t.Root.Stat(u.Home)
			if err != nil || !fi.IsDir() || !ownedBy(fi, e.UID, e.GID) {
				bad("user %s: home %s missing or not owned by the user", u.Name, u.Home)
			}
		}
	}
	for _, g := range m.Groups {
		e, ok := gr.ents[g.Name]
		if !ok {
			bad("group %s is missing from /etc/group", g.Name)
			continue
		}
		if g.GID != nil && e.GID != *g.GID {
			bad("group %s has gid %d, want %d", g.Name, e.GID, *g.GID)
		}
		for _, mb := range g.Members {
			if !slices.Contains(e.Members, mb) {
				bad("group %s lacks member %s", g.Name, mb)
			}
		}
	}
	return probs
}

func (t *Target) checkFiles(m *manifest.Manifest) []string {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	acc := map[string]int64{}
	pw, _ := readDB(t.Root, "/etc/passwd", parsePw, func(e *pwEnt) string { return e.Name })
	gr, _ := readDB(t.Root, "/etc/group", parseGr, func(e *grEnt) string { return e.Name })
	for n, e := range pw.ents {
		acc["u:"+n] = e.UID
	}
	for n, e := range gr.ents {
		acc["g:"+n] = e.GID
	}
	for _, f := range m.Files {
		fi, err := t.Root.Lstat(f.Path)
		if err != nil {
			bad("%s (%s): %v", f.Path, f.Origin, err)
			continue
		}
		uid, ok1 := acc["u:"+f.Owner]
		gid, ok2 := acc["g:"+f.Group]
		if !ok1 || !ok2 || !ownedBy(fi, uid, gid) {
			bad("%s is not owned by %s:%s", f.Path, f.Owner, f.Group)
		}
		var mode uint64
		if f.Mode != "" {
			mode, _ = strconv.ParseUint(f.Mode, 8, 32)
		}
		switch f.Type {
		case manifest.TypeDirectory:
			if !fi.IsDir() || fi.Mode().Perm() != fs.FileMode(mode) {
				bad("%s: want a directory with mode %s", f.Path, f.Mode)
			}
		case manifest.TypeSymlink:
			if cur, _ := t.Root.Readlink(f.Path); cur != f.Target {
				bad("%s: want a link to %s", f.Path, f.Target)
			}
		default:
			src, err := t.storeFile(f.Source)
			if err != nil {
				bad("%s: %v", f.Path, err)
				continue
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != fs.FileMode(mode) {
				bad("%s: want a file with mode %s, have %v", f.Path, f.Mode, fi.Mode())
			}
			if same, _ := t.sameContent(t.Root, f.Path, src); !same {
				bad("%s does not hold the content of %s", f.Path, f.Source)
			}
			if f.Secret {
				// The secrets walk, extended to the activated root: only
				// root or the owner may read it, in place and in the store.
				if fi.Mode().Perm()&0o007 != 0 {
					bad("secret %s is readable by others (%v)", f.Path, fi.Mode().Perm())
				}
				if si, err := t.Root.Stat(src); err != nil || si.Mode().Perm() != 0o400 || !ownedBy(si, 0, 0) {
					bad("secret %s: its store source %s is not root-only (0400)", f.Path, f.Source)
				}
			}
		}
	}
	return probs
}

// checkSecrets is the secrets walk of the system, extended to the
// activated root: no file others may read — in /etc, in homes, in the
// state directory, in the store — holds a password hash or the content
// of a secret file. (Public keys in authorized_keys are not secrets.)
func (t *Target) checkSecrets(m *manifest.Manifest) []string {
	var secrets []string
	add := func(logical string) {
		src, err := t.storeFile(logical)
		if err != nil {
			return
		}
		b, err := t.Root.ReadFile(src)
		if s := strings.TrimSpace(string(b)); err == nil && len(s) > 8 {
			secrets = append(secrets, s)
		}
	}
	for _, u := range m.Users {
		if u.PasswordHashFile != "" {
			add(u.PasswordHashFile)
		}
	}
	for _, f := range m.Files {
		if f.Secret && path.Base(f.Path) != "authorized_keys" {
			add(f.Source)
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	var probs []string
	// Where activation and the store put files; never /proc, /sys or
	// /dev of a live root (a read there can block).
	dirs := union([]string{"etc", "home", "root", "boot", strings.Trim(t.StateDir, "/"), strings.Trim(t.Store.LogicalDir(), "/")})
	fsys := t.Root.FS()
	walk := func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Mode().Perm()&0o004 == 0 || fi.Size() > 1<<20 {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				probs = append(probs, fmt.Sprintf("/%s is readable by others and holds a secret (%.8s...)", p, s))
			}
		}
		return nil
	}
	for _, d := range dirs {
		fs.WalkDir(fsys, d, walk)
	}
	return probs
}
