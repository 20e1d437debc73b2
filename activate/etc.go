package activate

import (
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

// /etc: /etc/static links to the generation's etc/, the entries link
// through it (or are copies where a mode is asked for), /etc/localtime
// links to the zone. Planned, executed and checked here.

type etcWant struct {
	link string // symlink target, or "" for a copy
	mode fs.FileMode
	src  string // file to copy (a path of the target, in the store)
}

// planEtc plans /etc/static and the /etc entries: links through
// /etc/static, copies with a mode, /etc/localtime, what the generation
// dropped, and entries it may not replace. It returns the entries
// nexis manages once the plan is done.
func (t *Target) planEtc(p *Plan, st *State, opts Options) ([]string, error) {
	sys, m := p.System, p.System.Manifest
	managedEtc := setOf(st.Etc)
	staticTarget := sys.Logical + "/etc"
	if cur, err := t.Root.Readlink("/etc/static"); err != nil || cur != staticTarget {
		p.EtcStaticChanges = true
	}
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
				if w.link != "" && rel != "localtime" && p.EtcStaticChanges && p.PreviousSystem != "" {
					if changed, _ := t.etcFileChanged(p.PreviousSystem, sys, rel); changed {
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
			p.EtcAdd = append(p.EtcAdd, rel)
		default:
			p.EtcCopy = append(p.EtcCopy, rel)
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
	sort.Strings(p.EtcChanged)
	return newEtc, nil
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

// executeEtc swaps /etc/static, the one rename that moves every linked
// file, and makes the entries the generation adds or changes; it
// returns the directories it made for them.
func (t *Target) executeEtc(p *Plan) ([]string, error) {
	if err := t.Root.MkdirAll("/etc", 0o755); err != nil {
		return nil, err
	}
	if p.EtcStaticChanges {
		if err := t.Root.Symlink(p.System.Logical+"/etc", "/etc/static", nil); err != nil {
			return nil, err
		}
	}
	var dirs []string
	for _, rel := range p.EtcAdd {
		made, err := t.mkParents("/etc", rel, nil)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, made...)
		if err := t.Root.Symlink(p.etcWant[rel].link, "/etc/"+rel, nil); err != nil {
			return nil, err
		}
	}
	for _, rel := range p.EtcCopy {
		made, err := t.mkParents("/etc", rel, nil)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, made...)
		w := p.etcWant[rel]
		if err := t.copyFile(w.src, t.Root, "/etc/"+rel, w.mode, &durable.Owner{}); err != nil {
			return nil, err
		}
	}
	if p.Localtime != "" {
		if err := t.Root.Symlink(p.Localtime, "/etc/localtime", nil); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}

// removeEtc removes the entries the generation dropped.
func (t *Target) removeEtc(p *Plan) error {
	for _, rel := range p.EtcRemove {
		if err := t.remove("/etc/" + rel); err != nil {
			return err
		}
	}
	return nil
}

// removeEtcDirs removes the directories made for links that are empty
// now, children first, and returns those still needed.
func (t *Target) removeEtcDirs(dirs []string) []string {
	var kept []string
	for _, d := range sortDeepFirst(dirs) {
		if err := t.Root.Remove("/etc/" + d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			kept = append(kept, d) // not empty: still needed
		}
	}
	return union(kept)
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

// checkEtc reports how /etc differs from sys: every entry, nothing
// through /etc/static that is not one, no temporary file of an
// interrupted write, the record, /etc/localtime.
func (t *Target) checkEtc(sys *System, st *State) []string {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	m := sys.Manifest
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
	return probs
}
