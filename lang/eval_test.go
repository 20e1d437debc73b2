package lang

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
)

// copyTree copies src into dst with plain file operations, so the test
// does not depend on cp's flags.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func evalJSON(t testing.TB, config string) (*System, []byte) {
	t.Helper()
	sys, err := Eval(config, Options{})
	if err != nil {
		t.Fatalf("eval %s: %v", config, err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, sys.Drv); err != nil {
		t.Fatal(err)
	}
	return sys, b.Bytes()
}

// TestEvalIsPure: the same config at two absolute paths, evaluated from
// two working directories, gives the same bytes.
func TestEvalIsPure(t *testing.T) {
	a, b := t.TempDir(), filepath.Join(t.TempDir(), "deeper", "copy")
	copyTree(t, "../examples", a)
	copyTree(t, "../examples", b)
	_, first := evalJSON(t, filepath.Join(a, "full/config.toml"))
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir(b); err != nil {
		t.Fatal(err)
	}
	_, second := evalJSON(t, "full/config.toml")
	if !bytes.Equal(first, second) {
		t.Fatal("evaluating a copy of examples/full elsewhere gave different JSON")
	}
	if bytes.Contains(first, []byte(a)) || bytes.Contains(second, []byte(b)) {
		t.Fatal("the config's absolute directory leaked into the evaluation")
	}
}

// TestTemplateChangeIsLocal: changing one byte of a template used by a
// config file changes that file's derivation and what depends on it (the
// system), and nothing unrelated.
func TestTemplateChangeIsLocal(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../examples/full", dir)
	config := filepath.Join(dir, "config.toml")
	before, _ := evalJSON(t, config)

	tpl := filepath.Join(dir, "templates/ansible.cfg.tpl")
	data, err := os.ReadFile(tpl)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.IndexByte(data, '\n') - 1 // the last byte of the first line
	data[i]++
	if err := os.WriteFile(tpl, data, 0o644); err != nil {
		t.Fatal(err)
	}
	after, _ := evalJSON(t, config)

	old := map[string]*builtins.Derivation{}
	for _, d := range builtins.Closure(before.Drv) {
		old[d.ID()] = d
	}
	var changed []string
	for _, d := range builtins.Closure(after.Drv) {
		if old[d.ID()] == nil {
			changed = append(changed, d.Name)
		}
	}
	if len(changed) == 0 {
		t.Fatal("changing a template changed no derivation")
	}
	// Everything that changed must be the rendered file or depend on it.
	var file *builtins.Derivation
	for _, d := range builtins.Closure(after.Drv) {
		if d.Builder == "builtin:write_file" && strings.Contains(d.Getenv("content"), string(data[:i+1])) {
			file = d
		}
	}
	if file == nil {
		t.Fatalf("no generated file holds the changed template line %q", data[:i+1])
	}
	for _, d := range builtins.Closure(after.Drv) {
		if old[d.ID()] != nil {
			continue
		}
		if !dependsOn(d, file) {
			t.Errorf("%s changed but does not depend on the changed file %s", d.Name, file.Name)
		}
	}
	if old[after.Drv.ID()] != nil {
		t.Error("the system derivation did not change")
	}
	t.Logf("changed: %v", changed)
}

func dependsOn(d, target *builtins.Derivation) bool {
	for _, x := range builtins.Closure(d) {
		if x.ID() == target.ID() {
			return true
		}
	}
	return false
}

