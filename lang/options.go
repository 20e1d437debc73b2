package lang

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Options of the config, as the schema declares them: what `nexis
// option`, the option reference and the JSON Schema are made from.
//
// A declared key's name is its path with <name> for a key of a table of
// any keys and [] for an element of an array of tables:
// "users.<name>.files.<path>.mode", "packages[].version". A key of a
// config is the same path with the actual names and indexes:
// users.alice.files.".bashrc".mode, packages[2].version.

// Option is one declared key.
type Option struct {
	Key    string
	Schema *Schema
}

// Type names the key's TOML type as the reference writes it.
func (s *Schema) Type() string {
	switch s.Kind {
	case KindString:
		return "string"
	case KindInt:
		return "integer"
	case KindBool:
		return "boolean"
	case KindFloat:
		return "float"
	case KindStringOrBool:
		return "string or boolean"
	case KindTable:
		return "table"
	case KindMap:
		if s.Elem.Kind == KindTable {
			return "table of tables"
		}
		return "table of " + plural(s.Elem.Type())
	case KindArray:
		if s.Elem.Kind == KindTable {
			return "array of tables"
		}
		return "array of " + plural(s.Elem.Type())
	}
	return "any value"
}

func plural(t string) string {
	switch t {
	case "any value":
		return "any values"
	case "string or boolean":
		return "strings or booleans"
	}
	return t + "s"
}

// DefaultText says what an unset key means, in TOML where it is a value:
// "" for a key with no default.
func (s *Schema) DefaultText() string {
	switch {
	case s.Default != nil:
		return TOMLValue(s.Default)
	case s.DefaultDoc != "":
		return s.DefaultDoc
	case s.Kind == KindArray:
		return "[]"
	case s.Kind == KindMap:
		return "{}"
	}
	return ""
}

// placeholder is the name a declared key path gives the keys of a
// table of any keys: "users.<name>", "users.<name>.files.<path>".
func placeholder(path string) string {
	if strings.HasSuffix(path, ".files") {
		return "<path>"
	}
	return "<name>"
}

// Options lists every key the schema declares, in path order: tables
// before their keys.
func (s *Schema) Options() []Option {
	var out []Option
	s.walk("", &out)
	return out
}

func (s *Schema) walk(path string, out *[]Option) {
	if path != "" {
		*out = append(*out, Option{Key: path, Schema: s})
	}
	switch s.Kind {
	case KindTable:
		for _, k := range sortedKeys(s.Fields) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			s.Fields[k].walk(p, out)
		}
	case KindMap:
		if s.Elem.Kind == KindTable {
			s.Elem.walk(path+"."+placeholder(path), out)
		}
	case KindArray:
		if s.Elem.Kind == KindTable {
			s.Elem.walkFields(path+"[]", out)
		}
	}
}

// walkFields lists the keys of an array's table elements without a line
// for the element itself, which has no name of its own.
func (s *Schema) walkFields(path string, out *[]Option) {
	for _, k := range sortedKeys(s.Fields) {
		s.Fields[k].walk(path+"."+k, out)
	}
}

// SplitKeyPath splits a key path into its segments: names (unquoted)
// and indexes ("[2]", or "[]" for any element).
func SplitKeyPath(p string) ([]string, error) {
	var segs []string
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case c == '.' && len(segs) > 0:
			i++
			if i == len(p) {
				return nil, fmt.Errorf("key path %q ends with a dot", p)
			}
			continue
		case c == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("key path %q: [ without ]", p)
			}
			n := p[i+1 : i+j]
			if _, err := strconv.Atoi(n); n != "" && err != nil {
				return nil, fmt.Errorf("key path %q: [%s] is not an index", p, n)
			}
			segs = append(segs, p[i:i+j+1])
			i += j + 1
		case c == '"':
			q, err := strconv.QuotedPrefix(p[i:])
			if err != nil {
				return nil, fmt.Errorf("key path %q: unterminated quoted key", p)
			}
			k, _ := strconv.Unquote(q)
			segs = append(segs, k)
			i += len(q)
		default:
			j := strings.IndexAny(p[i:], ".[")
			if j < 0 {
				j = len(p) - i
			}
			segs = append(segs, p[i:i+j])
			i += j
		}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("empty key path")
	}
	return segs, nil
}

