package lang

import (
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Indent writes a value as Starlark with one element or entry per line,
// nested ones indented: the repl's :p.
func Indent(v starlark.Value) string {
	var b strings.Builder
	indent(&b, v, "")
	return b.String()
}

func indent(b *strings.Builder, v starlark.Value, pad string) {
	inner := pad + "    "
	seq := func(open, close string, elems []starlark.Value) {
		if len(elems) == 0 {
			b.WriteString(open + close)
			return
		}
		b.WriteString(open + "\n")
		for _, e := range elems {
			b.WriteString(inner)
			indent(b, e, inner)
			b.WriteString(",\n")
		}
		b.WriteString(pad + close)
	}
	switch x := v.(type) {
	case *starlark.List:
		elems := make([]starlark.Value, x.Len())
		for i := range elems {
			elems[i] = x.Index(i)
		}
		seq("[", "]", elems)
	case starlark.Tuple:
		seq("(", ")", x)
	case *starlark.Dict:
		if x.Len() == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for _, kv := range x.Items() {
			b.WriteString(inner + kv[0].String() + ": ")
			indent(b, kv[1], inner)
			b.WriteString(",\n")
		}
		b.WriteString(pad + "}")
	case *starlarkstruct.Struct:
		names := x.AttrNames()
		sort.Strings(names)
		if len(names) == 0 {
			b.WriteString("struct()")
			return
		}
		b.WriteString("struct(\n")
		for _, n := range names {
			f, _ := x.Attr(n)
			b.WriteString(inner + n + " = ")
			indent(b, f, inner)
			b.WriteString(",\n")
		}
		b.WriteString(pad + ")")
	default:
		b.WriteString(v.String())
	}
}