// generate writes a config of n packages, each depending on up to three
// earlier ones, every fourth one from a .star module.
func generate(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	var b strings.Builder
	b.WriteString("[system]\nhostname = \"bench\"\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "[[packages]]\nname = \"pkg%d\"\n", i)
		var deps []string
		for k := 1; k <= 3 && i-k*7 >= 0; k++ {
			deps = append(deps, fmt.Sprintf("%q", fmt.Sprintf("pkg%d", i-k*7)))
		}
		if len(deps) > 0 {
			fmt.Fprintf(&b, "dependencies = [%s]\n", strings.Join(deps, ", "))
		}
		if i%4 == 0 {
			fmt.Fprintf(&b, "module = \"mod.star\"\nargs = { n = %d }\n\n", i)
			continue
		}
		fmt.Fprintf(&b, "version = \"1.%d\"\nsource = \"https://example.org/pkg%d-1.%d.tar.gz\"\n", i, i, i)
		fmt.Fprintf(&b, "hash = \"sha256:%064x\"\nbuild_system = \"configure\"\nbuild_flags = [\"--enable-static\"]\n\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	mod := `load("@stdlib//build.star", "build_package")

def package(n, deps):
    return build_package(name = "pkg%d" % n, version = "2.0", deps = deps.values(), build_system = "none")
`
	if err := os.WriteFile(filepath.Join(dir, "mod.star"), []byte(mod), 0o644); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(dir, "config.toml")
}

// BenchmarkEval10k evaluates a generated config of 10,000 packages with
// dependencies, every package evaluated (no package cache). Target on a
// 2-core machine: under 0.5 s. It reports the live heap after
// evaluation, the bytes allocated, and the CPU time per evaluation: on a
// shared machine wall time swings with the neighbours' load, CPU time
// much less.
func BenchmarkEval10k(b *testing.B) {
	config := generate(b, 10_000)
	b.ReportAllocs()
	var sys *System
	var err error
	cpu0 := cpuTime()
	for b.Loop() {
		if sys, err = Eval(config, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(sys)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MB-live")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestScanPositionsTerminates: the position scanner runs beside the TOML
// parser, so it also sees documents that do not parse; on every prefix of
// a real config it must stop.
func TestScanPositionsTerminates(t *testing.T) {
	src, err := os.ReadFile("../examples/full/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= len(src); i += 7 {
		scanPositions("config.toml", src[:i])
	}
	scanPositions("x", []byte("[[a\n= = {\n'''\n\"\\"))
	scanPositions("x", []byte("x = [}]\ny = [1, }, 2]\n"))
}

// TestGlobalsSeeTheWholeConfig: -e and the repl see the whole config,
// [[packages]] entries included, though the evaluation converts an entry
// only while its package runs and gives system() the rest: the same
// whether the packages ran or came from the cache.
func TestGlobalsSeeTheWholeConfig(t *testing.T) {
	const n = 40
	config := generate(t, n)
	dir := t.TempDir()
	var want starlark.Value
	for _, state := range []string{"no cache", "cold", "warm"} {
		sys, err := Eval(config, Options{Cache: state != "no cache", CacheDir: dir})
		if err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		got, err := sys.EvalExpr("config")
		if err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		if want == nil {
			want = got
			if v, err := sys.EvalExpr(`[p["name"] for p in config["packages"]][-1]`); err != nil || v != starlark.String(fmt.Sprintf("pkg%d", n-1)) {
				t.Fatalf("%s: the last entry's name is %v (%v)", state, v, err)
			}
			continue
		}
		if eq, err := starlark.Equal(got, want); err != nil || !eq {
			t.Errorf("%s: config differs from an evaluation without the cache", state)
		}
	}
}

// TestCheckErrorComesFirst: the packages are ordered while the config
// is checked (see eval); a config the schema refuses reports the
// schema's error, even where ordering fails too or meets values that
// are not of the schema's shape.
func TestCheckErrorComesFirst(t *testing.T) {
	for name, config := range map[string]string{
		"a dependency not a string": "[[packages]]\nname = \"a\"\ndependencies = [1]\n\n[[packages]]\nname = \"a\"\n",
		"an entry not a table":      "packages = [1, 2]\n",
		"a cycle and a bad key":     "[[packages]]\nname = \"a\"\ndependencies = [\"a\"]\nversion = 1\n",
		"a twin and a bad key":      "[[packages]]\nname = \"a\"\n\n[[packages]]\nname = \"a\"\nverison = \"1\"\n",
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(file)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := cfg.Check(ConfigSchema)
		if want == nil {
			t.Fatalf("%s: the schema takes the config", name)
		}
		_, got := Eval(file, Options{})
		if got == nil || got.Error() != want.Error() {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}
