package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// ToGo converts a Starlark value to plain Go values (for templates and
// JSON): dicts with string keys become map[string]any, sequences []any.
// Store objects become their paths.
func ToGo(v starlark.Value) (any, error) {
	switch x := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Int:
		if i, ok := x.Int64(); ok {
			return i, nil
		}
		return nil, fmt.Errorf("integer %s is too large", x)
	case starlark.Float:
		return float64(x), nil
	case starlark.String:
		return string(x), nil
	case *Derivation:
		return x.Out(), nil
	case *Source:
		return x.Path, nil
	case *starlark.Dict:
		m := make(map[string]any, x.Len())
		for _, item := range x.Items() {
			k, ok := starlark.AsString(item[0])
			if !ok {
				return nil, fmt.Errorf("dict key %s is not a string", item[0])
			}
			gv, err := ToGo(item[1])
			if err != nil {
				return nil, fmt.Errorf("[%q]: %w", k, err)
			}
			m[k] = gv
		}
		return m, nil
	case *starlarkstruct.Struct:
		d := starlark.StringDict{}
		x.ToStringDict(d)
		m := make(map[string]any, len(d))
		for k, fv := range d {
			gv, err := ToGo(fv)
			if err != nil {
				return nil, fmt.Errorf(".%s: %w", k, err)
			}
			m[k] = gv
		}
		return m, nil
	case starlark.Bytes:
		// Indexable, each element bytes again: it would be taken apart
		// without end.
		return nil, fmt.Errorf("cannot use a %s here", v.Type())
	case starlark.Indexable:
		out := make([]any, x.Len())
		for i := range out {
			gv, err := ToGo(x.Index(i))
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = gv
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot use a %s here", v.Type())
}
