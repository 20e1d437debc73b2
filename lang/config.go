package lang

import (
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a loaded TOML config with its includes merged.
type Config struct {
	data  map[string]any // the merged TOML: read through the typed accessors (settings.go)
	Files []string       // display names of every file read, main first
	Dir   string         // absolute directory of the main file, links resolved

	dir      *configDir
	given    string // the directory as the config was named, when links made Dir differ
	maxDepth int
	tc       *tomlCache // decoded parts of large files, nil for none

	// Where each key is written is found by scanning the files again,
	// which costs as much as decoding them, and only errors and configs
	// of several files ask: so it is done on the first question, from
	// the files in the order they were merged.
	posMu   sync.Mutex
	pos     map[string]Pos // key path → where it is written
	merged  []mergedFile   // files merged so far
	adopted int            // how many of merged pos holds
	// includedAt is where the includes line naming the file being read
	// is (for errors about it), nil for the main file.
	includedAt func() Pos
}

// mergedFile is a file as merged: its key positions (found when asked)
// and the arrays of tables it continued (see merge).
type mergedFile struct {
	positions *filePositions
	shift     map[string]int
}

// filePositions scans one file's key positions once, when first asked.
// A large file is read again then rather than held (30 MB at 100,000
// packages, asked for by errors and configs of several files only); if
// it is no longer what was decoded, its keys are placed at the file.
type filePositions struct {
	once    sync.Once
	display string
	src     []byte
	dir     *configDir // to read a large file again, with its size and sum
	size    int
	sum     uint32
	m       map[string]Pos
}

// heldPositions is the size up to which a file's text is held for its
// positions.
const heldPositions = minSplit

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newFilePositions(dir *configDir, display string, src []byte) *filePositions {
	if len(src) <= heldPositions {
		return &filePositions{display: display, src: src}
	}
	return &filePositions{display: display, dir: dir, size: len(src), sum: crc32.Checksum(src, castagnoli)}
}

func (f *filePositions) get() map[string]Pos {
	f.once.Do(func() {
		src := f.src
		if f.dir != nil {
			b, err := f.dir.read(f.display)
			if err != nil || len(b) != f.size || crc32.Checksum(b, castagnoli) != f.sum {
				f.m = map[string]Pos{}
				return
			}
			src = b
		}
		f.m = scanPositions(f.display, src)
		f.src = nil
	})
	return f.m
}

func (f *filePositions) at(k string) Pos { return f.get()[k] }

// Error is a user error with a position. Stack, when set, is a Starlark
// backtrace; Trace is the full one, stdlib frames included. Source is
// the line at Pos, when it could be read.
type Error struct {
	Pos    Pos
	Msg    string
	Stack  string
	Trace  string
	Source string
}

// withSource reads the line an error points at, from the config
// directory dir (positions name files relative to it).
func withSource(err error, dir string) {
	var le *Error
	if !errors.As(err, &le) || le.Source != "" || le.Pos.Line < 1 || le.Pos.File == "" || strings.HasPrefix(le.Pos.File, "@") {
		return
	}
	b, rerr := os.ReadFile(filepath.Join(dir, le.Pos.File))
	if rerr != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	if le.Pos.Line > len(lines) {
		return
	}
	line := strings.TrimRight(lines[le.Pos.Line-1], "\r")
	// A line that may hold a secret (a password hash, a secret file's
	// content) is not repeated: errors end up in logs.
	key, _, _ := strings.Cut(strings.TrimSpace(line), "=")
	switch strings.TrimSpace(key) {
	case "password_hash", "content":
		return
	}
	if strings.Contains(strings.ToLower(line), "secret") {
		return
	}
	le.Source = line
}

// caret shows the source line with a caret under the column:
//
//	7 | build_sytem = "make"
//	  | ^
func (e *Error) caret() string {
	if e.Source == "" {
		return ""
	}
	num := strconv.Itoa(e.Pos.Line)
	pad := strings.Repeat(" ", len(num))
	col := max(e.Pos.Col, 1)
	// Tabs stay tabs so the caret lines up under them.
	under := []rune{}
	for i, r := range []rune(e.Source) {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			under = append(under, '\t')
		} else {
			under = append(under, ' ')
		}
	}
	return fmt.Sprintf("  %s | %s\n  %s | %s^\n", num, e.Source, pad, string(under))
}

