package stdlib_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/stdlib"
)

// evaluated is an evaluated config with what the tests look at: every
// write_file output by name and by store path, the etc/ tree and the
// manifest, strictly decoded.
type evaluated struct {
	sys      *lang.System
	byName   map[string]*builtins.Derivation
	byPath   map[string]*builtins.Derivation
	etc      map[string]etcEntry
	manifest *manifest.Manifest
}

type etcEntry struct {
	Source string `json:"source"`
	Mode   string `json:"mode"`
}

func evalConfig(t *testing.T, config string) *evaluated {
	t.Helper()
	sys, err := lang.Eval(config, lang.Options{StoreDir: "/store"})
	if err != nil {
		t.Fatalf("eval %s: %v", config, err)
	}
	ev := &evaluated{sys: sys, byName: map[string]*builtins.Derivation{}, byPath: map[string]*builtins.Derivation{}}
	for _, d := range builtins.Closure(sys.Drv) {
		if d.Builder != "builtin:write_file" {
			continue
		}
		if old, dup := ev.byName[d.Name]; dup && old.ID() != d.ID() {
			t.Errorf("two different write_file outputs are named %s: name them apart so the golden output can tell them apart", d.Name)
		}
		ev.byName[d.Name] = d
		ev.byPath[d.Out()] = d
	}
	if err := json.Unmarshal([]byte(sys.Drv.Getenv("etc")), &ev.etc); err != nil {
		t.Fatalf("system env etc: %v", err)
	}
	m, err := manifest.Decode(strings.NewReader(sys.Drv.Getenv("manifest")))
	if err != nil {
		t.Fatalf("%s: %v", config, err)
	}
	ev.manifest = m
	return ev
}

// etcFile returns the content of /etc/<rel> in the generation.
func (ev *evaluated) etcFile(t *testing.T, rel string) (string, bool) {
	t.Helper()
	e, ok := ev.etc[rel]
	if !ok {
		return "", false
	}
	d, ok := ev.byPath[e.Source]
	if !ok {
		t.Fatalf("etc/%s: source %s is not a write_file output of this evaluation", rel, e.Source)
	}
	return d.Getenv("content"), true
}

// content returns the content of the write_file output at store path p.
func (ev *evaluated) content(t *testing.T, p string) string {
	t.Helper()
	d, ok := ev.byPath[p]
	if !ok {
		t.Fatalf("%s is not a write_file output of this evaluation", p)
	}
	return d.Getenv("content")
}

// writeTemp writes content to a fresh file named name, mode 0644 (logrotate
// refuses group- or world-writable configs).
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tool returns the path of a real validator, or skips the test naming it:
// scripts/install-deps installs every one of them.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("validator %s (Debian package %s) is not installed on this machine: run scripts/install-deps", name, pkg)
	}
	return p
}

// netns returns unshare, skipping the test when this machine cannot make
// a private network namespace (not root): validators that need
// CAP_NET_ADMIN run in one so they never touch this machine's network.
func netns(t *testing.T) string {
	t.Helper()
	unshare := tool(t, "unshare", "util-linux")
	if out, err := exec.Command(unshare, "-n", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a private network namespace here (%v: %s): nft -c, iptables-restore --test and ip need one", err, out)
	}
	return unshare
}

func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// examples returns every examples/*/config.toml.
func examples(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob("../examples/*/config.toml")
	if err != nil || len(matches) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	sort.Strings(matches)
	return matches
}

func exampleName(config string) string { return filepath.Base(filepath.Dir(config)) }

// starlarkModule executes an embedded stdlib module on its own, so its
// check functions can be tested against the real tools directly.
func starlarkModule(t *testing.T, name string) starlark.StringDict {
	t.Helper()
	pre := builtins.Predeclared()
	pre["config_error"] = starlark.NewBuiltin("config_error", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return nil, errors.New("config_error called")
	})
	pre["declared_in"] = pre["config_error"]
	pre["target_system"] = starlark.String("x86_64-linux")
	pre["default"] = lang.DefaultBuiltin
	pre["nexis_command"] = lang.NexisCommandBuiltin
	settings := starlark.NewDict(2)
	settings.SetKey(starlark.String("stdenv"), starlark.None)
	settings.SetKey(starlark.String("sandbox_paths"), starlark.NewList(nil))
	pre["build_settings"] = settings
	for k, v := range builtins.Checks() {
		pre[k] = v
	}
	cache := map[string]starlark.StringDict{}
	var load func(th *starlark.Thread, module string) (starlark.StringDict, error)
	load = func(th *starlark.Thread, module string) (starlark.StringDict, error) {
		if g, ok := cache[module]; ok {
			return g, nil
		}
		src, err := fs.ReadFile(stdlib.FS, strings.TrimPrefix(module, "@stdlib//"))
		if err != nil {
			return nil, err
		}
		g, err := starlark.ExecFileOptions(&syntax.FileOptions{Set: true, TopLevelControl: true}, th, module, src, pre)
		cache[module] = g
		return g, err
	}
	th := &starlark.Thread{Name: "test", Load: load}
	// build.star makes the stdenv's fetch derivations when it loads.
	(&builtins.Context{StoreDir: "/store", System: "x86_64-linux", Limits: builtins.Limits{MaxDepth: 100, MaxBytes: 1 << 30}}).Attach(th)
	g, err := load(th, "@stdlib//"+name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return g
}

// callCheck calls a check function of a module with one string; "" means
// the value was accepted.
func callCheck(t *testing.T, mod starlark.StringDict, fn, arg string) string {
	t.Helper()
	f, ok := mod[fn].(starlark.Callable)
	if !ok {
		t.Fatalf("no function %s", fn)
	}
	v, err := starlark.Call(&starlark.Thread{Name: "check"}, f, starlark.Tuple{starlark.String(arg)}, nil)
	if err != nil {
		t.Fatalf("%s(%q): %v", fn, arg, err)
	}
	switch x := v.(type) {
	case starlark.String:
		return string(x)
	case starlark.Tuple:
		// (value, error) pairs
		s, _ := starlark.AsString(x[1])
		return s
	}
	return fmt.Sprint(v)
}

func netipParsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }

func starlarkString(s string) starlark.String { return starlark.String(s) }

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

// CryptVerifies says whether the system's crypt(3) (libxcrypt on
// Debian, as on NexisOS) accepts password for hash, through Python's
// crypt module, which calls it.
func CryptVerifies(t *testing.T, password, hash string) bool {
	t.Helper()
	py := tool(t, "python3", "python3")
	cmd := exec.Command(py, "-W", "ignore", "-c", "import crypt, sys; h = sys.argv[1]; print(crypt.crypt(sys.stdin.read(), h) == h)", hash)
	cmd.Stdin = strings.NewReader(password)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 crypt: %v", err)
	}
	return strings.TrimSpace(string(out)) == "True"
}
