package lang

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
)

// The system's derivation holds its manifest as JSON text: json.encode of
// a value with an entry per package, which go.starlark.net's encoder
// writes through a closure, an interface switch, an Items copy and a
// reflective sort per dict (a fifth of system() at 10,000 packages). So
// json.encode first tries encodeJSON, which writes the values a config's
// data is made of (None, bools, ints, finite floats, strings, dicts with
// string keys, lists and tuples, not nested deeper than maxJSONDepth,
// and the JSON text of gather_packages' manifest entries, written in
// place) to the same bytes; for any other value, and for every error,
// the library's encoder runs as before.

// maxJSONDepth is the nesting past which encodeJSON leaves a value to
// the library's encoder, which reports a cycle.
const maxJSONDepth = 64

// encodeJSON returns the JSON text of v as go.starlark.net's json.encode
// writes it, or false when v holds anything else.
func encodeJSON(v starlark.Value) (string, bool) {
	var e jsonEncoder
	b, ok := e.value(make([]byte, 0, 4<<10), v, 0)
	if !ok || len(b) == 0 {
		return "", ok
	}
	// b is not written again: the string is its bytes.
	return unsafe.String(&b[0], len(b)), true
}

// jsonEncoder holds the entries of the dicts being written, each one's
// after its parent's: one slice for the whole value.
type jsonEncoder struct {
	entries []jsonEntry
}

type jsonEntry struct {
	k string
	v starlark.Value
}

func (e *jsonEncoder) value(b []byte, v starlark.Value, depth int) ([]byte, bool) {
	if depth > maxJSONDepth {
		return b, false
	}
	switch x := v.(type) {
	case starlark.NoneType:
		return append(b, "null"...), true
	case starlark.Bool:
		if x {
			return append(b, "true"...), true
		}
		return append(b, "false"...), true
	case starlark.Int:
		if i, ok := x.Int64(); ok {
			return strconv.AppendInt(b, i, 10), true
		}
		return append(b, x.String()...), true
	case starlark.Float:
		if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
			return b, false
		}
		return append(b, x.String()...), true
	case starlark.String:
		return builtins.AppendJSONQuoted(b, string(x)), true
	case *builtins.JSONText:
		return append(b, x.JSON()...), true
	case *starlark.List:
		b = append(b, '[')
		for i := range x.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = e.value(b, x.Index(i), depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case starlark.Tuple:
		b = append(b, '[')
		for i, el := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = e.value(b, el, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case *starlark.Dict:
		start := len(e.entries)
		// Keys and Get rather than Entries, whose closures would move b
		// to the heap on every call.
		for _, k := range x.Keys() {
			s, ok := k.(starlark.String)
			if !ok {
				return b, false
			}
			el, _, _ := x.Get(k)
			e.entries = append(e.entries, jsonEntry{string(s), el})
		}
		slices.SortFunc(e.entries[start:], func(p, q jsonEntry) int { return strings.Compare(p.k, q.k) })
		b = append(b, '{')
		for i := start; i < len(e.entries); i++ {
			if i > start {
				b = append(b, ',')
			}
			b = builtins.AppendJSONQuoted(b, e.entries[i].k)
			b = append(b, ':')
			var ok bool
			if b, ok = e.value(b, e.entries[i].v, depth+1); !ok {
				return b, false
			}
		}
		e.entries = e.entries[:start]
		return append(b, '}'), true
	}
	return b, false
}
