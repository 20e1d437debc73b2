package lang

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/stdlib"
)

// TestCompiledStdlibCache: evaluating from compiled programs read back
// from the disk cache gives the same bytes and the same errors as
// compiling from source, and a damaged cache entry is compiled again.
func TestCompiledStdlibCache(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "starlark")
	prev := cacheDir
	cacheDir = func() string { return top }
	t.Cleanup(func() { cacheDir = prev; compiled.Clear() })

	bad := filepath.Join(t.TempDir(), "config.toml")
	src, err := os.ReadFile("../examples/minimal/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bad, bytes.Replace(src, []byte(`timezone = "UTC"`), []byte(`timezone = "Mars/Olympus"`), 1), 0o644)
	evalBoth := func() ([]byte, string) {
		compiled.Clear()
		_, js := evalJSON(t, "../examples/full/config.toml")
		_, err := Eval(bad, Options{})
		if err == nil {
			t.Fatal("an unknown timezone evaluated")
		}
		return js, FormatError(err, true)
	}

	fresh, freshErr := evalBoth()
	ents, _ := os.ReadDir(dir)
	if len(ents) == 0 {
		t.Fatal("no compiled stdlib module was cached")
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left in the cache", e.Name())
		}
	}
	cached, cachedErr := evalBoth()
	if !bytes.Equal(fresh, cached) {
		t.Error("evaluating from cached programs gave different JSON")
	}
	if freshErr != cachedErr {
		t.Errorf("error from cached programs:\n%s\nwant:\n%s", cachedErr, freshErr)
	}

	for _, e := range ents {
		os.WriteFile(filepath.Join(dir, e.Name()), []byte("not a compiled program"), 0o644)
	}
	damaged, damagedErr := evalBoth()
	if !bytes.Equal(fresh, damaged) || freshErr != damagedErr {
		t.Error("a damaged cache changed the evaluation")
	}
}

// TestPrecompiledStdlibIsUsed: the modules an evaluation compiles ahead,
// while it reads the config, are under the keys its loads ask for: the
// predeclared names do not depend on the config.
func TestPrecompiledStdlibIsUsed(t *testing.T) {
	cfg, err := LoadConfig("../examples/full/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	opts := withDefaults(Options{})
	ahead := (&evaluator{opts: opts}).predeclared(starlark.None)
	ev := newEvaluator(cfg, opts)
	mods, err := fs.Glob(stdlib.FS, "*.star")
	if err != nil || len(mods) == 0 {
		t.Fatalf("stdlib modules: %v %v", mods, err)
	}
	for _, m := range mods {
		src, _ := fs.ReadFile(stdlib.FS, m)
		if programKey(stdlibPrefix+m, src, ahead) != programKey(stdlibPrefix+m, src, ev.pre) {
			t.Errorf("%s is compiled ahead under another key than its load asks for", m)
		}
	}
}
