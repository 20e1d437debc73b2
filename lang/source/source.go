// Package source formats and checks the files a config is written in,
// as text: `nexis fmt` and `nexis lint`.
//
// .star files are formatted by buildtools (the library buildifier is
// built on) and then parsed again by go.starlark.net, so a formatted
// module is still one nexis loads. Lint runs buildtools' general
// Starlark warnings (unused loads and variables, uninitialized names,
// unreachable code...) and nexis's own: a default("key") that names no
// key with a default, a load of the stdlib naming a module or a name it
// does not have.
//
// TOML has no formatting library served here that keeps comments, so
// FormatTOML is a careful normaliser of layout only (spacing around =,
// table headers, blank lines, trailing space); it decodes the file
// before and after and refuses to change its meaning.
package source

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/bazelbuild/buildtools/build"
	"github.com/bazelbuild/buildtools/warn"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/stdlib"
)

// Format returns src formatted, by the file's kind (.star or .toml).
func Format(name string, src []byte) ([]byte, error) {
	switch path.Ext(name) {
	case ".star":
		return FormatStar(name, src)
	case ".toml":
		return FormatTOML(name, src)
	}
	return nil, fmt.Errorf("%s: nexis formats .star and .toml files", name)
}

// FormatStar formats a Starlark module.
func FormatStar(name string, src []byte) ([]byte, error) {
	f, err := build.ParseDefault(name, src)
	if err != nil {
		return nil, err
	}
	out := build.Format(f)
	if _, err := (&syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}).Parse(name, out, 0); err != nil {
		return nil, fmt.Errorf("%s: formatted, it no longer parses (a formatter bug; the file is left as it is): %w", name, err)
	}
	return out, nil
}

// Finding is one problem lint found.
type Finding struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	Category  string `json:"category"`
	Message   string `json:"message"`
	Fixable   bool   `json:"fixable"`
	Reference string `json:"reference,omitempty"`
}

// String is the finding on one line: buildtools' messages go on to say
// how to silence them, which --json keeps.
func (f Finding) String() string {
	msg, _, _ := strings.Cut(f.Message, "\n")
	return fmt.Sprintf("%s:%d:%d: %s (%s)", f.File, f.Line, f.Column, msg, f.Category)
}

// Warnings are the buildtools checks that hold for any Starlark, not
// only Bazel's.
var Warnings = []string{
	"confusing-name", "dict-concatenation", "integer-division", "load",
	"no-effect", "redefined-variable", "return-value",
	"string-iteration", "uninitialized", "unreachable", "unused-variable",
}

// LintStar checks a Starlark module.
func LintStar(name string, src []byte) ([]Finding, error) {
	f, err := build.ParseDefault(name, src)
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, w := range warn.FileWarnings(f, Warnings, nil, warn.ModeWarn, nil) {
		out = append(out, Finding{File: name, Line: w.Start.Line, Column: w.Start.LineRune, Category: w.Category,
			Message: w.Message, Fixable: w.AutoFixable, Reference: w.URL})
	}
	out = append(out, ours(name, f)...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Column < out[j].Column
	})
	return out, nil
}

// ours are nexis's own checks, on what buildtools cannot know: the
// config schema and the stdlib.
func ours(name string, f *build.File) []Finding {
	var out []Finding
	report := func(x build.Expr, cat, msg string) {
		start, _ := x.Span()
		out = append(out, Finding{File: name, Line: start.Line, Column: start.LineRune, Category: cat, Message: msg})
	}
	build.Walk(f, func(x build.Expr, _ []build.Expr) {
		switch c := x.(type) {
		case *build.CallExpr:
			id, ok := c.X.(*build.Ident)
			if !ok || id.Name != "default" || len(c.List) != 1 {
				return
			}
			s, ok := c.List[0].(*build.StringExpr)
			if !ok {
				return
			}
			if _, err := lang.ConfigSchema.DefaultOf(s.Value); err != nil {
				report(c, "nexis-default", err.Error())
			}
		case *build.LoadStmt:
			mod, ok := strings.CutPrefix(c.Module.Value, "@stdlib//")
			if !ok {
				return
			}
			src, err := fs.ReadFile(stdlib.FS, mod)
			if err != nil {
				report(c.Module, "nexis-load", fmt.Sprintf("the stdlib has no module %q", mod))
				return
			}
			defined := topLevelNames(src)
			for _, from := range c.From {
				if !defined[from.Name] {
					report(from, "nexis-load", fmt.Sprintf("@stdlib//%s defines no %q", mod, from.Name))
				}
			}
		}
	})
	return out
}

// topLevelNames are the names a module defines at top level.
func topLevelNames(src []byte) map[string]bool {
	names := map[string]bool{}
	f, err := build.ParseDefault("", src)
	if err != nil {
		return names
	}
	for _, stmt := range f.Stmt {
		switch s := stmt.(type) {
		case *build.DefStmt:
			names[s.Name] = true
		case *build.AssignExpr:
			for _, id := range assigned(s.LHS) {
				names[id] = true
			}
		case *build.LoadStmt:
			for _, to := range s.To {
				names[to.Name] = true
			}
		}
	}
	return names
}

