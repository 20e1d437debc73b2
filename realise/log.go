package realise

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store/storepath"
)

// tailLines is how much of a failed build's log is shown.
const tailLines = 25

// buildLog is a build's combined output: kept in a file, split into lines
// for the reporter, with the last lines remembered for failure messages.
type buildLog struct {
	d    *builtins.Derivation
	path string
	f    *os.File
	rep  Reporter

	mu      sync.Mutex
	partial []byte
	ring    []string
	next    int
	phase   string
}

// LogPath is where the log of the build of out (a store path) is kept.
func LogPath(logDir, out string) (string, error) {
	base := filepath.Base(out)
	if len(base) < storepath.HashLen+2 || !storepath.IsHash(base[:storepath.HashLen]) {
		return "", fmt.Errorf("%s is not a store path", out)
	}
	return filepath.Join(logDir, base[:2], base+".log"), nil
}

func openLog(dir string, d *builtins.Derivation, rep Reporter) (*buildLog, error) {
	l := &buildLog{d: d, rep: rep}
	if dir == "" {
		return l, nil
	}
	p, err := LogPath(dir, d.Out())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening build log: %w", err)
	}
	l.path, l.f = p, f
	return l, nil
}

func (l *buildLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		// A full disk must not fail the build: the log is a convenience.
		l.f.Write(b)
	}
	data := append(l.partial, b...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		l.line(string(data[:i]))
		data = data[i+1:]
	}
	// Keep a partial line, but not without bound.
	if len(data) > 4096 {
		l.line(string(data))
		data = nil
	}
	l.partial = append(l.partial[:0], data...)
	return len(b), nil
}

func (l *buildLog) line(s string) {
	s = strings.TrimRight(s, "\r")
	if rest, ok := strings.CutPrefix(s, "nexis: "); ok {
		l.phase = phaseName(rest)
	}
	if len(l.ring) < tailLines {
		l.ring = append(l.ring, s)
	} else {
		l.ring[l.next] = s
		l.next = (l.next + 1) % tailLines
	}
	l.rep.Line(l.d, s)
}

// phaseName is the phase a builder's "nexis: " line names: its first
// word, with a parenthesised word after it ("build (configure)"), and
// without what follows a colon ("configure: no ./configure in ...").
func phaseName(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	name := f[0]
	if !strings.HasSuffix(name, ":") && len(f) > 1 && strings.HasPrefix(f[1], "(") && strings.HasSuffix(f[1], ")") {
		name += " " + f[1]
	}
	return strings.TrimSuffix(name, ":")
}

// lastPhase is the phase the builder last announced, "" if none.
func (l *buildLog) lastPhase() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase
}

// tail returns the last lines of the log, oldest first.
func (l *buildLog) tail() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string{}, l.ring[l.next:]...)
	out = append(out, l.ring[:l.next]...)
	if len(l.partial) > 0 {
		out = append(out, string(l.partial))
	}
	return out
}

func (l *buildLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// FindLog finds the kept log of a store path (anything inside it works)
// or, failing that, the newest log of a derivation named name or
// name-version.
func FindLog(logDir, storeDir, arg string) (string, error) {
	if p, _, err := storepath.Parse(storeDir, arg); err == nil {
		lp := filepath.Join(logDir, p.Hash[:2], p.Base()+".log")
		if _, err := os.Stat(lp); err != nil {
			return "", fmt.Errorf("no build log of %s (it was not built here, or was substituted or fetched before logs were kept)", p.In(storeDir))
		}
		return lp, nil
	}
	type cand struct {
		path string
		mod  int64
	}
	var cands []cand
	err := filepath.WalkDir(logDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".log") {
			return nil
		}
		base := strings.TrimSuffix(d.Name(), ".log")
		if len(base) <= storepath.HashLen+1 {
			return nil
		}
		name := base[storepath.HashLen+1:]
		if name == arg || (strings.HasPrefix(name, arg+"-") && startsWithDigit(name[len(arg)+1:])) {
			info, err := d.Info()
			if err == nil {
				cands = append(cands, cand{p, info.ModTime().UnixNano()})
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("no build log for %q: give a store path, or the name of something built on this machine", arg)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].mod > cands[j].mod })
	return cands[0].path, nil
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }
