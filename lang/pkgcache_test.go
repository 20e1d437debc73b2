package lang

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/store/treehash"
)

// evalCached evaluates config with the package cache in dir and returns
// the closure as JSON and as a tree, and how many packages were
// evaluated rather than taken from the cache. With a cache, it lets each
// entry go once its package is evaluated (Options.NoGlobals), as nexis
// eval, build and switch do.
func evalCached(t *testing.T, config, dir string) (string, int) {
	t.Helper()
	sys, err := Eval(config, Options{Cache: dir != "", CacheDir: dir, NoGlobals: dir != ""})
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, sys.Drv); err != nil {
		t.Fatal(err)
	}
	if err := WriteTree(&b, sys.Drv); err != nil {
		t.Fatal(err)
	}
	fresh := -1
	if c := sys.ev.cache; c != nil {
		fresh = int(c.fresh.Load())
	}
	return b.String(), fresh
}

// TestPackageCacheStates: a config evaluates to the same bytes without
// the cache, with a cold one, a warm one, and a damaged one.
func TestPackageCacheStates(t *testing.T) {
	config := generate(t, 200)
	dir := t.TempDir()
	want, _ := evalCached(t, config, "")
	cold, fresh := evalCached(t, config, dir)
	if cold != want || fresh != 200 {
		t.Fatalf("cold: same output %v, %d evaluated, want 200", cold == want, fresh)
	}
	warm, fresh := evalCached(t, config, dir)
	if warm != want || fresh != 0 {
		t.Fatalf("warm: same output %v, %d evaluated, want 0", warm == want, fresh)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pkgs"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	good, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string][]byte{
		"truncated":  good[:len(good)/2],
		"empty":      nil,
		"flipped":    append(append([]byte(nil), good[:len(good)/3]...), append([]byte{good[len(good)/3] ^ 0x40}, good[len(good)/3+1:]...)...),
		"garbage":    bytes.Repeat([]byte{0xff}, 4096),
		"old format": append([]byte("nexis package cache 0\n"), good[len(pkgCacheMagic):]...),
	}
	for name, b := range damage {
		if err := os.WriteFile(files[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
		got, fresh := evalCached(t, config, dir)
		if got != want || fresh != 200 {
			t.Fatalf("%s cache: same output %v, %d evaluated, want all 200", name, got == want, fresh)
		}
	}
	// A cache others may write is not believed.
	if err := os.Chmod(files[0], 0o666); err != nil {
		t.Fatal(err)
	}
	if got, fresh := evalCached(t, config, dir); got != want || fresh != 200 {
		t.Fatalf("a world-writable cache was used: %d evaluated", fresh)
	}
}

// TestPackageCacheIsIncremental: after one package is edited, it and
// the packages that depend on it are evaluated, nothing else; after a
// module is edited, the packages made by it.
func TestPackageCacheIsIncremental(t *testing.T) {
	config := generate(t, 200)
	dir := t.TempDir()
	evalCached(t, config, dir)
	text, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	// pkg185 is built by the stdlib; those after it that depend on it,
	// directly or not, are 192 and 199.
	edited := strings.Replace(string(text), `version = "1.185"`, `version = "1.185.1"`, 1)
	if edited == string(text) {
		t.Fatal("no pkg185 to edit")
	}
	if err := os.WriteFile(config, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	got, fresh := evalCached(t, config, dir)
	if fresh != 3 {
		t.Fatalf("editing one package evaluated %d packages, want 3", fresh)
	}
	want, _ := evalCached(t, config, "")
	if got != want {
		t.Fatal("the incremental evaluation differs from a full one")
	}
	mod := filepath.Join(filepath.Dir(config), "mod.star")
	src, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, []byte(strings.Replace(string(src), `version = "2.0"`, `version = "2.1"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	got, fresh = evalCached(t, config, dir)
	want, _ = evalCached(t, config, "")
	if got != want {
		t.Fatal("after a module changed, the cached evaluation differs from a full one")
	}
	if fresh < 50 || fresh == 200 {
		t.Fatalf("editing the module evaluated %d packages, want its 50 and their dependents", fresh)
	}
}

// TestPackageCacheSeesFiles: a package that hashes a file of the config
// is evaluated again when the file changes, and a whole-config cache of
// a switch made with packages from the cache still sees the file.
func TestPackageCacheSeesFiles(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../examples/minimal", dir)
	config := filepath.Join(dir, "config.toml")
	cache := t.TempDir()
	evalCached(t, config, cache)
	if err := os.WriteFile(filepath.Join(dir, "files/motd/share/motd/motd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, fresh := evalCached(t, config, cache)
	want, _ := evalCached(t, config, "")
	if got != want || fresh != 1 {
		t.Fatalf("after a source changed: same output %v, %d evaluated, want 1", got == want, fresh)
	}
	inputs := &Inputs{}
	if _, err := Eval(config, Options{Cache: true, CacheDir: cache, Inputs: inputs}); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range inputs.List() {
		found = found || in.Path == "files/motd" && in.Kind == "tree"
	}
	if !found {
		t.Fatalf("a package from the cache did not record what it read: %v", inputs.List())
	}
}

// TestPackageCacheLeavesOutWhatCannotBeKept: a package whose passthru
// holds what the cache cannot keep (a function) is left out of it, with
// the packages that depend on it, and the others are kept: the file
// still decodes.
func TestPackageCacheLeavesOutWhatCannotBeKept(t *testing.T) {
	config := generate(t, 40)
	mod := `load("@stdlib//build.star", "build_package")

def package(n, deps):
    if n == 0:
        return derivation(name = "pkg0", builder = "/bin/sh", passthru = {"f": len})
    return build_package(name = "pkg%d" % n, version = "2.0", deps = deps.values(), build_system = "none")
`
	if err := os.WriteFile(filepath.Join(filepath.Dir(config), "mod.star"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := evalCached(t, config, "")
	dir := t.TempDir()
	if cold, fresh := evalCached(t, config, dir); cold != want || fresh != 40 {
		t.Fatalf("cold: same output %v, %d evaluated, want 40", cold == want, fresh)
	}
	// pkg0 and those that reach it: pkg7, pkg14, ... pkg35.
	if warm, fresh := evalCached(t, config, dir); warm != want || fresh != 6 {
		t.Fatalf("warm: same output %v, %d evaluated, want 6", warm == want, fresh)
	}
}

// TestPackageCacheQueueFull: the entries that find the queue to the
// file full are written after the packages, and the file holds every
// package as when each is written as it ends.
func TestPackageCacheQueueFull(t *testing.T) {
	config := generate(t, 200)
	want, _ := evalCached(t, config, "")
	for _, queue := range []int{1, 4096} {
		func() {
			defer func(q int) { aheadQueue = q }(aheadQueue)
			aheadQueue = queue
			dir := t.TempDir()
			if cold, fresh := evalCached(t, config, dir); cold != want || fresh != 200 {
				t.Fatalf("queue %d, cold: same output %v, %d evaluated, want 200", queue, cold == want, fresh)
			}
			if warm, fresh := evalCached(t, config, dir); warm != want || fresh != 0 {
				t.Fatalf("queue %d, warm: same output %v, %d evaluated, want 0", queue, warm == want, fresh)
			}
		}()
	}
}

// TestPackageCacheFailureWritesNothing: a cold evaluation writes the
// file as its packages run; when one fails, nothing is left in the
// cache directory, not even the temporary file, and the next evaluation
// evaluates every package.
func TestPackageCacheFailureWritesNothing(t *testing.T) {
	config := generate(t, 40)
	mod := filepath.Join(filepath.Dir(config), "mod.star")
	good, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	failing := `load("@stdlib//build.star", "build_package")

def package(n, deps):
    if n == 36:
        fail("pkg36 fails")
    return build_package(name = "pkg%d" % n, version = "2.0", deps = deps.values(), build_system = "none")
`
	if err := os.WriteFile(mod, []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Eval(config, Options{Cache: true, CacheDir: dir}); err == nil || !strings.Contains(err.Error(), "pkg36 fails") {
		t.Fatalf("eval: %v, want pkg36's failure", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.pkgs"))
	temps, _ := filepath.Glob(filepath.Join(dir, durable.TempPrefix+"*"))
	if len(left) != 0 || len(temps) != 0 {
		t.Fatalf("a failed evaluation left %v %v", left, temps)
	}
	if err := os.WriteFile(mod, good, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := evalCached(t, config, "")
	if cold, fresh := evalCached(t, config, dir); cold != want || fresh != 40 {
		t.Fatalf("after the failure: same output %v, %d evaluated, want 40", cold == want, fresh)
	}
}

// TestPackageCacheGivenIsTheKey: each entry of the file keeps what its
// package was given, of which its key is the digest (after the base): a
// package given the same bytes takes the key kept without hashing them.
// A file of another base (another nexis, other settings), with the same
// name and whole, is not believed.
func TestPackageCacheGivenIsTheKey(t *testing.T) {
	config := generate(t, 200)
	dir := t.TempDir()
	want, _ := evalCached(t, config, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.pkgs"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	data := readPkgCache(files[0])
	if data == nil || len(data.entries) != 200 || len(data.known) != 200 {
		t.Fatalf("the file does not hold 200 entries: %v", data)
	}
	for k, e := range data.entries {
		if treehash.Sum(data.base[:], []byte(e.given)) != k || data.known[e.given] != k {
			t.Fatalf("entry %x: its key is not the digest of what it was given", k[:4])
		}
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	head := len(pkgCacheMagic) + len(treehash.Digest{})
	b[head] ^= 1 // the body starts with the base
	sum := treehash.Sum(b[head:])
	copy(b[len(pkgCacheMagic):], sum[:])
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, fresh := evalCached(t, config, dir); got != want || fresh != 200 {
		t.Fatalf("a file of another base: same output %v, %d evaluated, want all 200", got == want, fresh)
	}
}

// FuzzPackageCacheDecode: a body that is not one the encoder wrote (the
// digest in front is checked first, but a file may be of an old nexis's
// making) decodes or is refused; it does not crash nexis or make it
// allocate what the body could not hold.
func FuzzPackageCacheDecode(f *testing.F) {
	config := generate(f, 20)
	dir := f.TempDir()
	if _, err := Eval(config, Options{Cache: true, CacheDir: dir}); err != nil {
		f.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pkgs"))
	if len(files) != 1 {
		f.Fatalf("cache files: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[len(pkgCacheMagic)+len(treehash.Digest{}):])
	f.Fuzz(func(t *testing.T, body []byte) {
		d := &cacheDecoder{b: body}
		if data, err := d.decode(); err == nil && data == nil {
			t.Fatal("no error and nothing decoded")
		}
	})
}
