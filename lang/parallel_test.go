package lang

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestParallelIsDeterministic: a config evaluated 50 times with
// GOMAXPROCS 1, 2 and 8, with and without the package cache, gives the
// same bytes (the closure as JSON and as a tree, and what it printed),
// and a config with failing packages the same error, whichever packages
// ran first.
func TestParallelIsDeterministic(t *testing.T) {
	ok := generate(t, 300)
	// Prints from a module's load and from packages, and a package that
	// names a dependency's path in a string.
	mod := `load("@stdlib//build.star", "build_package")
print("mod.star loads")

def package(n, deps):
    print("package %d with %d deps" % (n, len(deps)))
    return build_package(name = "pkg%d" % n, version = "2.0", deps = deps.values(), build_system = "none",
                         env = {"SEE": " ".join([str(d) for d in deps.values()])})
`
	if err := os.WriteFile(filepath.Join(filepath.Dir(ok), "mod.star"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := generate(t, 300)
	failing := `load("@stdlib//build.star", "build_package")

def package(n, deps):
    if n % 40 == 0 and n > 100:
        fail("package %d fails" % n)
    return build_package(name = "pkg%d" % n, version = "2.0", deps = deps.values(), build_system = "none")
`
	if err := os.WriteFile(filepath.Join(filepath.Dir(bad), "mod.star"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	run := func(config string, cached bool) string {
		var prints []string
		opts := Options{Print: func(msg string) { prints = append(prints, msg) }}
		if cached {
			opts.Cache, opts.CacheDir = true, cache
		}
		sys, err := Eval(config, opts)
		if err != nil {
			return "error: " + FormatError(err, true) + strings.Join(prints, "\n")
		}
		var b bytes.Buffer
		if err := WriteJSON(&b, sys.Drv); err != nil {
			t.Fatal(err)
		}
		if err := WriteTree(&b, sys.Drv); err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(prints, "\n"))
		return b.String()
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, config := range []string{ok, bad} {
		var want string
		for i := range 50 {
			procs := []int{1, 2, 8}[i%3]
			runtime.GOMAXPROCS(procs)
			// Every other run takes what it can from the package cache
			// (the first of them fills it).
			got := run(config, i%2 == 1)
			if i == 0 {
				want = got
				if config == bad && !strings.Contains(got, "package 120 fails") {
					t.Fatalf("the first failure in order is not the one reported:\n%.2000s", got)
				}
				if config == ok && (!strings.Contains(got, "mod.star loads\npackage 0 with 0 deps") || strings.Count(got, "mod.star loads") != 1) {
					t.Fatalf("prints are not in order:\n%.2000s", got[strings.LastIndex(got, ")\n")+2:])
				}
				continue
			}
			if got != want {
				t.Fatalf("run %d with GOMAXPROCS %d differs from the first (%d bytes, want %d)", i, procs, len(got), len(want))
			}
		}
		t.Logf("%s: %d bytes, 50 runs alike", filepath.Base(filepath.Dir(config)), len(want))
	}
}
