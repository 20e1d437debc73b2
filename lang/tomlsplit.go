package lang

import (
	"bytes"
	"errors"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/BurntSushi/toml"

	"github.com/nexisos/nexis/store/treehash"
)

// A large config is mostly [[packages]] entries, and BurntSushi/toml
// decodes 13 MB/s on one core. Each entry is a table of its own: once the
// first [[packages]] header is passed, every header of such a document
// opens a package or a table inside the current one, and no key can
// reach anything before it. So a document of that shape is cut at
// [[packages]] headers into parts (and the part before the first
// package), the parts are decoded in parallel and the packages joined in
// order. A document of any other shape, or one a part of which does not
// decode, is decoded whole: what decodes and the errors are those of the
// whole document.
//
// Where a part ends depends on the text around it (a header whose next
// bytes hash to a multiple of partEvery), not on where the document
// starts, so an edit changes the part it is in and no other: the parts'
// decoded values are kept in a cache (tomlcache.go) by their digest, and
// after an edit one part of a large config is decoded again.

// minSplit is the size below which a document is decoded whole.
const minSplit = 256 << 10

// partEvery is how many packages a part holds, on average.
const partEvery = 32

// decodeTOML decodes a document, the parts of a large one from cache
// (if c is not nil) or in parallel.
func decodeTOML(src []byte, c *tomlCache) (map[string]any, error) {
	return decodeChecked(src, nil, c)
}

// decodeChecked is decodeTOML after check (checkNesting with the file's
// name and the limit; nil for none) accepts the document. A part found
// in the cache is not checked again: it was kept only after it passed,
// and the cache file is one per limit (pkgCacheFile). A document checks
// as its parts do, each starting at a header, where the check starts
// over; when one fails, the whole document is checked, for the error
// (and its line) that checking it whole gives. A document decoded whole
// is checked whole first, as before.
func decodeChecked(src []byte, check func([]byte) error, c *tomlCache) (map[string]any, error) {
	if len(src) >= minSplit {
		data, ok, err := decodeParts(src, check, c)
		if ok || err != nil {
			return data, err
		}
	}
	if check != nil {
		if err := check(src); err != nil {
			return nil, err
		}
	}
	var data map[string]any
	err := decodeBytes(src, &data)
	return data, err
}

// decodeBytes is toml.Decode without first copying text to a string:
// the decoder reads it into a copy of its own anyway.
func decodeBytes(text []byte, v *map[string]any) error {
	_, err := toml.NewDecoder(bytes.NewReader(text)).Decode(v)
	return err
}

// A decodedPart is a part of a document as decoded or found in the
// cache, kept there only once the whole document is known to be of the
// shape that is cut.
type decodedPart struct {
	i     int // where the part is in the document
	value map[string]any
	err   error
	key   treehash.Digest
	found bool // value came from the cache
	keep  bool // value was decoded and may be kept (see keepable)
	fresh freshPart
	// entries are the digests of the packages' encodings (see
	// keptPart), nil when the part's were not computed
	entries []byte
}

// normalTables is an array of tables already normalised: the packages
// of a document decoded in parts, each normalised by the goroutine that
// decoded it (or by encodePackages, or kept so), not again all at once
// as the document is merged (5 ms of a 10,000-package config's).
type normalTables []any

// normaliseEntries normalises the packages of part v, which is decoded
// but not kept: a part kept is normalised as it is encoded.
func normaliseEntries(v map[string]any) {
	if list, ok := v["packages"].([]map[string]any); ok {
		for _, e := range list {
			normalise(e)
		}
	}
}

