package lang

import (
	"math"
	"testing"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// TestEncodeJSONAsLibrary: what encodeJSON writes is what
// go.starlark.net's json.encode writes, byte for byte, and what it leaves
// to the library is what it cannot write the same way.
func TestEncodeJSONAsLibrary(t *testing.T) {
	huge := starlark.MakeInt64(math.MaxInt64)
	huge2, err := starlark.Binary(syntax.STAR, huge, starlark.MakeInt64(1000))
	if err != nil {
		t.Fatal(err)
	}
	dict := func(kv ...starlark.Value) *starlark.Dict {
		d := starlark.NewDict(len(kv) / 2)
		for i := 0; i < len(kv); i += 2 {
			if err := d.SetKey(kv[i], kv[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	s := func(x string) starlark.Value { return starlark.String(x) }
	same := []starlark.Value{
		starlark.None, starlark.True, starlark.False,
		starlark.MakeInt64(0), starlark.MakeInt64(-42), huge, huge2,
		starlark.Float(0), starlark.Float(1.5), starlark.Float(-1e300), starlark.Float(1e-7), starlark.Float(3),
		s(""), s("plain"), s(`quote " and \ backslash`), s("tab\tnewline\n"), s("del\x7f"), s("été ☃"), s("<a&b>"), s("bad \xff utf-8"),
		starlark.NewList(nil), starlark.Tuple{}, dict(),
		starlark.NewList([]starlark.Value{s("a"), starlark.MakeInt64(1), starlark.Tuple{starlark.None, starlark.True}}),
		dict(s("z"), s("last"), s("a"), s("first"), s("é"), dict(s("m"), starlark.NewList([]starlark.Value{dict()}))),
	}
	// Every byte, alone and among others.
	for c := range 256 {
		same = append(same, s(string([]byte{byte(c)})), s("a"+string([]byte{byte(c)})+"z\"q"))
	}
	encode := json.Module.Members["encode"]
	thread := &starlark.Thread{}
	for _, v := range same {
		want, err := starlark.Call(thread, encode, starlark.Tuple{v}, nil)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		got, ok := encodeJSON(v)
		if !ok || got != string(want.(starlark.String)) {
			t.Errorf("encodeJSON(%s) = %q, %v; the library writes %s", v, got, ok, want)
		}
	}
	cycle := starlark.NewList(nil)
	cycle.Append(cycle)
	deep := starlark.Value(starlark.NewList(nil))
	for range maxJSONDepth + 1 {
		deep = starlark.NewList([]starlark.Value{deep})
	}
	st := starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"a": s("b")})
	for _, v := range []starlark.Value{
		starlark.Float(math.NaN()), starlark.Float(math.Inf(1)),
		dict(starlark.MakeInt64(1), s("int key")),
		st, starlark.NewList([]starlark.Value{st}),
		cycle, deep,
		starlark.NewSet(0),
	} {
		if got, ok := encodeJSON(v); ok {
			t.Errorf("encodeJSON(%s) = %q, want it left to the library", v, got)
		}
	}
}