func (e *Error) Error() string {
	if e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Pos returns where key path k is written, or the nearest enclosing key
// that is written somewhere, or the main file. It is safe for concurrent
// use.
func (c *Config) Pos(k string) Pos {
	c.posMu.Lock()
	defer c.posMu.Unlock()
	c.adopt()
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

// FileOf returns the display name of the file that declares key path k:
// Pos(k).File, without finding positions in a config of one file.
func (c *Config) FileOf(k string) string {
	if len(c.Files) == 1 {
		return c.Files[0]
	}
	return c.Pos(k).File
}

// Errorf makes a positioned error about key path k.
func (c *Config) Errorf(k string, format string, args ...any) *Error {
	return &Error{Pos: c.Pos(k), Msg: k + ": " + fmt.Sprintf(format, args...)}
}

// LoadConfig reads path and the files named by its [includes] paths,
// recursively, relative to the including file. Tables merge; arrays of
// tables concatenate in include order; any other key defined in two files
// is an error naming both. Every file is read inside the config directory
// (see configDir).
func LoadConfig(path string) (*Config, error) { return loadConfig(path, nil, DefaultMaxDepth, nil) }

// loadConfig is LoadConfig recording what it reads in inputs (if set),
// refusing values nested more than maxDepth deep.
func loadConfig(path string, inputs *Inputs, maxDepth int, tc *tomlCache) (*Config, error) {
	dirAbs, base, err := configLocation(path)
	if err != nil {
		return nil, err
	}
	// The directory named through a link (/home linked elsewhere) is
	// the same directory: file:// URLs may name it so.
	given := ""
	if abs, err := filepath.Abs(path); err == nil && filepath.Dir(abs) != dirAbs {
		if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil && real == dirAbs {
			given = filepath.Dir(abs)
		}
	}
	dir, err := openConfigDir(dirAbs, inputs)
	if err != nil {
		return nil, err
	}
	c := &Config{
		data:     map[string]any{},
		Dir:      dirAbs,
		dir:      dir,
		given:    given,
		maxDepth: maxDepth,
		tc:       tc,
	}
	if err := c.include(base, nil); err != nil {
		dir.close()
		return nil, err
	}
	delete(c.data, "includes")
	return c, nil
}

// Close lets go of the config directory, which a Config holds open for
// the modules and files an evaluation, -e or the repl reads, and to
// place keys of large files. A process that loads one config may leave
// that to its exit; one that loads many (a fuzzer) must not wait for the
// collector to close them.
func (c *Config) Close() { c.dir.close() }

// configLocation is the directory the config at p really is in and its
// name there. Links on the way are resolved: a config linked from
// /etc/nexis reads its modules beside the file it links to.
func configLocation(p string) (dir, base string, err error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return filepath.Dir(abs), filepath.Base(abs), nil
}

// configDirOf opens the directory of the config at p.
func configDirOf(p string, inputs *Inputs) (*configDir, error) {
	dir, _, err := configLocation(p)
	if err != nil {
		return nil, err
	}
	return openConfigDir(dir, inputs)
}

func (c *Config) include(display string, chain []string) error {
	for i, f := range chain {
		if f == display {
			return &Error{Pos: c.includedAt(), Msg: "include cycle: " + strings.Join(append(chain[i:], display), " → ")}
		}
	}
	src, err := c.dir.readFile(display)
	if err != nil {
		if len(chain) > 0 {
			parent := chain[len(chain)-1]
			if errors.Is(err, os.ErrNotExist) {
				return &Error{Pos: c.includedAt(), Msg: fmt.Sprintf("includes.paths: %s (included from %s) does not exist", display, parent)}
			}
			return &Error{Pos: c.includedAt(), Msg: fmt.Sprintf("includes.paths: %s (included from %s): %v", display, parent, err)}
		}
		return fmt.Errorf("read config: %w", err)
	}
	data, err := decodeChecked(src, func(text []byte) error { return checkNesting(display, text, c.maxDepth) }, c.tc)
	if err != nil {
		if _, ok := errors.AsType[*Error](err); ok {
			return err
		}
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
	positions := newFilePositions(c.dir, display, src)

	var includes []string
	if inc, ok := data["includes"]; ok {
		t, ok := inc.(map[string]any)
		paths, ok2 := t["paths"].([]any)
		if !ok || (!ok2 && t["paths"] != nil) {
			return &Error{Pos: positions.at("includes"), Msg: "includes: want a table with paths = [\"file.toml\", ...]"}
		}
		for k := range t {
			if k != "paths" {
				return &Error{Pos: positions.at(KeyPath("includes", k)), Msg: fmt.Sprintf("includes.%s: unknown key (did you mean paths?)", k)}
			}
		}
		for i, p := range paths {
			s, ok := p.(string)
			if !ok {
				return &Error{Pos: positions.at(KeyPath("includes", "paths", index(i))), Msg: "includes.paths: every entry must be a file name string"}
			}
			name, err := localName(display, s)
			if err != nil {
				k := KeyPath("includes", "paths", index(i))
				return &Error{Pos: positions.at(k), Msg: fmt.Sprintf("%s: %v", k, err)}
			}
			includes = append(includes, name)
		}
		delete(data, "includes")
	}
	shift := map[string]int{}
	if err := c.merge(c.data, data, nil, positions, shift); err != nil {
		return err
	}
	c.posMu.Lock()
	c.merged = append(c.merged, mergedFile{positions, shift})
	c.posMu.Unlock()
	for _, inc := range includes {
		// Errors about a missing include point at the includes line of the
		// file that names it.
		c.includedAt = func() Pos { return positions.at("includes.paths") }
		if err := c.include(inc, append(chain, display)); err != nil {
			return err
		}
	}
	c.includedAt = nil
	return nil
}

// merge adds src (from file) into dst at key path prefix. Arrays of
// tables that continue an array from an earlier file are recorded in
// shift (key path → how many elements came before), so positions can be
// renumbered in one pass afterwards.
func (c *Config) merge(dst, src map[string]any, prefix []string, positions *filePositions, shift map[string]int) error {
	for _, k := range sortedKeys(src) {
		v := src[k]
		path := append(append([]string(nil), prefix...), k)
		old, exists := dst[k]
		switch {
		case !exists:
			dst[k] = normalise(v)
		case isTable(old) && isTable(v):
			if err := c.merge(old.(map[string]any), v.(map[string]any), path, positions, shift); err != nil {
				return err
			}
		case isTableArray(old) && isTableArray(v):
			oldArr := old.([]any)
			shift[KeyPath(path...)] = len(oldArr)
			dst[k] = append(oldArr, normalise(v).([]any)...)
		default:
			kp := KeyPath(path...)
			return &Error{Pos: positions.at(kp), Msg: fmt.Sprintf("%s is defined in both %s and %s: keep one", kp, c.Pos(kp), positions.at(kp))}
		}
	}
	return nil
}

// adopt records the key positions of the files merged since it last
// ran, renumbering elements of arrays of tables that continue an earlier
// file's array. A key already placed keeps its first position (a table
// header shared by two files). c.posMu is held.
func (c *Config) adopt() {
	for ; c.adopted < len(c.merged); c.adopted++ {
		f := c.merged[c.adopted]
		positions := f.positions.get()
		if c.pos == nil {
			// The main file: its positions are the config's, copied only
			// when another file adds to them. The includes line is
			// where an include fails, and no key of the config.
			c.pos = positions
			if _, ok := c.pos["includes.paths"]; ok {
				c.pos = maps.Clone(c.pos)
				delete(c.pos, "includes.paths")
			}
			continue
		}
		if c.adopted == 1 && len(c.merged) > 1 {
			c.pos = maps.Clone(c.pos)
		}
		for k, p := range positions {
			if k == "includes.paths" {
				continue
			}
			if len(f.shift) > 0 {
				k = renumber(k, f.shift)
			}
			if _, ok := c.pos[k]; !ok {
				c.pos[k] = p
			}
		}
	}
}

// renumber rewrites the first index of k that follows a shifted array.
func renumber(k string, shift map[string]int) string {
	for i := 0; i < len(k); i++ {
		if k[i] != '[' {
			continue
		}
		off, ok := shift[k[:i]]
		if !ok {
			continue
		}
		end := strings.IndexByte(k[i:], ']')
		n, err := strconv.Atoi(k[i+1 : i+end])
		if err != nil {
			return k
		}
		return k[:i] + index(n+off) + k[i+end+1:]
	}
	return k
}

func isTable(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

func isTableArray(v any) bool {
	switch a := v.(type) {
	case []map[string]any:
		return true
	case normalTables:
		return len(a) > 0
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
		// Tables and arrays are normalised in place: only what becomes
		// another value is set again, which most of a config is not.
		for k, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				normalise(e)
			case []map[string]any, normalTables, time.Time:
				x[k] = normalise(e)
			}
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
			switch e.(type) {
			case map[string]any, []any:
				normalise(e)
			case []map[string]any, normalTables, time.Time:
				x[i] = normalise(e)
			}
		}
		return x
	case normalTables:
		return []any(x)
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