// decodeParts cuts src (see packageCuts) and decodes src[:cuts[0]] and
// the parts between cuts in parallel, each as soon as it is cut: false
// when src is not of the shape that is cut or a part does not decode,
// with the error of check on the whole document when a part fails it.
func decodeParts(src []byte, check func([]byte) error, c *tomlCache) (map[string]any, bool, error) {
	type bounds struct{ i, start, end int }
	next := make(chan bounds, 64)
	var (
		mu      sync.Mutex
		decoded []decodedPart
		tooDeep atomic.Bool
		wg      sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for b := range next {
				text := src[b.start:b.end]
				p := decodedPart{i: b.i}
				if c != nil {
					p.key = treehash.Sum(text)
					p.value, p.entries, p.found = c.get(p.key)
				}
				switch {
				case p.found:
				case check != nil && check(text) != nil:
					tooDeep.Store(true)
					p.err = errTooDeepPart
				default:
					p.err = decodeBytes(text, &p.value)
					p.keep = c != nil && p.err == nil && keepable(p.value)
					switch {
					case !p.keep:
						normaliseEntries(p.value)
					case b.i == 0:
						p.fresh.value = p.value
					default:
						// A part that is not of packages is refused
						// below, before anything is kept.
						p.fresh.kept, p.keep = encodePackages(p.value, len(text))
						p.entries = p.fresh.kept.entries
						if !p.keep {
							normaliseEntries(p.value)
						}
					}
				}
				mu.Lock()
				decoded = append(decoded, p)
				mu.Unlock()
			}
		})
	}
	// n parts are sent, the next from last on: the part before the
	// first cut, then one from each cut to the next, and the last.
	n, last := 0, 0
	ok := scanCuts(src, func(off int) {
		next <- bounds{n, last, off}
		n, last = n+1, off
	})
	cut := ok && n >= 2
	if cut {
		next <- bounds{n, last, len(src)}
		n++
	}
	close(next)
	wg.Wait()
	if !cut {
		return nil, false, nil
	}
	if tooDeep.Load() {
		if err := check(src); err != nil {
			return nil, false, err
		}
	}
	parts := make([]map[string]any, n)
	for _, p := range decoded {
		if p.err != nil {
			return nil, false, nil
		}
		parts[p.i] = p.value
	}
	data := parts[0]
	if data == nil {
		data = map[string]any{}
	}
	if _, ok := data["packages"]; ok {
		return nil, false, nil
	}
	entries := 0
	for _, p := range parts[1:] {
		list, ok := p["packages"].([]map[string]any)
		if !ok || len(p) != 1 {
			return nil, false, nil
		}
		entries += len(list)
	}
	pkgs := make(normalTables, 0, entries)
	for _, p := range parts[1:] {
		for _, e := range p["packages"].([]map[string]any) {
			pkgs = append(pkgs, e)
		}
	}
	for _, p := range decoded {
		switch {
		case p.found:
			c.keep(p.key)
		case p.keep:
			c.put(p.key, p.fresh)
		}
		if p.i > 0 && p.entries != nil {
			c.decodedFrom(p.value["packages"].([]map[string]any), p.entries)
		}
	}
	// The prefix's map is the cache's: the result gets its own.
	out := make(map[string]any, len(data)+1)
	maps.Copy(out, data)
	out["packages"] = pkgs
	return out, true, nil
}

var errTooDeepPart = errors.New("a part nests too deep")

// packageCuts returns where to cut src (the first [[packages]] header,
// then the headers that end a part), or nil when src is small or not of
// the shape described above.
func packageCuts(src []byte) []int {
	if len(src) < minSplit {
		return nil
	}
	var cuts []int
	if !scanCuts(src, func(off int) { cuts = append(cuts, off) }) || len(cuts) < 2 {
		return nil
	}
	return cuts
}

// scanCuts calls cut with each place to cut src, in order, as it finds
// them: false when src turns out not to be of the shape that is cut
// (what was cut is then of no use).
func scanCuts(src []byte, cut func(off int)) bool {
	cuts := 0
	s := tomlLines{src: src}
	for {
		off, header, ok := s.nextHeader()
		if !ok {
			break
		}
		name, array := headerName(header)
		switch {
		case array && string(name) == "packages":
			if cuts == 0 || partEnds(src[off:]) {
				cuts++
				cut(off)
			}
		case len(name) > len("packages.") && string(name[:len("packages.")]) == "packages.":
			if cuts == 0 {
				return false
			}
		default:
			if cuts > 0 {
				return false
			}
		}
	}
	return !s.bad
}

