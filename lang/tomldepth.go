package lang

import (
	"bytes"
	"fmt"
)

// The TOML library, the key position scanner, the merge of includes and
// the conversion to Starlark all recurse into nested values, so a small
// document of nested arrays ([[[[...]]]]) once took 15 GB and 25 s, and a
// deeper one overflowed the Go stack, which no recover catches. So a
// document is measured before anything recurses into it, by one loop
// over its bytes with no recursion and no allocation.
//
// Depth counts the tables and arrays that hold a value, the document's
// root table included: `x = 1` is 1 deep, `[a.b] x = [1]` is 4 ([[a]]
// counts the array and its element table). The measure is a bound, never
// a parse: on a document that is not valid TOML it still ends, and the
// TOML library reports the syntax error.

// checkNesting refuses a document whose values nest more than max deep,
// naming where the limit is passed.
func checkNesting(file string, src []byte, max int) error {
	s := &nestScanner{src: src, line: 1, col: 1}
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

func tooDeep(p Pos, max int) error {
	return &Error{Pos: p, Msg: fmt.Sprintf("values nest more than %d deep (the limit of --max-depth): flatten the structure", max)}
}

type nestScanner struct {
	src       []byte
	i         int
	line, col int
}

func (s *nestScanner) eof() bool { return s.i >= len(s.src) }

func (s *nestScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *nestScanner) next() {
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

func (s *nestScanner) pos(file string) Pos { return Pos{File: file, Line: s.line, Col: s.col} }

// triple says whether three quotes q are next.
func (s *nestScanner) triple(q byte) bool {
	return len(s.src)-s.i >= 3 && s.src[s.i] == q && s.src[s.i+1] == q && s.src[s.i+2] == q
}

// skip skips blanks and comments, and newlines too when nl is set.
func (s *nestScanner) skip(nl bool) {
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

func (s *nestScanner) toEOL() {
	j := bytes.IndexByte(s.src[s.i:], '\n')
	if j < 0 {
		j = len(s.src) - s.i
	}
	s.within(s.i + j)
}

// within moves to j, no newline being before it: most of a document is
// passed this way, a run of bytes at a time.
func (s *nestScanner) within(j int) {
	s.col += j - s.i
	s.i = j
}

// keyParts reads a dotted key and returns how many parts it has.
func (s *nestScanner) keyParts() int {
	n := 0
	for {
		s.skip(false)
		switch c := s.peek(); {
		case c == '"' || c == '\'':
			s.str()
		case isBareKey(c):
			j := s.i
			for j < len(s.src) && isBareKey(s.src[j]) {
				j++
			}
			s.within(j)
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

func isBareKey(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// str skips a string of any of the four kinds.
func (s *nestScanner) str() {
	q := s.peek()
	if s.triple(q) {
		s.next()
		s.next()
		s.next()
		for !s.eof() && !s.triple(q) {
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
	for {
		j := s.i
		for j < len(s.src) && s.src[j] != q && s.src[j] != '\n' && s.src[j] != '\\' {
			j++
		}
		s.within(j)
		if s.eof() || s.peek() == q || s.peek() == '\n' {
			break
		}
		// A backslash: in a basic string it escapes the next byte.
		if q == '"' {
			s.next()
		}
		s.next()
	}
	s.next()
}

// value skips one value whose own depth is depth, counting the arrays and
// inline tables it opens on an explicit stack (the depth of what each
// holds), so that nothing here recurses either.
func (s *nestScanner) value(file string, depth, max int) error {
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
