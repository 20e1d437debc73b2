package activate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
)

// Options tune planning and execution.
type Options struct {
	// Live controls running services through dinitctl (stop, reload,
	// start). Off, only the service files change: what a mounted target
	// or `nexis boot` wants.
	Live bool
	// Force replaces /etc entries and files nexis did not create.
	Force bool
	// Hooks runs the generation's pre_switch and post_switch hooks.
	Hooks bool
	// Generation is the number being activated (0: an unrecorded
	// system, `nexis test` of a fresh build).
	Generation uint64
}

// Conflict is an entry nexis did not create and leaves alone.
type Conflict struct {
	Path   string `json:"path"`
	Origin string `json:"origin"`
	Reason string `json:"reason"`
}

// FileOp is one manifest file to place.
type FileOp struct {
	manifest.File
	Why string `json:"why"` // "new", "changed", "owner or mode"
}

// ServiceOp is one dinitctl call.
type ServiceOp struct {
	Verb string `json:"verb"` // stop, unload, reload, start
	Name string `json:"name"`
}

// Plan is everything an activation changes, made by comparing the root
// with the generation. Execute does exactly this.
type Plan struct {
	System     *System  `json:"-"`
	Generation uint64   `json:"generation"`
	Options    Options  `json:"-"`
	Prev       *State   `json:"-"`
	PrevSystem string   `json:"previous_system"`
	NewSystem  string   `json:"system"`
	Static     bool     `json:"etc_static_changes"`
	EtcLinks   []string `json:"etc_add"`    // new links through /etc/static
	EtcCopies  []string `json:"etc_copy"`   // copies with a mode, new or changed
	EtcRemove  []string `json:"etc_remove"` // entries the generation dropped
	// EtcChanged are existing links whose file changes with the swap of
	// /etc/static (for the summary; nothing is done to them).
	EtcChanged  []string   `json:"etc_changed"`
	Localtime   string     `json:"localtime,omitempty"` // new target of /etc/localtime
	Conflicts   []Conflict `json:"conflicts"`
	Files       []FileOp   `json:"files"`
	FilesRemove []string   `json:"files_remove"`
	Accounts    *Accounts  `json:"-"`
	// AccountFiles are the account files whose content changes.
	AccountFiles []string    `json:"account_files"`
	Homes        []string    `json:"homes"`
	RuntimeDirs  []string    `json:"runtime_dirs"`
	StopFirst    []ServiceOp `json:"services_before"`
	StartAfter   []ServiceOp `json:"services_after"`
	// Service names by what happens to them, for the summary.
	SvcStart   []string `json:"services_start"`
	SvcRestart []string `json:"services_restart"`
	SvcStop    []string `json:"services_stop"`
	SvcChanged []string `json:"services_changed"` // files changed (restarted when live)
	CurrentSys bool     `json:"current_system"`   // /run/current-system moves

	newState *State
	etcWant  map[string]etcWant
}

type etcWant struct {
	link string // symlink target, or "" for a copy
	mode fs.FileMode
	src  string // file to copy (a path of the target, in the store)
}

// Empty reports whether the plan changes nothing on disk.
func (p *Plan) Empty() bool {
	return !p.Static && len(p.EtcLinks)+len(p.EtcCopies)+len(p.EtcRemove)+len(p.Files)+len(p.FilesRemove)+
		len(p.AccountFiles)+len(p.Homes)+len(p.RuntimeDirs)+len(p.StopFirst)+len(p.StartAfter) == 0 &&
		p.Localtime == "" && !p.CurrentSys && !p.stateChanges()
}

func (p *Plan) stateChanges() bool {
	o, n := p.Prev, p.newState
	return o.Status != statusActive || o.Generation != n.Generation || o.System != n.System ||
		strings.Join(o.Etc, "\x00") != strings.Join(n.Etc, "\x00") ||
		strings.Join(o.Files, "\x00") != strings.Join(n.Files, "\x00") ||
		strings.Join(o.Users, "\x00") != strings.Join(n.Users, "\x00") ||
		strings.Join(o.Groups, "\x00") != strings.Join(n.Groups, "\x00") ||
		strings.Join(o.Locked, "\x00") != strings.Join(n.Locked, "\x00") ||
		fmt.Sprint(o.Services) != fmt.Sprint(n.Services)
}