// partEnds says whether a part starts at the [[packages]] header that
// text starts with: FNV-1a of the header's line and the next one.
func partEnds(text []byte) bool {
	h := uint32(2166136261)
	lines := 0
	for _, c := range text[:min(len(text), 200)] {
		h = (h ^ uint32(c)) * 16777619
		if c == '\n' {
			if lines++; lines == 2 {
				break
			}
		}
	}
	return h%partEvery == 0
}

// headerName returns the key of a table header line ("[[ packages ]]" →
// "packages", true), or nil for a key with quotes or anything unusual.
func headerName(h []byte) ([]byte, bool) {
	array := bytes.HasPrefix(h, []byte("[["))
	h = bytes.TrimLeft(h, "[")
	end := bytes.IndexByte(h, ']')
	if end < 0 {
		return nil, false
	}
	name := bytes.TrimSpace(h[:end])
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return nil, false
		}
	}
	return name, array
}

// tomlLines finds the table headers of a document: a '[' that starts a
// line outside strings, arrays and inline tables.
type tomlLines struct {
	src   []byte
	i     int
	depth int  // open arrays and inline tables of a value
	bad   bool // a string did not end: the document is decoded whole
}

func (s *tomlLines) nextHeader() (int, []byte, bool) {
	src := s.src
	for {
		i := s.i
		for i < len(src) && !headerBytes[src[i]] {
			i++
		}
		s.i = i
		if i == len(src) {
			return 0, nil, false
		}
		switch c := src[i]; c {
		case '#':
			if end := bytes.IndexByte(src[i:], '\n'); end >= 0 {
				s.i += end
			} else {
				s.i = len(src)
			}
		case '[':
			if s.depth == 0 && lineStart(src, i) {
				end := bytes.IndexByte(src[i:], '\n')
				if end < 0 {
					end = len(src) - i
				}
				s.i += end
				return i, src[i:s.i], true
			}
			s.depth++
			s.i++
		case '{':
			s.depth++
			s.i++
		case ']', '}':
			if s.depth > 0 {
				s.depth--
			}
			s.i++
		default:
			if !s.skipString(c) {
				s.bad = true
				return 0, nil, false
			}
		}
	}
}

// headerBytes are the bytes nextHeader looks at: what opens or closes a
// header, an array, an inline table, a string or a comment.
var headerBytes = [256]bool{'#': true, '[': true, ']': true, '{': true, '}': true, '"': true, '\'': true}

// lineStart says whether only blanks come before src[i] on its line. A
// newline found before it this way is outside strings and comments: a
// string or comment holding it would end after it, on this line, with a
// byte that is not blank.
func lineStart(src []byte, i int) bool {
	for i > 0 {
		i--
		switch src[i] {
		case '\n':
			return true
		case ' ', '\t', '\r':
		default:
			return false
		}
	}
	return true
}

// skipString moves past the string starting at s.i (one-line or
// multi-line, basic or literal).
func (s *tomlLines) skipString(q byte) bool {
	src := s.src
	triple := func(i int) bool { return len(src)-i >= 3 && src[i] == q && src[i+1] == q && src[i+2] == q }
	if triple(s.i) {
		s.i += 3
		for s.i < len(src) {
			if q == '"' && src[s.i] == '\\' {
				s.i += 2
				continue
			}
			if triple(s.i) {
				s.i += 3
				for s.i < len(src) && src[s.i] == q { // up to two quotes end the content
					s.i++
				}
				return true
			}
			s.i++
		}
		return false
	}
	i := s.i + 1
	for {
		// The quote that may end the string is found first, then
		// whether a newline or an escape comes before it.
		end := bytes.IndexByte(src[i:], q)
		if end < 0 {
			end = len(src) - i
		}
		text := src[i : i+end]
		if nl := bytes.IndexByte(text, '\n'); nl >= 0 {
			text = text[:nl]
		}
		esc := -1
		if q == '"' {
			esc = bytes.IndexByte(text, '\\')
		}
		switch {
		case esc >= 0:
			i += esc + 2
		case len(text) < end || i+end == len(src):
			s.i = i + len(text)
			return false
		default:
			s.i = i + end + 1
			return true
		}
		if i >= len(src) {
			s.i = len(src)
			return false
		}
	}
}