// Lookup returns what the schema declares for a key path, declared
// ("users.<name>.shell") or of a config ("users.alice.shell"), and the
// declared name of the key.
func (s *Schema) Lookup(path string) (*Schema, string, error) {
	segs, err := SplitKeyPath(path)
	if err != nil {
		return nil, "", err
	}
	cur, declared := s, ""
	for i, seg := range segs {
		at := KeyPath(segs[:i]...)
		switch {
		case strings.HasPrefix(seg, "["):
			if cur.Kind != KindArray {
				return nil, "", fmt.Errorf("%s is a %s, not an array", at, cur.Type())
			}
			cur, declared = cur.Elem, declared+"[]"
		case cur.Kind == KindTable:
			sub, ok := cur.Fields[seg]
			if !ok {
				msg := fmt.Sprintf("no key %q", KeyPath(append(segs[:i:i], seg)...))
				if m := didYouMean(seg, cur.Fields); m != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", KeyPath(append(segs[:i:i], m)...))
				}
				return nil, "", fmt.Errorf("%s", msg)
			}
			cur = sub
			declared = joinKey(declared, seg)
		case cur.Kind == KindMap:
			declared = joinKey(declared, placeholder(declared))
			cur = cur.Elem
		default:
			return nil, "", fmt.Errorf("%s is a %s: it has no key %q", at, cur.Type(), seg)
		}
	}
	return cur, declared, nil
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// Default returns the declared default of a key ("system.locale.lang",
// "config_files.<name>.mode"), or an error when the key has none: a
// default worked out from other keys is the stdlib's to compute.
func (s *Schema) DefaultOf(path string) (any, error) {
	k, declared, err := s.Lookup(path)
	if err != nil {
		return nil, err
	}
	if k.Default == nil {
		return nil, fmt.Errorf("%s has no declared default", declared)
	}
	return k.Default, nil
}

// Search lists the declared keys whose name or description contains
// every word of query (case-insensitive).
func (s *Schema) Search(query string) []Option {
	words := strings.Fields(strings.ToLower(query))
	var out []Option
	for _, o := range s.Options() {
		text := strings.ToLower(o.Key + " " + o.Schema.Doc)
		all := true
		for _, w := range words {
			all = all && strings.Contains(text, w)
		}
		if all {
			out = append(out, o)
		}
	}
	return out
}

// TOMLValue writes v (string, int64, bool, float64, []any,
// map[string]any) as a TOML value.
func TOMLValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = TOMLValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = quoteKey(k) + " = " + TOMLValue(x[k])
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return fmt.Sprint(v)
}

// OptionValue is a key's value in a config.
type OptionValue struct {
	Key   string // as the config names it: users.alice.shell
	Value any    // as written, or the declared default when not Set (nil for none)
	Set   bool
	Pos   Pos // where it is written, when Set
}

// Values returns a key's values in the config, after includes: one for
// every name and element the key's <name> and [] stand for (a key of a
// config, "users.alice.shell", has one). A key the config leaves out is
// there with its default.
func (c *Config) Values(key string) ([]OptionValue, error) {
	segs, err := SplitKeyPath(key)
	if err != nil {
		return nil, err
	}
	if _, _, err := ConfigSchema.Lookup(key); err != nil {
		return nil, err
	}
	var out []OptionValue
	c.values(ConfigSchema, c.data, true, segs, nil, &out)
	return out, nil
}

func (c *Config) values(s *Schema, v any, present bool, segs, at []string, out *[]OptionValue) {
	if len(segs) == 0 {
		k := KeyPath(at...)
		o := OptionValue{Key: k, Value: v, Set: present}
		if present {
			o.Pos = c.Pos(k)
		} else {
			o.Value = s.Default
		}
		*out = append(*out, o)
		return
	}
	seg, rest := segs[0], segs[1:]
	switch s.Kind {
	case KindArray:
		a, _ := v.([]any)
		for i, e := range a {
			if seg == "[]" || seg == index(i) {
				c.values(s.Elem, e, true, rest, append(at[:len(at):len(at)], index(i)), out)
			}
		}
	case KindMap:
		m, _ := v.(map[string]any)
		for _, k := range sortedKeys(m) {
			if strings.HasPrefix(seg, "<") || seg == k {
				c.values(s.Elem, m[k], true, rest, append(at[:len(at):len(at)], k), out)
			}
		}
	case KindTable:
		m, _ := v.(map[string]any)
		e, ok := m[seg]
		c.values(s.Fields[seg], e, present && ok, rest, append(at[:len(at):len(at)], seg), out)
	}
}