// Plan compares the root with sys and lists what activating it changes.
func (t *Target) Plan(sys *System, opts Options) (*Plan, error) {
	if err := t.guard(sys.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", sys.Logical, err)
	}
	st, err := t.LoadState()
	if err != nil {
		return nil, err
	}
	m := sys.Manifest
	p := &Plan{System: sys, Generation: opts.Generation, Options: opts, Prev: st, PrevSystem: st.System, NewSystem: sys.Logical}
	managedEtc := setOf(st.Etc)

	// /etc/static.
	staticTarget := sys.Logical + "/etc"
	if cur, err := t.Root.Readlink("/etc/static"); err != nil || cur != staticTarget {
		p.Static = true
	}

	// /etc entries.
	p.etcWant = map[string]etcWant{}
	for _, e := range m.Etc {
		w := etcWant{link: "/etc/static/" + e.Path}
		if e.Mode != "" {
			mode, _ := strconv.ParseUint(e.Mode, 8, 32)
			w = etcWant{mode: fs.FileMode(mode), src: path.Join(sys.Logical, "etc", e.Path)}
		}
		p.etcWant[e.Path] = w
	}
	if m.System.Localtime != "" {
		p.etcWant["localtime"] = etcWant{link: m.System.Localtime}
	}
	origin := map[string]string{"localtime": "system.timezone"}
	for _, e := range m.Etc {
		origin[e.Path] = e.Origin
	}
	var newEtc []string
	for _, rel := range keys(p.etcWant) {
		w := p.etcWant[rel]
		dst := "/etc/" + rel
		fi, err := t.Root.Lstat(dst)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if blocked := t.blockedParent("/etc", rel); blocked != "" {
				p.Conflicts = append(p.Conflicts, Conflict{Path: "/etc/" + rel, Origin: origin[rel], Reason: blocked + " is not a directory"})
				continue
			}
		case err != nil:
			return nil, fmt.Errorf("/etc/%s: %w", rel, err)
		default:
			ok, err := t.etcMatches(dst, fi, w)
			if err != nil {
				return nil, err
			}
			if ok {
				newEtc = append(newEtc, rel)
				if w.link != "" && rel != "localtime" && p.Static && p.PrevSystem != "" {
					if changed, _ := t.etcFileChanged(p.PrevSystem, sys, rel); changed {
						p.EtcChanged = append(p.EtcChanged, rel)
					}
				}
				continue
			}
			if !managedEtc[rel] && !opts.Force {
				p.Conflicts = append(p.Conflicts, Conflict{Path: "/etc/" + rel, Origin: origin[rel], Reason: "exists and nexis did not create it (--force replaces it)"})
				continue
			}
			if fi.IsDir() {
				p.Conflicts = append(p.Conflicts, Conflict{Path: "/etc/" + rel, Origin: origin[rel], Reason: "is a directory"})
				continue
			}
		}
		newEtc = append(newEtc, rel)
		switch {
		case rel == "localtime":
			p.Localtime = w.link
		case w.link != "":
			p.EtcLinks = append(p.EtcLinks, rel)
		default:
			p.EtcCopies = append(p.EtcCopies, rel)
		}
	}
	for _, rel := range st.Etc {
		if _, ok := p.etcWant[rel]; ok {
			continue
		}
		if _, err := t.Root.Lstat("/etc/" + rel); err == nil {
			p.EtcRemove = append(p.EtcRemove, rel)
		}
	}

	// Accounts.
	acc, err := t.planAccounts(m, st)
	if err != nil {
		return nil, err
	}
	p.Accounts = acc
	for _, f := range []struct{ name, text string }{{"group", acc.Group}, {"passwd", acc.Passwd}, {"shadow", acc.Shadow}} {
		if !t.fileIs("/etc/"+f.name, f.text) {
			p.AccountFiles = append(p.AccountFiles, f.name)
		}
	}
	if !t.shadowModeOK(acc.ShadowGID) && !contains(p.AccountFiles, "shadow") {
		p.AccountFiles = append(p.AccountFiles, "shadow")
	}
	for _, u := range keys(acc.Homes) {
		if _, err := t.Root.Lstat(acc.Homes[u]); errors.Is(err, fs.ErrNotExist) {
			p.Homes = append(p.Homes, u)
		}
	}
	for _, pkg := range m.Packages {
		for _, d := range pkg.RuntimeDirs {
			if !path.IsAbs(d) {
				continue // $XDG_RUNTIME_DIR and $HOME ones are made in the session
			}
			if _, err := t.Root.Lstat(d); errors.Is(err, fs.ErrNotExist) && !contains(p.RuntimeDirs, d) {
				p.RuntimeDirs = append(p.RuntimeDirs, d)
			}
		}
	}

	// Files.
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

	// Services.
	newSvc := map[string]manifest.Service{}
	for _, s := range m.Services {
		newSvc[s.Name] = s
	}
	boot := setOf(m.Boot)
	for _, n := range keys(st.Services) {
		if _, ok := newSvc[n]; !ok {
			p.SvcStop = append(p.SvcStop, n)
		}
	}
	for _, s := range m.Services {
		old, had := st.Services[s.Name]
		switch {
		case !had && boot[s.Name]:
			p.SvcStart = append(p.SvcStart, s.Name)
		case had && old != s.Source:
			p.SvcChanged = append(p.SvcChanged, s.Name)
			if boot[s.Name] {
				p.SvcRestart = append(p.SvcRestart, s.Name)
			}
		}
	}
	if opts.Live {
		for _, n := range p.SvcStop {
			p.StopFirst = append(p.StopFirst, ServiceOp{"stop", n}, ServiceOp{"unload", n})
		}
		for _, n := range p.SvcChanged {
			p.StopFirst = append(p.StopFirst, ServiceOp{"stop", n})
			p.StartAfter = append(p.StartAfter, ServiceOp{"reload", n})
		}
		for _, n := range p.SvcRestart {
			p.StartAfter = append(p.StartAfter, ServiceOp{"start", n})
		}
		for _, n := range p.SvcStart {
			p.StartAfter = append(p.StartAfter, ServiceOp{"start", n})
		}
		if len(p.SvcStop)+len(p.SvcStart)+len(p.SvcChanged) > 0 && len(m.Boot) > 0 {
			// boot's waits-for lines are the enablement set.
			p.StartAfter = append(p.StartAfter, ServiceOp{"reload", "boot"})
		}
	}

	if cur, err := t.Root.Readlink("/run/current-system"); err != nil || cur != sys.Logical {
		p.CurrentSys = true
	}

	// The record after activation.
	ns := &State{Version: 1, Status: statusActive, Generation: opts.Generation, System: sys.Logical, Services: map[string]string{}}
	ns.Etc = union(newEtc)
	ns.Files = union(newFiles)
	for _, u := range m.Users {
		ns.Users = append(ns.Users, u.Name)
	}
	declared := setOf(ns.Users)
	for _, u := range union(st.Users, st.Locked) {
		if !declared[u] {
			ns.Locked = append(ns.Locked, u)
		}
	}
	for _, g := range m.Groups {
		ns.Groups = append(ns.Groups, g.Name)
	}
	removedG := setOf(acc.RemoveGroups)
	for _, g := range st.Groups {
		if !removedG[g] && !contains(ns.Groups, g) {
			ns.Groups = append(ns.Groups, g) // still some account's primary group
		}
	}
	for _, s := range m.Services {
		ns.Services[s.Name] = s.Source
	}
	ns.Dirs = st.Dirs
	p.newState = ns
	sort.Strings(p.EtcChanged)
	return p, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// blockedParent names a parent of base/rel that exists and is not a
