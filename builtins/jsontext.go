package builtins

import (
	stdjson "encoding/json"
	"fmt"
	"strconv"

	"go.starlark.net/starlark"
)

// JSONText stands in a Starlark value for a list or dict that Go has
// already written as JSON (gather_packages' manifest entries): json.encode
// puts the text where the value would be, as go.starlark.net's encoder
// would have written the value, and Measure counts it as the value it
// stands for, so the limits refuse what they refused before.
type JSONText struct {
	text string
	n    int      // elements: a JSON text of none is false
	m    measured // what Measure counts for the value written
}

var (
	_ starlark.Value = (*JSONText)(nil)
	_ stdjson.Marshaler
)

// JSON is the text.
func (j *JSONText) JSON() string { return j.text }

// MarshalJSON is how go.starlark.net's encoder, which json.encode leaves
// some values to, writes it.
func (j *JSONText) MarshalJSON() ([]byte, error) { return []byte(j.text), nil }

func (j *JSONText) String() string        { return j.text }
func (j *JSONText) Type() string          { return "json_text" }
func (j *JSONText) Freeze()               {}
func (j *JSONText) Truth() starlark.Bool  { return j.n > 0 }
func (j *JSONText) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: json_text") }

// AppendJSONQuoted quotes s as go.starlark.net's encoder does: strconv
// for printable ASCII, encoding/json for the rest.
func AppendJSONQuoted(b []byte, s string) []byte {
	// Almost every string (a store path, a name) has nothing to escape:
	// one pass finds the first byte that needs more.
	i := 0
	for i < len(s) && jsonPlain[s[i]] {
		i++
	}
	if i == len(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 {
			q, _ := stdjson.Marshal(s)
			return append(b, q...)
		}
	}
	// Printable ASCII with a quote, a backslash or DEL.
	return strconv.AppendQuote(b, s)
}

// jsonPlain holds the bytes a string quoted by AppendJSONQuoted keeps as
// they are: printable ASCII but the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
