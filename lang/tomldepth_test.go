package lang

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNestingAsByteByByte: the depth check, which passes runs of bytes
// at a time, gives the error (and its line and column) or the nil that
// the check written first, one byte at a time, gives, on documents of
// random pieces and limits.
func TestNestingAsByteByByte(t *testing.T) {
	pieces := []string{
		"[[a]]\n", "[a.b]\n", "\r[c]\n", "k = ", "a.b = ", "\"q\" = ", "[", "]", "{", "}", "x = [", "y = {", "z = [[[1]]]\n", ", ",
		"\"s\"", "\"e\\\"[\"", "\"\\\\\"", "\"\\\n[\"", "'l\\'", "'''m\n['''", "\"\"\"n\\\"\"\"[\n\"\"\"", "''''''",
		"# [ \"\n", "#", "1", "é", "\n", "\r\n", " ", "\t", "\"unended\n", "'", "\"", "\\", "=",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 30000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		src := []byte(b.String())
		max := 1 + rng.IntN(5)
		got := checkNesting("c.toml", src, max)
		want := checkNestingByteByByte("c.toml", src, max)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("document %d %q, limit %d: %v, want %v", n, src, max, got, want)
		}
	}
}

// checkNestingByteByByte is checkNesting as it was written first.
func checkNestingByteByByte(file string, src []byte, max int) error {
	s := &nestScannerByte{src: src, line: 1, col: 1}
	base := 1
	for {
		s.skip(true)
		if s.eof() {
			return nil
		}
		p := s.pos(file)
		if s.peek() == '[' {
			s.next()
			array := s.peek() == '['
			if array {
				s.next()
			}
			base = 1 + s.keyParts()
			if array {
				base++
			}
			if base > max {
				return tooDeep(p, max)
			}
			s.toEOL()
			continue
		}
		k := s.keyParts()
		s.skip(false)
		if k == 0 || s.peek() != '=' {
			s.next()
			s.toEOL()
			continue
		}
		s.next()
		if err := s.value(file, base+k-1, max); err != nil {
			return err
		}
	}
}

type nestScannerByte struct {
	src       []byte
	i         int
	line, col int
}

func (s *nestScannerByte) eof() bool { return s.i >= len(s.src) }

func (s *nestScannerByte) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *nestScannerByte) next() {
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

func (s *nestScannerByte) pos(file string) Pos { return Pos{File: file, Line: s.line, Col: s.col} }

func (s *nestScannerByte) has(p string) bool {
	return len(s.src)-s.i >= len(p) && string(s.src[s.i:s.i+len(p)]) == p
}

// skip skips blanks and comments, and newlines too when nl is set.
func (s *nestScannerByte) skip(nl bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.next()
		case c == '#':
			s.toEOL()
		case c == '\n' && nl:
			s.next()
		default:
			return
		}
	}
}

func (s *nestScannerByte) toEOL() {
	for !s.eof() && s.peek() != '\n' {
		s.next()
	}
}

// keyParts reads a dotted key and returns how many parts it has.
func (s *nestScannerByte) keyParts() int {
	n := 0
	for {
		s.skip(false)
		switch c := s.peek(); {
		case c == '"' || c == '\'':
			s.str()
		case isBareKey(c):
			for !s.eof() && isBareKey(s.peek()) {
				s.next()
			}
		default:
			return n
		}
		n++
		s.skip(false)
		if s.peek() != '.' {
			return n
		}
		s.next()
	}
}

// str skips a string of any of the four kinds.
func (s *nestScannerByte) str() {
	q := s.peek()
	if s.has(string([]byte{q, q, q})) {
		s.next()
		s.next()
		s.next()
		for !s.eof() && !s.has(string([]byte{q, q, q})) {
			if q == '"' && s.peek() == '\\' {
				s.next()
			}
			s.next()
		}
		for range 3 {
			s.next()
		}
		for s.peek() == q { // up to two quotes may end the content
			s.next()
		}
		return
	}
	s.next()
	for !s.eof() && s.peek() != q && s.peek() != '\n' {
		if q == '"' && s.peek() == '\\' {
			s.next()
		}
		s.next()
	}
	s.next()
}

// value skips one value whose own depth is depth, counting the arrays and
// inline tables it opens on an explicit stack (the depth of what each
// holds), so that nothing here recurses either.
func (s *nestScannerByte) value(file string, depth, max int) error {
	var open []byte // '[' or '{' for each open container
	var inner []int // depth of the values of each open container
	cur := depth
	for {
		inTable := len(open) > 0 && open[len(open)-1] == '{'
		s.skip(len(open) > 0)
		if s.eof() {
			return nil
		}
		if inTable && s.peek() != '}' && s.peek() != ',' {
			k := s.keyParts()
			s.skip(true)
			if k == 0 || s.peek() != '=' {
				s.next()
				continue
			}
			s.next()
			s.skip(false)
			cur = inner[len(inner)-1] + k - 1
		}
		p := s.pos(file)
		switch c := s.peek(); c {
		case '[', '{':
			s.next()
			if cur+1 > max {
				return tooDeep(p, max)
			}
			open = append(open, c)
			inner = append(inner, cur+1)
			cur++
			continue
		case ']', '}':
			s.next()
			if len(open) > 0 {
				open, inner = open[:len(open)-1], inner[:len(inner)-1]
			}
		case ',':
			s.next()
		case '"', '\'':
			s.str()
		default:
			start := s.i
			for !s.eof() {
				c := s.peek()
				if c == ',' || c == ']' || c == '}' || c == '\n' || c == '#' || c == '[' || c == '{' {
					break
				}
				s.next()
			}
			if s.i == start {
				if len(open) == 0 {
					return nil // no value before the end of the line
				}
				s.next()
			}
		}
		if len(open) == 0 {
			s.toEOL()
			return nil
		}
		cur = inner[len(inner)-1]
	}
}
