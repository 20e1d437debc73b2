package resolve

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nexisos/nexis/lang"
)

// LockFile is what `nexis lock` and `nexis update` make of a config's
// nexis.lock: where it is, what it becomes and what changed.
type LockFile struct {
	Path    string     `json:"path"`
	Next    *lang.Lock `json:"-"`
	Changes []Change   `json:"changes"`
}

// Lock resolves the lock of the config at configFile, starting from the
// nexis.lock beside it. Nothing is written (Write does); an error leaves
// the file as it was.
func Lock(ctx context.Context, configFile string, opts Options) (*LockFile, error) {
	cfg, err := lang.LoadConfig(configFile)
	if err != nil {
		return nil, err
	}
	if err := cfg.Check(lang.ConfigSchema); err != nil {
		return nil, err
	}
	l := &LockFile{Path: filepath.Join(cfg.Dir, lang.LockFile)}
	old, err := lang.LoadLock(l.Path)
	if err != nil {
		return nil, err
	}
	if l.Next, l.Changes, err = Resolve(ctx, cfg, old, opts); err != nil {
		return nil, fmt.Errorf("%s unchanged: %w", lang.LockFile, err)
	}
	if l.Changes == nil {
		l.Changes = []Change{}
	}
	return l, nil
}

// Write writes the lock, unless nothing changed and the file exists.
func (l *LockFile) Write() error {
	if len(l.Changes) == 0 {
		if _, err := os.Stat(l.Path); err == nil {
			return nil
		}
	}
	return lang.WriteLock(l.Path, l.Next)
}

// Describe is a pin as people read it: version, tag, commit.
func Describe(p *lang.LockedPackage) string {
	s := p.Version
	if p.Tag != "" && p.Tag != p.Version {
		s += " (" + p.Tag + ")"
	}
	if p.Rev != "" {
		s += " at " + p.Rev[:min(12, len(p.Rev))]
	}
	return s
}

// Print writes what changed, one package a line, on out; that nothing
// did on diag.
func (l *LockFile) Print(out, diag io.Writer) {
	for _, c := range l.Changes {
		switch {
		case c.Old == nil:
			fmt.Fprintf(out, "%s: pinned %s\n", c.Name, Describe(c.New))
		case c.New == nil:
			fmt.Fprintf(out, "%s: no longer pinned\n", c.Name)
		default:
			fmt.Fprintf(out, "%s: %s -> %s\n", c.Name, Describe(c.Old), Describe(c.New))
		}
	}
	if len(l.Changes) == 0 {
		fmt.Fprintf(diag, "nexis: %s is up to date\n", l.Path)
	}
}
