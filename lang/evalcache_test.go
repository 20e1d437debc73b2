package lang

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// useCacheDir points nexis's cache directory at a temporary one.
func useCacheDir(t *testing.T) string {
	top := t.TempDir()
	prev := cacheDir
	cacheDir = func() string { return top }
	t.Cleanup(func() { cacheDir = prev })
	return top
}

// TestEvalCache: a cached evaluation is found only while every file it
// read is unchanged, and whatever change to the config directory leaves
// an entry valid leaves the evaluation's result as it was: for every file
// of examples/full, changed and removed in turn, either the cache misses
// or a fresh evaluation gives the cached system.
func TestEvalCache(t *testing.T) {
	useCacheDir(t)
	dir := filepath.Join(t.TempDir(), "full")
	copyTree(t, "../examples/full", dir)
	cfg := filepath.Join(dir, "config.toml")

	opts := Options{Inputs: &Inputs{}}
	sys, err := Eval(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	SaveEval(cfg, opts, sys, []string{"printed while evaluating"})
	c, ok := LookupEval(cfg, Options{})
	if !ok {
		t.Fatal("no cache entry for the evaluation just saved")
	}
	if c.Out != sys.Drv.Out() || c.ID != sys.Drv.ID() || len(c.Prints) != 1 {
		t.Fatalf("cached %s %s %q, want %s %s and one print", c.Out, c.ID, c.Prints, sys.Drv.Out(), sys.Drv.ID())
	}
	kinds := map[string]int{}
	for _, i := range c.Inputs {
		kinds[i.Kind]++
	}
	for _, k := range []string{"file", "tree", "stat"} {
		if kinds[k] == 0 {
			t.Errorf("no %q input recorded (recorded %v)", k, kinds)
		}
	}
	if _, ok := LookupEval(cfg, Options{System: "aarch64-linux"}); ok {
		t.Error("an entry for x86_64-linux was used for aarch64-linux")
	}

	// Whatever the cache answers for the directory as it is now must
	// be what evaluating it gives.
	check := func(what string) (hit bool) {
		t.Helper()
		c, hit := LookupEval(cfg, Options{})
		if !hit {
			return false
		}
		sys, err := Eval(cfg, Options{})
		if err != nil {
			t.Errorf("%s: the cache hit but evaluating fails: %v", what, err)
		} else if sys.Drv.Out() != c.Out || sys.Drv.ID() != c.ID {
			t.Errorf("%s: the cache gives %s, evaluating gives %s", what, c.Out, sys.Drv.Out())
		}
		return true
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	misses := 0
	for _, f := range files {
		orig, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(f, append(append([]byte{}, orig...), "\n# changed\n"...), fi.Mode())
		if !check("changed " + f) {
			misses++
		}
		os.Remove(f)
		check("removed " + f)
		os.WriteFile(f, orig, fi.Mode())
		if !check("restored " + f) {
			t.Errorf("restored %s: the cache misses", f)
		}
	}
	// Every file of examples/full is read by its evaluation.
	if misses != len(files) {
		t.Errorf("a change missed the cache for %d of %d files", misses, len(files))
	}

	// A new file where a resolved name was absent.
	if err := os.WriteFile(filepath.Join(dir, "new-file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("new file")

	f := evalCacheFile(cfg, Options{})
	if _, ok := LookupEval(cfg, Options{}); !ok {
		t.Fatal("the entry was not used")
	}
	good, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// An entry others can write is not believed: they could point the
	// switch at any system in the store.
	os.Chmod(f, 0o666)
	if _, ok := LookupEval(cfg, Options{}); ok {
		t.Error("an entry writable by others was used")
	}
	os.Chmod(f, 0o600)
	for what, entry := range map[string]string{
		"not JSON":          "{not json",
		"not a store path":  strings.Replace(string(good), `"out":"/store/`, `"out":"/elsewhere/`, 1),
		"no derivation ID":  strings.Replace(string(good), `"id":"`, `"id":"","was":"`, 1),
		"no recorded input": strings.Replace(string(good), `"inputs":[`, `"inputs":[],"was":[`, 1),
	} {
		if entry == string(good) {
			t.Fatalf("%s: the test did not change the entry", what)
		}
		if err := os.WriteFile(f, []byte(entry), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok := LookupEval(cfg, Options{}); ok {
			t.Errorf("a damaged entry (%s) was used", what)
		}
	}

	// A file that changed while the evaluation read it twice: no entry.
	os.Remove(f)
	in := &Inputs{}
	opts = Options{Inputs: in}
	if sys, err = Eval(cfg, opts); err != nil {
		t.Fatal(err)
	}
	in.add(Input{Path: "config.toml", Kind: "file", Digest: "something else"})
	SaveEval(cfg, opts, sys, nil)
	if _, err := os.Stat(f); err == nil {
		t.Error("an evaluation that saw a file change was cached")
	}
}
