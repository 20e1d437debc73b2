package lang

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a loaded TOML config with its includes merged.
type Config struct {
	Data  map[string]any
	pos   map[string]Pos    // key path → where it is written
	owner map[string]string // key path → display name of the file that defines it
	Files []string          // display names of every file read, main first
	Dir   string            // absolute directory of the main file
	// fileHashes are the contents of every file read, for the config hash.
	contents map[string][]byte
}

// Error is a user error with a position. Stack, when set, is a Starlark
// backtrace; Trace is the full one, stdlib frames included.
type Error struct {
	Pos   Pos
	Msg   string
	Stack string
	Trace string
}

func (e *Error) Error() string {
	if e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Pos returns where key path k is written, or the nearest enclosing key
// that is written somewhere, or the main file.
func (c *Config) Pos(k string) Pos {
	for {
		if p, ok := c.pos[k]; ok {
			return p
		}
		i := strings.LastIndexAny(k, ".[")
		if i <= 0 {
			if len(c.Files) > 0 {
				return Pos{File: c.Files[0]}
			}
			return Pos{}
		}
		k = k[:i]
	}
}

// Errorf makes a positioned error about key path k.
func (c *Config) Errorf(k string, format string, args ...any) *Error {
	return &Error{Pos: c.Pos(k), Msg: k + ": " + fmt.Sprintf(format, args...)}
}

// LoadConfig reads path and the files named by its [includes] paths,
// recursively, relative to the including file. Tables merge; arrays of
// tables concatenate in include order; any other key defined in two files
// is an error naming both.
func LoadConfig(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c := &Config{
		Data:     map[string]any{},
		pos:      map[string]Pos{},
		owner:    map[string]string{},
		Dir:      filepath.Dir(abs),
		contents: map[string][]byte{},
	}
	if err := c.include(filepath.Base(abs), nil); err != nil {
		return nil, err
	}
	delete(c.Data, "includes")
	return c, nil
}

func (c *Config) include(display string, chain []string) error {
	for i, f := range chain {
		if f == display {
			return &Error{Pos: c.Pos("includes.paths"), Msg: "include cycle: " + strings.Join(append(chain[i:], display), " → ")}
		}
	}
	src, err := os.ReadFile(filepath.Join(c.Dir, display))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && len(chain) > 0 {
			parent := chain[len(chain)-1]
			return &Error{Pos: c.Pos("includes.paths"), Msg: fmt.Sprintf("includes.paths: %s (included from %s) does not exist", display, parent)}
		}
		return fmt.Errorf("read config: %w", err)
	}
	var data map[string]any
	if _, err := toml.Decode(string(src), &data); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.Usage != "" {
				msg += " (" + strings.TrimSpace(strings.SplitN(pe.Usage, "\n", 2)[0]) + ")"
			}
			return &Error{Pos: Pos{File: display, Line: pe.Position.Line, Col: pe.Position.Col}, Msg: "TOML syntax error: " + msg}
		}
		return &Error{Pos: Pos{File: display}, Msg: err.Error()}
	}
	c.Files = append(c.Files, display)
	c.contents[display] = src
	positions := scanPositions(display, src)

	var includes []string
	if inc, ok := data["includes"]; ok {
		t, ok := inc.(map[string]any)
		paths, ok2 := t["paths"].([]any)
		if !ok || (!ok2 && t["paths"] != nil) {
			return &Error{Pos: positions["includes"], Msg: "includes: want a table with paths = [\"file.toml\", ...]"}
		}
		for k := range t {
			if k != "paths" {
				return &Error{Pos: positions[KeyPath("includes", k)], Msg: fmt.Sprintf("includes.%s: unknown key (did you mean paths?)", k)}
			}
		}
		for i, p := range paths {
			s, ok := p.(string)
			if !ok {
				return &Error{Pos: positions[KeyPath("includes", "paths", index(i))], Msg: "includes.paths: every entry must be a file name string"}
			}
			includes = append(includes, filepath.ToSlash(filepath.Join(filepath.Dir(display), s)))
		}
		delete(data, "includes")
	}
	if err := c.merge(c.Data, data, nil, display, positions); err != nil {
		return err
	}
	for _, inc := range includes {
		// Errors about a missing include point at the includes line of the
		// file that names it.
		c.pos["includes.paths"] = positions["includes.paths"]
		if err := c.include(inc, append(chain, display)); err != nil {
			return err
		}
	}
	delete(c.pos, "includes.paths")
	return nil
}

// merge adds src (from file) into dst at key path prefix.
func (c *Config) merge(dst, src map[string]any, prefix []string, file string, positions map[string]Pos) error {
	for _, k := range sortedKeys(src) {
		v := src[k]
		path := append(append([]string(nil), prefix...), k)
		kp := KeyPath(path...)
		old, exists := dst[k]
		switch {
		case !exists:
			dst[k] = normalise(v)
			c.adopt(kp, kp, file, positions)
		case isTable(old) && isTable(v):
			c.adoptOne(kp, kp, file, positions)
			if err := c.merge(old.(map[string]any), v.(map[string]any), path, file, positions); err != nil {
				return err
			}
		case isTableArray(old) && isTableArray(v):
			oldArr, newArr := old.([]any), normalise(v).([]any)
			for i := range newArr {
				c.adopt(kp+index(i), kp+index(len(oldArr)+i), file, positions)
			}
			dst[k] = append(oldArr, newArr...)
		default:
			first := c.pos[kp]
			if first.File == "" {
				first = Pos{File: c.owner[kp]}
			}
			return &Error{Pos: positions[kp], Msg: fmt.Sprintf("%s is defined in both %s and %s: keep one", kp, first, positions[kp])}
		}
	}
	return nil
}

// adopt records positions of key path from (in the file being merged) and
// everything under it, as key path to.
func (c *Config) adopt(from, to, file string, positions map[string]Pos) {
	for k, p := range positions {
		if k == from || strings.HasPrefix(k, from+".") || strings.HasPrefix(k, from+"[") {
			nk := to + strings.TrimPrefix(k, from)
			c.pos[nk] = p
			c.owner[nk] = file
		}
	}
	if _, ok := c.owner[to]; !ok {
		c.owner[to] = file
	}
}

func (c *Config) adoptOne(from, to, file string, positions map[string]Pos) {
	if _, ok := c.pos[to]; !ok {
		if p, ok := positions[from]; ok {
			c.pos[to] = p
		}
	}
}

func isTable(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

func isTableArray(v any) bool {
	switch a := v.(type) {
	case []map[string]any:
		return true
	case []any:
		for _, e := range a {
			if !isTable(e) {
				return false
			}
		}
		return len(a) > 0
	}
	return false
}

// normalise turns the TOML library's result into map[string]any, []any
// and scalars only; dates become RFC 3339 strings.
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
		return x
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
