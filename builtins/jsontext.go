package builtins

import (
	stdjson "encoding/json"
	"fmt"
	"strconv"

	"go.starlark.net/starlark"
)

// JSONText stands in a Starlark value for a list or dict that Go has
// already written as JSON (system_packages' manifest entries): json.encode
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
	plain := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x80:
			q, _ := stdjson.Marshal(s)
			return append(b, q...)
		case c == '"' || c == '\\' || c == 0x7f:
			plain = false
		}
	}
	if plain {
		// What strconv writes for printable ASCII with nothing to escape.
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return strconv.AppendQuote(b, s)
}
