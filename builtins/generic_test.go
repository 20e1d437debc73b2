package builtins_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
)

// commonEntries are [[packages]] entries of the kinds the generic
// builder makes in Go (packages.star's common case), and a few it
// leaves to Starlark, side by side.
const commonEntries = `
[nexis]
sandbox_paths = ["/opt/toolchain"]

[[packages]]
name = "zlib"
version = "1.3"
source = "https://example.org/zlib-1.3.tar.gz"
hash = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
build_system = "configure"
build_flags = ["--static", "--with-x=it's \"quoted\"", "two words"]

[[packages]]
name = "make-all"
version = "2"
source = "https://example.org/m.tar.xz?download=1#top"
hash = "blake3:2222222222222222222222222222222222222222222222222222222222222222"
dependencies = ["zlib"]
make_flags = ["CC=cc", "V=1"]
build_targets = ["all"]
install_flags = ["DESTDIR="]
install_targets = ["install-strip"]
env = { CFLAGS = "-O2 -g", X_1 = "a 'b'" }
runtime_dirs = ["var/lib/m"]
timeout = 60
source_subdir = "src/sub"
tools = ["perl", "autotools", "perl"]

[[packages]]
name = "zipped"
version = "0.1"
source = "https://example.org/z.ZIP?x=1"
hash = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
build_system = "cmake"
build_flags = ["-DX=1"]
tools = ["cmake", "meson"]
dependencies = ["zlib", "make-all", "zlib"]

[[packages]]
name = "meta"
version = "1"
dependencies = ["zipped"]
env = {}
runtime_dirs = []

[[packages]]
name = "mesonish"
version = "latest"
source = "https://example.org/mesonish.tar.gz"
build_system = "meson"
fallback_to_source = true

[[packages]]
name = "patched"
version = "1"
source = "https://example.org/p.tar.gz"
hash = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
patches = ["fix.patch"]
pre_build_script = ""

[[packages]]
name = "custom"
version = "1"
build_system = "custom"
build_script = "build.sh"
dependencies = ["patched"]

[[packages]]
name = "daemon"
version = "1"
source = "https://example.org/d.tar.gz"
hash = "sha256:5555555555555555555555555555555555555555555555555555555555555555"
runtime_dirs = ["/var/lib/daemon", "run"]
`

const commonLock = `version = 1

[packages.mesonish]
version = "4.2"
source_hash = "sha256:6666666666666666666666666666666666666666666666666666666666666666"
`

// evalBothWays evaluates config (with files beside it) with the common
// case made in Go and made in Starlark, and returns what each printed:
// the closure as JSON and as a tree, and every package's passthru and
// timeout; or the error.
func evalBothWays(t *testing.T, config string, files map[string]string, opts lang.Options) (fast, slow string) {
	t.Helper()
	dir := t.TempDir()
	files["config.toml"] = config
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	render := func(on bool) string {
		builtins.SetCommonPackages(on)
		defer builtins.SetCommonPackages(true)
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
		for _, kv := range sys.Packages.Items() {
			d := kv[1].(*builtins.Derivation)
			fmt.Fprintf(&b, "%s %s timeout=%d passthru=%s\n", kv[0], d.ID(), d.Timeout, d.Passthru)
		}
		return b.String()
	}
	return render(true), render(false)
}

// TestCommonPackagesAsStarlark: the derivations the generic builder makes
// in Go are those package() makes in Starlark, byte for byte, and so are
// the errors of entries it leaves to Starlark.
func TestCommonPackagesAsStarlark(t *testing.T) {
	files := map[string]string{"nexis.lock": commonLock, "fix.patch": "--- a\n+++ b\n", "build.sh": "make\n"}
	fast, slow := evalBothWays(t, commonEntries, files, lang.Options{})
	if strings.HasPrefix(fast, "error") {
		t.Fatalf("the config does not evaluate:\n%s", fast)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Errorf("made in Go and in Starlark differ (-starlark +go):\n%s", diff)
	}
	bad := map[string]string{
		"hash algorithm":   `hash = "md5:1111111111111111111111111111111111111111111111111111111111111111"`,
		"short hash":       `hash = "sha256:11"`,
		"upper-case hash":  `hash = "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`,
		"no hash":          ``,
		"build system":     "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nbuild_system = \"scons\"",
		"make flags":       "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nbuild_system = \"cmake\"\nmake_flags = [\"V=1\"]",
		"reserved env":     "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nenv = { src = \"x\" }",
		"env name":         "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nenv = { 1X = \"x\" }",
		"env NUL":          "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nenv = { X = \"a\\u0000b\" }",
		"source_subdir":    "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nsource_subdir = \"../up\"",
		"unknown tool":     "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\ntools = [\"rust\"]",
		"latest unlocked":  "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nversion = \"latest\"",
		"scheme":           "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nsource = \"ftp://example.org/x.tar.gz\"",
		"runtime dir":      "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nruntime_dirs = [\"/store/x\"]",
		"name with spaces": "hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\nversion = \"1 2\"",
	}
	for what, lines := range bad {
		t.Run(what, func(t *testing.T) {
			config := "[[packages]]\nname = \"p\"\nsource = \"https://example.org/p.tar.gz\"\n" + lines + "\n"
			fast, slow := evalBothWays(t, config, map[string]string{}, lang.Options{})
			if !strings.HasPrefix(fast, "error") {
				t.Fatalf("the config evaluates:\n%s", fast)
			}
			if fast != slow {
				t.Errorf("made in Go, the error is\n%s\nand in Starlark\n%s", fast, slow)
			}
		})
	}
}

// TestCommonPackagesTakeFewSteps: a common entry is made in a handful of
// Starlark steps (the budget below passes in Go and not in Starlark),
// which is what makes a large config quick to evaluate.
func TestCommonPackagesTakeFewSteps(t *testing.T) {
	var b strings.Builder
	const n = 200
	for i := range n {
		fmt.Fprintf(&b, "[[packages]]\nname = \"p%d\"\nversion = \"1\"\nsource = \"https://example.org/p%d.tar.gz\"\n", i, i)
		fmt.Fprintf(&b, "hash = \"sha256:%064x\"\nbuild_system = \"configure\"\nbuild_flags = [\"--x\"]\n", i)
		if i > 0 {
			fmt.Fprintf(&b, "dependencies = [\"p%d\"]\n", i-1)
		}
	}
	fast, slow := evalBothWays(t, b.String(), map[string]string{}, lang.Options{MaxSteps: 300 * n})
	if strings.HasPrefix(fast, "error") {
		t.Errorf("made in Go, %d packages take more than %d steps:\n%s", n, 300*n, fast)
	}
	if !strings.Contains(slow, "steps") {
		t.Errorf("made in Starlark, %d packages take fewer than %d steps: the budget tells nothing", n, 300*n)
	}
}
