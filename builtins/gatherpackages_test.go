package builtins_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
)

// systemCorpus are the packages a system takes something from, of every
// kind: runtime_dirs absolute, per-user and plain, runtime envs, context
// files with SELinux on, odd strings, and module packages whose passthru
// the generic builder does not check (a tuple, two packages of one output
// with different envs).
const systemCorpus = `
[system]
hostname = "odd"

[system.selinux]
mode = "permissive"

[[packages]]
name = "plain"
version = "1.0"
source = "https://example.org/plain-1.0.tar.gz"
hash = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

[[packages]]
name = "dirs"
version = "2.0-rc1"
source = "https://example.org/dirs.tar.gz"
hash = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
runtime_dirs = ["/var/lib/dirs", "$XDG_RUNTIME_DIR/dirs", "$HOME/.cache/d i r s", "${HOME}/braced", "run ü\"<&>\\\u007f"]
env = { DIRS_HOME = "$HOME/.dirs", QUOTE = "it's \"q\" <&> ü" }
context_file = "dirs.cil"

[[packages]]
name = "empty-lists"
version = "1"
runtime_dirs = []
env = {}

[[packages]]
name = "Mixed_Case.9"
version = "0"
dependencies = ["dirs"]
context_file = "dirs.cil"

[[packages]]
name = "tuple"
module = "made.star"
args = { dirs = ["$HOME/t", "/run/made"], env = { A = "1" }, cil = "x" }

[[packages]]
name = "same-out"
module = "made.star"
args = { dirs = ["$HOME/t", "/run/made"], env = { A = "2" }, cil = "y" }
`

const madeModule = `
def package(dirs, env, cil):
    return derivation(
        name = "made",
        version = "1",
        builder = "/bin/sh",
        passthru = {"runtime_dirs": tuple(dirs), "runtime_env": env, "context_file": cil},
    )
`

// evalSystemBothWays evaluates files' config.toml, written in dir, with gather_packages and with
// system.star's Starlark way, and returns what each printed: the closure
// as JSON and as a tree, or the error.
func evalSystemBothWays(t *testing.T, dir string, files map[string]string, opts lang.Options) (fast, slow string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	render := func(on bool) string {
		builtins.SetGatherPackages(on)
		defer builtins.SetGatherPackages(true)
		sys, err := lang.Eval(filepath.Join(dir, "config.toml"), opts)
		if err != nil {
			return strings.ReplaceAll(lang.FormatError(err, false), dir, "$WORK")
		}
		var b bytes.Buffer
		if err := lang.WriteJSON(&b, sys.Drv); err != nil {
			t.Fatal(err)
		}
		if err := lang.WriteTree(&b, sys.Drv); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	return render(true), render(false)
}

// TestGatherPackagesAsStarlark: the system made with gather_packages is
// the one system.star's loops make, byte for byte, and so are the errors
// of packages it leaves to them.
func TestGatherPackagesAsStarlark(t *testing.T) {
	cil := "(type dirs_t)\n"
	for _, tc := range []struct {
		name   string
		config string
		module string
	}{
		{"corpus", systemCorpus, madeModule},
		{"selinux off", strings.Replace(systemCorpus, `"permissive"`, `"disabled"`, 1), madeModule},
		{"no packages", "[system]\nhostname = \"none\"\n", ""},
		// The Starlark way takes these: a string and a dict are
		// iterable there, an int is no runtime dir.
		{"dirs a string", systemCorpus, strings.Replace(madeModule, "tuple(dirs)", `"$HOME/s"`, 1)},
		{"dirs a dict", systemCorpus, strings.Replace(madeModule, "tuple(dirs)", `{"$HOME/k": 1, "/run/k": 2}`, 1)},
		{"dirs not strings", systemCorpus, strings.Replace(madeModule, "tuple(dirs)", `[1, "/run/i"]`, 1)},
		{"dirs None", systemCorpus, strings.Replace(madeModule, "tuple(dirs)", `None`, 1)},
		{"env not a dict", systemCorpus, strings.Replace(madeModule, `"runtime_env": env`, `"runtime_env": ["x"]`, 1)},
		{"no passthru", systemCorpus, strings.Replace(madeModule, `passthru = {"runtime_dirs": tuple(dirs), "runtime_env": env, "context_file": cil},`, ``, 1)},
		// config_error at a runtime dir: the same key and message
		// either way.
		{"bad user dir", strings.Replace(systemCorpus, `"$HOME/.cache/d i r s"`, `"$HOME/$(id)"`, 1), madeModule},
		{"context file None", systemCorpus, strings.Replace(madeModule, `"context_file": cil`, `"context_file": None`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"config.toml": tc.config, "dirs.cil": cil}
			if tc.module != "" {
				files["made.star"] = tc.module
			}
			dir := t.TempDir()
			fast, slow := evalSystemBothWays(t, dir, files, lang.Options{StoreDir: "/store"})
			if diff := cmp.Diff(slow, fast); diff != "" {
				t.Errorf("made with gather_packages (+) and the Starlark way (-) differ:\n%s", diff)
			}
			if tc.name == "corpus" {
				if !strings.Contains(fast, "nexis-runtime-dirs.sh") {
					t.Errorf("the corpus makes no runtime dirs script: it no longer tests them\n%s", fast)
				}
				sys, err := lang.Eval(filepath.Join(dir, "config.toml"), lang.Options{StoreDir: "/store"})
				if err != nil {
					t.Fatal(err)
				}
				if v, err := sys.EvalExpr("gather_packages(packages) != None"); err != nil || v != starlark.True {
					t.Errorf("gather_packages leaves the corpus to Starlark (%v, %v): the test compares nothing", v, err)
				}
			}
		})
	}
}
