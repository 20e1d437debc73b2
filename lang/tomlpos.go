package lang

import (
	"strconv"
	"strings"
)

// Pos is a position in a config file, for error messages.
type Pos struct {
	File string // display name, relative to the config directory
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// KeyPath formats a TOML key path the way users write it:
// packages[2].build_system, nexis.dinit."my-app".type.
func KeyPath(segs ...string) string {
	var b strings.Builder
	for _, s := range segs {
		if strings.HasPrefix(s, "[") {
			b.WriteString(s)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(s))
	}
	return b.String()
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

func quoteKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return strconv.Quote(k)
		}
	}
	return k
}

// scanPositions finds where every key of a TOML document is written. The
// TOML library does not report key positions, and errors must point at
// the line to fix, so this walks the document's syntax: headers, keys,
// strings (all four kinds), inline tables and arrays. It assumes the
// document already parsed, and records nothing it does not understand.
func scanPositions(file string, src []byte) map[string]Pos {
	// About one key per 20 bytes in typical configs; sizing the map up
	// front avoids most of its growth on large ones.
	s := &posScanner{file: file, src: src, line: 1, col: 1, out: make(map[string]Pos, len(src)/20), arrays: map[string]int{}}
	s.document()
	return s.out
}

type posScanner struct {
	file      string
	src       []byte
	i         int
	line, col int
	out       map[string]Pos
	arrays    map[string]int // array-of-tables path → current index
	table     string         // current table key path
}

func (s *posScanner) eof() bool { return s.i >= len(s.src) }

func (s *posScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *posScanner) next() {
	if s.eof() {
		return
	}
	if s.src[s.i] == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	s.i++
}

func (s *posScanner) pos() Pos { return Pos{File: s.file, Line: s.line, Col: s.col} }

// skip skips blanks, and also newlines and comments when nl is set.
func (s *posScanner) skip(nl bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.next()
		case c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.next()
			}
		case c == '\n' && nl:
			s.next()
		default:
			return
		}
	}
}

func (s *posScanner) record(k string, p Pos) {
	if _, ok := s.out[k]; !ok {
		s.out[k] = p
	}
}

// join appends a key to a key path.
func join(prefix, key string) string {
	if prefix == "" {
		return quoteKey(key)
	}
	return prefix + "." + quoteKey(key)
}

// keyPath reads a dotted key below prefix, recording each part.
func (s *posScanner) keyPath(prefix string) (string, bool) {
	keys, starts := s.keys()
	if len(keys) == 0 {
		return prefix, false
	}
	for i, k := range keys {
		prefix = join(prefix, k)
		s.record(prefix, starts[i])
	}
	return prefix, true
}

func (s *posScanner) document() {
	for {
		s.skip(true)
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			s.header()
			continue
		}
		path, _ := s.keyPath(s.table)
		s.skip(false)
		if s.peek() != '=' {
			s.toEOL()
			continue
		}
		s.next()
		s.skip(false)
		s.value(path)
		s.toEOL()
	}
}

func (s *posScanner) toEOL() {
	for !s.eof() && s.peek() != '\n' {
		s.next()
	}
}

func (s *posScanner) header() {
	p := s.pos()
	s.next()
	array := s.peek() == '['
	if array {
		s.next()
	}
	s.skip(false)
	keys, _ := s.keys()
	// Resolve the header through the arrays of tables it passes: [a.b]
	// under [[a]] is a.b inside the current element of a.
	path := ""
	for i, k := range keys {
		path = join(path, k)
		last := i == len(keys)-1
		if n, ok := s.arrays[path]; ok && !(last && array) {
			s.record(path, p)
			path += index(n)
		}
		s.record(path, p)
	}
	if array {
		n, ok := s.arrays[path]
		if ok {
			n++
		}
		s.arrays[path] = n
		path += index(n)
		s.record(path, p)
	}
	s.table = path
	s.toEOL()
}

// keys reads a dotted key and where each part starts.
func (s *posScanner) keys() ([]string, []Pos) {
	var out []string
	var starts []Pos
	for {
		s.skip(false)
		starts = append(starts, s.pos())
		switch s.peek() {
		case '"':
			out = append(out, s.basicString())
		case '\'':
			out = append(out, s.literalString())
		default:
			start := s.i
			for !s.eof() {
				c := s.peek()
				if c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
					s.next()
					continue
				}
				break
			}
			if s.i == start {
				return out, starts[:len(out)]
			}
			out = append(out, string(s.src[start:s.i]))
		}
		s.skip(false)
		if s.peek() != '.' {
			return out, starts
		}
		s.next()
	}
}

func (s *posScanner) value(path string) {
	switch c := s.peek(); {
	case c == '{':
		s.next()
		for {
			s.skip(true)
			if s.eof() || s.peek() == '}' {
				s.next()
				return
			}
			if s.peek() == ',' {
				s.next()
				continue
			}
			sub, ok := s.keyPath(path)
			if !ok {
				s.next()
				continue
			}
			s.skip(false)
			if s.peek() == '=' {
				s.next()
				s.skip(false)
				s.value(sub)
			}
		}
	case c == '[':
		s.next()
		for n := 0; ; {
			s.skip(true)
			if s.eof() || s.peek() == ']' {
				s.next()
				return
			}
			if s.peek() == ',' {
				s.next()
				continue
			}
			sub := path + index(n)
			s.record(sub, s.pos())
			start := s.i
			s.value(sub)
			if s.i == start {
				// Not a value (x = [}]): the document does not parse,
				// and the scan must still end.
				s.next()
			}
			n++
		}
	case c == '"':
		s.basicString()
	case c == '\'':
		s.literalString()
	default:
		for !s.eof() {
			c := s.peek()
			if c == ',' || c == ']' || c == '}' || c == '\n' || c == '#' {
				return
			}
			s.next()
		}
	}
}

func (s *posScanner) hasPrefix(p string) bool {
	return strings.HasPrefix(string(s.src[s.i:min(len(s.src), s.i+len(p))]), p)
}

func (s *posScanner) basicString() string {
	if s.hasPrefix(`"""`) {
		s.skipN(3)
		for !s.eof() && !s.hasPrefix(`"""`) {
			if s.peek() == '\\' {
				s.next()
			}
			s.next()
		}
		s.skipN(3)
		for s.peek() == '"' { // up to two quotes may end the content
			s.next()
		}
		return ""
	}
	s.next()
	start := s.i
	for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
		if s.peek() == '\\' {
			s.next()
		}
		s.next()
	}
	raw := string(s.src[start:s.i])
	s.next()
	if v, err := strconv.Unquote(`"` + raw + `"`); err == nil {
		return v
	}
	return raw
}

func (s *posScanner) literalString() string {
	if s.hasPrefix("'''") {
		s.skipN(3)
		for !s.eof() && !s.hasPrefix("'''") {
			s.next()
		}
		s.skipN(3)
		for s.peek() == '\'' {
			s.next()
		}
		return ""
	}
	s.next()
	start := s.i
	for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
		s.next()
	}
	v := string(s.src[start:s.i])
	s.next()
	return v
}

func (s *posScanner) skipN(n int) {
	for range n {
		s.next()
	}
}
