package builtins

import (
	"fmt"
	"testing"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// gatherPackagesSrc makes packages of every shape gather_packages takes
// and the list system.star builds from them the Starlark way.
const gatherPackagesSrc = `
pkgs = {
    "a": derivation(name = "a", builder = "/bin/sh"),
    "b-ü": derivation(name = "b", version = "1.0", builder = "/bin/sh", passthru = {"runtime_dirs": ["/var/lib/b", "$HOME/\"q\" <&>", "\x7f", "ü"]}),
    "c": derivation(name = "c", builder = "/bin/sh", passthru = {"runtime_dirs": ("x",), "runtime_env": {"A": "1"}, "context_file": "c.cil"}),
    "d": derivation(name = "d", builder = "/bin/sh", passthru = {"runtime_dirs": [], "runtime_env": {}, "context_file": None}),
}
fast = gather_packages(pkgs)
slow = [{
    "name": n,
    "version": p.version,
    "path": p.out,
    "runtime_dirs": list(p.passthru.get("runtime_dirs") or []),
} for n, p in pkgs.items()]
none = gather_packages({})
result = (fast, slow, none, [])
`

// TestJSONTextAsItsValue: the manifest entries gather_packages writes are
// what either JSON encoder writes for the list they stand for, and
// Measure refuses them at exactly the limits it refuses that list, at
// any depth.
func TestJSONTextAsItsValue(t *testing.T) {
	r := run(t, gatherPackagesSrc).(starlark.Tuple)
	fast, ok := r[0].(interface {
		Attr(string) (starlark.Value, error)
	})
	if !ok || r[0] == starlark.None {
		t.Fatalf("gather_packages = %s, want the Go path's struct", r[0])
	}
	text, _ := fast.Attr("manifest")
	none, _ := r[2].(interface {
		Attr(string) (starlark.Value, error)
	}).Attr("manifest")
	encode := json.Module.Members["encode"].(*starlark.Builtin)
	for _, pair := range [][2]starlark.Value{{text, r[1]}, {none, r[3]}} {
		j, list := pair[0].(*JSONText), pair[1]
		if j.Truth() != list.Truth() {
			t.Errorf("%s is %v, its list %v", j, j.Truth(), list.Truth())
		}
		want, err := starlark.Call(&starlark.Thread{}, encode, starlark.Tuple{list}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if j.JSON() != string(want.(starlark.String)) {
			t.Errorf("gather_packages wrote\n%s\nthe library writes\n%s", j.JSON(), want)
		}
		// Where the library encoder meets it: inside what only the
		// library writes (a struct).
		in := func(v starlark.Value) starlark.Value {
			return starlark.NewList([]starlark.Value{starlark.String("x"), starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"v": v})})
		}
		got, err1 := starlark.Call(&starlark.Thread{}, encode, starlark.Tuple{in(j)}, nil)
		want, err2 := starlark.Call(&starlark.Thread{}, encode, starlark.Tuple{in(list)}, nil)
		if fmt.Sprint(got, err1) != fmt.Sprint(want, err2) {
			t.Errorf("inside a struct, the library writes %v, %v for the text and %v, %v for the list", got, err1, want, err2)
		}

		// The size the list measures: the least MaxBytes it passes.
		size := int64(0)
		for Measure(list, Limits{MaxDepth: 100, MaxBytes: size}) != nil {
			size++
		}
		for _, wrap := range []func(starlark.Value) starlark.Value{
			func(v starlark.Value) starlark.Value { return v },
			func(v starlark.Value) starlark.Value {
				d := starlark.NewDict(1)
				_ = d.SetKey(starlark.String("packages"), v)
				return starlark.NewList([]starlark.Value{starlark.String("before"), d, starlark.MakeInt(1)})
			},
			in,
		} {
			for depth := 1; depth <= 7; depth++ {
				for bytes := size - 2; bytes <= size+70; bytes++ {
					lim := Limits{MaxDepth: depth, MaxBytes: bytes}
					if got, want := fmt.Sprint(Measure(wrap(j), lim)), fmt.Sprint(Measure(wrap(list), lim)); got != want {
						t.Errorf("%s at depth %d, bytes %d: Measure = %s, of its list %s", wrap(j), depth, bytes, got, want)
					}
				}
			}
		}
	}
}
