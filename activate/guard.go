package activate

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
)

// guard refuses a generation that claims what nexis owns on this target
// or what the system needs, or whose fields the account files cannot
// hold. The stdlib refuses such entries at evaluation and
// manifest.Decode with the default locations; this checks again (a
// manifest handed over by AdoptManifest) and adds the target's own state
// and store directories.
func (t *Target) guard(m *manifest.Manifest) error {
	err := m.Validate()
	if err == nil {
		err = m.CheckClaims(path.Clean(t.StateDir), t.Store.LogicalDir())
	}
	if err != nil {
		return fmt.Errorf("refusing to activate it: %w (nothing was changed)", err)
	}
	return nil
}

// homeOf is the home of f's owner when f is inside it, else "".
func homeOf(m *manifest.Manifest, f manifest.File) string {
	i := indexUser(m, f.Owner)
	if i < 0 {
		return ""
	}
	home := m.Users[i].Home
	if home == "/" || !strings.HasPrefix(f.Path, home+"/") {
		return ""
	}
	return home
}

// fileRoot is where f is placed: inside its owner's home, a root opened
// on the home in which no link is followed (the user controls what is
// in it, and ~/.config -> /etc must not lead a write by root into
// /etc); elsewhere the target's root. dst is f's path in it; done
// releases it.
func (t *Target) fileRoot(m *manifest.Manifest, f manifest.File) (in *durable.Root, dst string, done func(), err error) {
	home := homeOf(m, f)
	if home == "" {
		return t.Root, f.Path, func() {}, nil
	}
	h, err := t.Root.OpenNoLinks(home)
	if errors.Is(err, fs.ErrNotExist) {
		// No home yet (create_home = false): placed as any other file,
		// its parents made by root.
		return t.Root, f.Path, func() {}, nil
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s (%s): home %s: %w", f.Path, f.Origin, home, err)
	}
	return h, strings.TrimPrefix(f.Path, home+"/"), func() { h.Close() }, nil
}

// homeLinkReason says which link in f's owner's home keeps f out.
func (t *Target) homeLinkReason(m *manifest.Manifest, f manifest.File) string {
	home := homeOf(m, f)
	link := "a directory on the way"
	if h, err := t.Root.OpenNoLinks(home); err == nil {
		defer h.Close()
		rel := strings.TrimPrefix(f.Path, home+"/")
		parts := strings.Split(rel, "/")
		for i := range parts[:len(parts)-1] {
			sub := strings.Join(parts[:i+1], "/")
			if fi, err := h.Lstat(sub); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				link = home + "/" + sub
				break
			}
		}
	}
	return fmt.Sprintf("is not placed: %s is a symbolic link in %s's home, and nexis follows no link in a home", link, f.Owner)
}