func assigned(x build.Expr) []string {
	switch l := x.(type) {
	case *build.Ident:
		return []string{l.Name}
	case *build.TupleExpr:
		var out []string
		for _, e := range l.List {
			out = append(out, assigned(e)...)
		}
		return out
	case *build.ListExpr:
		var out []string
		for _, e := range l.List {
			out = append(out, assigned(e)...)
		}
		return out
	}
	return nil
}

// FormatTOML normalises a TOML file's layout and keeps its comments:
// "key = value", "[table]" without inner spaces, no space at the end of
// a line, one blank line at most, one before each table header that no
// comment introduces, one newline at the end. Values, comments and
// multi-line strings and arrays are kept as written.
func FormatTOML(name string, src []byte) ([]byte, error) {
	var before map[string]any
	if _, err := toml.Decode(string(src), &before); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []string
	blank := false
	var closing string // the delimiter of a multi-line string being copied
	depth := 0         // brackets of a multi-line array or table open
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimRight(line, " \t\r")
		if closing != "" || depth > 0 {
			out = append(out, line)
			closing, depth = scan(line, closing, depth)
			continue
		}
		t := strings.TrimLeft(line, " \t")
		switch {
		case t == "":
			blank = len(out) > 0
			continue
		case strings.HasPrefix(t, "["):
			t = header(t)
			if prev := last(out); prev != "" && !strings.HasPrefix(prev, "#") {
				blank = true
			}
		case !strings.HasPrefix(t, "#"):
			t = keyValue(t)
		}
		if blank {
			out = append(out, "")
			blank = false
		}
		out = append(out, t)
		if !strings.HasPrefix(t, "#") && !strings.HasPrefix(t, "[") {
			closing, depth = scan(t, "", 0)
		}
	}
	formatted := []byte(strings.Join(out, "\n") + "\n")
	var after map[string]any
	if _, err := toml.Decode(string(formatted), &after); err != nil || !reflect.DeepEqual(before, after) {
		return nil, fmt.Errorf("%s: formatting would change what the file means (a formatter bug; the file is left as it is)", name)
	}
	return formatted, nil
}

func last(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// header normalises a table header that quotes nothing: "[ a . b ]" →
// "[a.b]"; a comment after it is kept.
func header(t string) string {
	end := strings.LastIndex(t, "]")
	if end < 0 || strings.ContainsAny(t[:end], `"'`) {
		return t
	}
	h, rest := t[:end+1], strings.TrimSpace(t[end+1:])
	h = strings.NewReplacer(" ", "", "\t", "").Replace(h)
	if rest != "" {
		h += " " + rest
	}
	return h
}

// keyValue writes "key = value" with one space each side of the = that
// ends the key.
func keyValue(t string) string {
	i := keyEnd(t)
	if i < 0 {
		return t
	}
	k, v := strings.TrimSpace(t[:i]), strings.TrimSpace(t[i+1:])
	if !strings.ContainsAny(k, `"'`) {
		k = strings.Join(strings.FieldsFunc(k, func(r rune) bool { return r == '.' || r == ' ' || r == '\t' }), ".")
	}
	return k + " = " + v
}

// keyEnd is the index of the = after a key, quoted parts skipped.
func keyEnd(t string) int {
	var q byte
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else if c == '\\' && q == '"' {
				i++
			}
		case c == '"' || c == '\'':
			q = c
		case c == '=':
			return i
		}
	}
	return -1
}

// scan follows a value line: whether it leaves a multi-line string open
// (its closing delimiter) or brackets open (their depth).
func scan(line, closing string, depth int) (string, int) {
	i := 0
	if k := keyEnd(line); closing == "" && depth == 0 && k >= 0 {
		i = k + 1
	}
	for i < len(line) {
		if closing != "" {
			j := strings.Index(line[i:], closing)
			if j < 0 {
				return closing, depth
			}
			i += j + len(closing)
			closing = ""
			continue
		}
		switch c := line[i]; {
		case strings.HasPrefix(line[i:], `"""`) || strings.HasPrefix(line[i:], "'''"):
			closing = line[i : i+3]
			i += 3
			continue
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(line) && line[j] != c {
				if c == '"' && line[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
			continue
		case c == '#':
			return "", depth
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
		i++
	}
	return closing, depth
}

// LintTOML checks a config file against the schema, with positions.
func LintTOML(p string) ([]Finding, error) {
	cfg, err := lang.LoadConfig(p)
	if err == nil {
		err = cfg.Check(lang.ConfigSchema)
	}
	if err == nil {
		return nil, nil
	}
	if e, ok := err.(*lang.Error); ok {
		file := e.Pos.File
		if file != "" {
			file = filepath.Join(filepath.Dir(p), file)
		}
		return []Finding{{File: file, Line: e.Pos.Line, Column: e.Pos.Col, Category: "nexis-schema", Message: e.Msg}}, nil
	}
	return nil, err
}
