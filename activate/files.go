package activate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
)

// Files the manifest places anywhere on the root (homes included, through
// a root that follows no link), and the packages' runtime directories:
// planned, executed and checked here.

// FileOp is one manifest file to place.
type FileOp struct {
	manifest.File
	Why string `json:"why"` // "new", "changed", "owner or mode"
}

// planRuntimeDirs lists the packages' absolute runtime directories that
// are missing.
func (t *Target) planRuntimeDirs(p *Plan) {
	for _, pkg := range p.System.Manifest.Packages {
		for _, d := range pkg.RuntimeDirs {
			if !path.IsAbs(d) {
				continue // $XDG_RUNTIME_DIR and $HOME ones are made in the session
			}
			if _, err := t.Root.Lstat(d); errors.Is(err, fs.ErrNotExist) && !contains(p.RuntimeDirs, d) {
				p.RuntimeDirs = append(p.RuntimeDirs, d)
			}
		}
	}
}

// planFiles plans the manifest's files: which to place and why, which
// the generation dropped, which conflict. It returns the files nexis
// manages once the plan is done.
func (t *Target) planFiles(p *Plan, st *State, acc *Accounts, opts Options) ([]string, error) {
	m := p.System.Manifest
	managedFiles := setOf(st.Files)
	var newFiles []string
	for _, f := range m.Files {
		why, conflict, err := t.fileState(m, f, acc, managedFiles[f.Path], opts.Force)
		if err != nil {
			return nil, err
		}
		if conflict != "" {
			p.Conflicts = append(p.Conflicts, Conflict{Path: f.Path, Origin: f.Origin, Reason: conflict})
			if managedFiles[f.Path] {
				newFiles = append(newFiles, f.Path) // still nexis's, placed once the way is clear
			}
			continue
		}
		if f.Type != manifest.TypeDirectory {
			newFiles = append(newFiles, f.Path)
		}
		if why != "" {
			p.Files = append(p.Files, FileOp{File: f, Why: why})
		}
	}
	wantFiles := map[string]bool{}
	for _, f := range m.Files {
		wantFiles[f.Path] = true
	}
	for _, f := range st.Files {
		if wantFiles[f] || underAny(f, acc.LockedHomes) {
			continue
		}
		if fi, err := t.Root.Lstat(f); err == nil && !fi.IsDir() {
			p.FilesRemove = append(p.FilesRemove, f)
		}
	}
	return newFiles, nil
}

// fileState decides what placing f needs: why ("" when it is in place)
// or a conflict that stops it.
func (t *Target) fileState(m *manifest.Manifest, f manifest.File, acc *Accounts, managed, force bool) (why, conflict string, err error) {
	own, err := acc.owner(f.Owner, f.Group)
	if err != nil {
		return "", "", fmt.Errorf("%s (%s): %w", f.Path, f.Origin, err)
	}
	in, dst, done, err := t.fileRoot(m, f)
	if err != nil {
		return "", "", err
	}
	defer done()
	fi, err := in.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return "new", "", nil
	}
	if durable.IsLink(err) && in != t.Root {
		return "", t.homeLinkReason(m, f), nil
	}
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", f.Path, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	ownerOK := st != nil && int(st.Uid) == own.UID && int(st.Gid) == own.GID
	var mode fs.FileMode
	if f.Mode != "" {
		m, _ := strconv.ParseUint(f.Mode, 8, 32)
		mode = fs.FileMode(m)
	}
	takeover := managed || force || f.Force
	switch f.Type {
	case manifest.TypeDirectory:
		if !fi.IsDir() {
			if takeover && fi.Mode()&fs.ModeSymlink != 0 {
				return "changed", "", nil
			}
			return "", "exists and is not a directory", nil
		}
		// A directory is adjusted, never replaced: what is in it stays.
		if !ownerOK || fi.Mode().Perm() != mode.Perm() {
			return "owner or mode", "", nil
		}
		return "", "", nil
	case manifest.TypeSymlink:
		if fi.Mode()&fs.ModeSymlink != 0 {
			if cur, _ := in.Readlink(dst); cur == f.Target {
				if !ownerOK {
					return "owner or mode", "", nil
				}
				return "", "", nil
			}
		}
	default:
		if fi.Mode().IsRegular() {
			src, err := t.storeFile(f.Source)
			if err != nil {
				return "", "", fmt.Errorf("%s (%s): %w", f.Path, f.Origin, err)
			}
			same, err := t.sameContent(in, dst, src)
			if err != nil {
				return "", "", err
			}
			if same {
				if !ownerOK || fi.Mode().Perm() != mode.Perm() {
					return "owner or mode", "", nil
				}
				return "", "", nil
			}
		}
	}
	if fi.IsDir() {
		return "", "is a directory", nil
	}
	if !takeover {
		return "", "exists and nexis did not create it (force = true in the config, or --force, replaces it)", nil
	}
	return "changed", "", nil
}

// underAny reports whether p is inside one of dirs.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if d != "/" && strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// executeFiles makes the runtime directories, then places the files; a
// file whose way a user blocked with a link in a home since the plan
// waits, as a conflict, and everyone else's activation goes on.
func (t *Target) executeFiles(p *Plan) error {
	m := p.System.Manifest
	for _, d := range p.RuntimeDirs {
		if err := t.Root.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("runtime directory %s: %w", d, err)
		}
	}
	for _, f := range p.Files {
		err := t.placeFile(m, p.Accounts, f.File)
		if durable.IsLink(err) && homeOf(m, f.File) != "" {
			p.Conflicts = append(p.Conflicts, Conflict{Path: f.Path, Origin: f.Origin, Reason: t.homeLinkReason(m, f.File)})
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
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

// removeFiles removes the files the generation dropped.
func (t *Target) removeFiles(p *Plan) error {
	for _, f := range p.FilesRemove {
		if err := t.remove(f); err != nil {
			return err
		}
	}
	return nil
}

// remove removes the entry p of the target; a missing one is success.
func (t *Target) remove(p string) error {
	if err := t.Root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
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

// checkRuntimeDirs reports the packages' runtime directories that are
// missing.
func (t *Target) checkRuntimeDirs(m *manifest.Manifest) []string {
	var probs []string
	for _, pkg := range m.Packages {
		for _, d := range pkg.RuntimeDirs {
			if fi, err := t.Root.Stat(d); path.IsAbs(d) && (err != nil || !fi.IsDir()) {
				probs = append(probs, fmt.Sprintf("runtime directory %s of %s is missing", d, pkg.Name))
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

// sameContent reports whether the file a of in (the root, or a home
// opened without links) holds what the store file b holds.
func (t *Target) sameContent(in *durable.Root, a, b string) (bool, error) {
	fa, err := in.Stat(a)
	if err != nil {
		return false, nil
	}
	fb, err := t.Root.Stat(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", b, err)
	}
	if fa.Size() != fb.Size() {
		return false, nil
	}
	da, err := in.ReadFile(a)
	if err != nil {
		return false, nil
	}
	db, err := t.Root.ReadFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(da, db), nil
}