// directory ("" when there is none).
func (t *Target) blockedParent(base, rel string) string {
	dir := path.Dir(rel)
	for dir != "." && dir != "/" {
		if fi, err := t.Root.Stat(base + "/" + dir); err == nil && !fi.IsDir() {
			return base + "/" + dir
		}
		dir = path.Dir(dir)
	}
	return ""
}

// etcMatches reports whether dst already is what w wants.
func (t *Target) etcMatches(dst string, fi fs.FileInfo, w etcWant) (bool, error) {
	if w.link != "" {
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		cur, err := t.Root.Readlink(dst)
		return err == nil && cur == w.link, nil
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != w.mode.Perm() {
		return false, nil
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok && (sys.Uid != 0 || sys.Gid != 0) {
		return false, nil
	}
	return t.sameContent(t.Root, dst, w.src)
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

// etcFileChanged reports whether /etc/rel differs between the previous
// system and sys.
func (t *Target) etcFileChanged(prevLogical string, sys *System, rel string) (bool, error) {
	prev, err := t.storeFile(prevLogical)
	if err != nil {
		return true, err
	}
	a, errA := t.Root.Readlink(path.Join(prev, "etc", rel))
	b, errB := t.Root.Readlink(path.Join(sys.Logical, "etc", rel))
	if errA != nil || errB != nil {
		return true, nil
	}
	return a != b, nil
}

// fileIs reports whether the root's file p holds exactly text.
func (t *Target) fileIs(p, text string) bool {
	b, err := t.Root.ReadFile(p)
	return err == nil && string(b) == text
}

// shadowMode is /etc/shadow's mode: readable by root and the shadow
// group (for unix_chkpwd and friends), by nobody else.
const shadowMode = 0o640

func (t *Target) shadowModeOK(gid int64) bool {
	fi, err := t.Root.Stat("/etc/shadow")
	if err != nil {
		return false
	}
	s, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().Perm() == shadowMode && s.Uid == 0 && int64(s.Gid) == gid
}

// owner resolves a manifest file's owner and group with the planned
// accounts.
func (a *Accounts) owner(user, group string) (*durable.Owner, error) {
	uid, ok := a.UID[user]
	if !ok {
		return nil, fmt.Errorf("unknown user %s", user)
	}
	gid, ok := a.GID[group]
	if !ok {
		return nil, fmt.Errorf("unknown group %s", group)
	}
	return &durable.Owner{UID: int(uid), GID: int(gid)}, nil
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
