package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// warmConfig writes a config large enough to be decoded in parts
// (tomlsplit.go), whose packages have dependencies and, some of them,
// runtime dirs and a runtime env (a passthru of their own).
func warmConfig(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[system]\nhostname = \"warm\"\n\n")
	for i := range n {
		fmt.Fprintf(&b, "[[packages]]\nname = \"pkg%d\"\nversion = \"1.%d\"\n", i, i)
		if i >= 7 {
			fmt.Fprintf(&b, "dependencies = [\"pkg%d\"]\n", i-7)
		}
		fmt.Fprintf(&b, "source = \"https://example.org/pkg%d.tar.gz\"\nhash = \"sha256:%064x\"\nbuild_system = \"configure\"\n", i, i)
		switch i % 3 {
		case 1:
			fmt.Fprintf(&b, "runtime_dirs = [\"/var/lib/pkg%d\"]\n", i)
		case 2:
			fmt.Fprintf(&b, "env = { PKG_HOME = \"/opt/pkg%d\", \"QUOTED\" = \"a \\\"b\\\" é\" }\n", i)
		}
		b.WriteString("\n")
	}
	config := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if packageCuts([]byte(b.String())) == nil {
		t.Fatal("the config is not decoded in parts")
	}
	return config
}

// TestWarmPathStates: a config decoded in parts, with passthrus the
// package cache shares between derivations, gives the same closure (JSON
// and tree) and the same passthru values without a cache, with cold,
// warm and damaged TOML and package caches, and after an edit.
func TestWarmPathStates(t *testing.T) {
	config := warmConfig(t, 1500)
	dir := t.TempDir()
	passthru := func(dir string) string {
		sys, err := Eval(config, Options{Cache: dir != "", CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		v, err := sys.EvalExpr(`[(n, packages[n].runtime_dirs, packages[n].runtime_env) for n in ["pkg0", "pkg1", "pkg2", "pkg1499"]]`)
		if err != nil {
			t.Fatal(err)
		}
		return v.String()
	}
	want, _ := evalCached(t, config, "")
	wantPassthru := passthru("")
	damage := func(ext string) {
		files, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
		if len(files) != 1 {
			t.Fatalf("%s cache files: %v", ext, files)
		}
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)*2/3] ^= 0x20
		if err := os.WriteFile(files[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name   string
		before func()
	}{
		{"cold", nil},
		{"warm", nil},
		{"damaged TOML cache", func() { damage(".toml") }},
		{"damaged package cache", func() { damage(".pkgs") }},
		{"warm again", nil},
	} {
		if step.before != nil {
			step.before()
		}
		if got, _ := evalCached(t, config, dir); got != want {
			t.Fatalf("%s: the closure differs from an evaluation without cache", step.name)
		}
		if got := passthru(dir); got != wantPassthru {
			t.Fatalf("%s: passthru %s, want %s", step.name, got, wantPassthru)
		}
	}
	text, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(text), "\"/opt/pkg1490\"", "\"/opt/pkg1490-b\"", 1)
	if edited == string(text) {
		t.Fatal("nothing to edit")
	}
	if err := os.WriteFile(config, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	got, fresh := evalCached(t, config, dir)
	if want, _ := evalCached(t, config, ""); got != want {
		t.Fatal("after an edit, the closure differs from an evaluation without cache")
	}
	// pkg1490 and pkg1497 depend on the edit.
	if fresh != 2 {
		t.Fatalf("after an edit, %d packages were evaluated, want 2", fresh)
	}
}

// TestNoGlobalsLetsEntriesGo: with Options.NoGlobals, no [[packages]]
// entry is held once the evaluation is done, the closure is the same,
// and Globals' config has no packages while its packages has them all.
func TestNoGlobalsLetsEntriesGo(t *testing.T) {
	config := warmConfig(t, 1500)
	want, _ := evalCached(t, config, "")
	for _, state := range []string{"cold", "warm"} {
		dir := t.TempDir()
		if state == "warm" {
			evalCached(t, config, dir)
		}
		sys, err := Eval(config, Options{Cache: true, CacheDir: dir, NoGlobals: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range sys.Config.data["packages"].([]any) {
			if e != nil {
				t.Fatalf("%s: entry %d is still held", state, i)
			}
		}
		var b strings.Builder
		if err := WriteJSON(&b, sys.Drv); err != nil {
			t.Fatal(err)
		}
		if err := WriteTree(&b, sys.Drv); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Fatalf("%s: the closure differs from an evaluation that keeps the entries", state)
		}
		v, err := sys.EvalExpr(`("packages" in config, len(packages), config["system"]["hostname"])`)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.String(); got != `(False, 1500, "warm")` {
			t.Fatalf("%s: Globals gives %s", state, got)
		}
	}
}

// TestNoGlobalsPastMaxSteps: the package where the steps pass
// --max-steps is run again, so its entry is let go only once it is
// counted: the error is the one an evaluation that keeps them gives.
func TestNoGlobalsPastMaxSteps(t *testing.T) {
	// Each package runs a module: the generic builder makes an entry
	// without one in Go, in no Starlark steps.
	dir := t.TempDir()
	var b strings.Builder
	for i := range 1500 {
		fmt.Fprintf(&b, "[[packages]]\nname = \"pkg%d\"\nmodule = \"m.star\"\nargs = { n = %d }\n\n", i, i)
	}
	config := filepath.Join(dir, "config.toml")
	for name, text := range map[string]string{
		"config.toml": b.String(),
		"m.star":      "def package(n):\n    total = 0\n    for i in range(10):\n        total += i\n    return derivation(name = \"p%d\" % n, version = str(total), builder = \"/bin/sh\")\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want string
	for _, noGlobals := range []bool{false, true} {
		_, err := Eval(config, Options{MaxSteps: 20_000, NoGlobals: noGlobals})
		if err == nil || !strings.Contains(err.Error(), "20000 steps") || !strings.Contains(err.Error(), "m.star") {
			t.Fatalf("NoGlobals %v: got %v, want the steps error in m.star", noGlobals, err)
		}
		if !noGlobals {
			want = err.Error()
		} else if err.Error() != want {
			t.Fatalf("NoGlobals: %q, want %q", err, want)
		}
	}
}
