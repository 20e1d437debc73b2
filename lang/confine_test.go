package lang

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store/treehash"
)

// secret is what the files outside the config directory hold: no
// error and no derivation may ever contain it.
const secret = "CANARY-the-host-secret"

// scratch lays out top/outside (the host's files) and top/a/b/cfg (the
// config directory), writes files (name → content, relative to cfg) and
// links (name → target) and returns cfg and top.
func scratch(t *testing.T, files, links map[string]string) (cfg, top string) {
	t.Helper()
	top = t.TempDir()
	cfg = filepath.Join(top, "a", "b", "cfg")
	outside := filepath.Join(top, "outside")
	for _, d := range []string{cfg, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"shadow":       secret + "\n",
		"evil.star":    "def package():\n    return write_file(\"evil\", \"" + secret + "\")\n",
		"evil.toml":    "[system]\nhostname = \"" + secret + "\"\n",
		"dir/inner":    secret,
		"nexis.lock":   "version = 1\n# " + secret + "\n",
		"secret.tgz":   secret,
		"modules.toml": "",
	} {
		p := filepath.Join(outside, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		content = strings.ReplaceAll(content, "@TOP@", top)
		p := filepath.Join(cfg, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(cfg, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(strings.ReplaceAll(target, "@TOP@", top), p); err != nil {
			t.Fatal(err)
		}
	}
	return cfg, top
}

const leakModule = `[[packages]]
name = "leak"
module = "pkgs/leak.star"
`

// TestReadsStayInConfigDir: every way a config or a module can name a
// file, pointed outside the config directory by `..`, an absolute name
// or a symbolic link, is refused with an error that names the file or
// key, and nothing of the outside file reaches the result.
func TestReadsStayInConfigDir(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		links map[string]string
		want  string
	}{{
		name: "template with ..",
		files: map[string]string{"config.toml": leakModule,
			"pkgs/leak.star": "def package():\n    return write_file(\"leak\", template(\"../../../../outside/shadow\", {}))\n"},
		want: `^pkgs/leak\.star:2:\d+: template\("\.\./\.\./\.\./\.\./outside/shadow"\): \.\./\.\./\.\./\.\./outside/shadow leaves the config directory`,
	}, {
		name: "template through a link to an outside directory",
		files: map[string]string{"config.toml": leakModule,
			"pkgs/leak.star": "def package():\n    return write_file(\"leak\", template(\"../x/shadow\", {}))\n"},
		links: map[string]string{"x": "@TOP@/outside"},
		want:  `^pkgs/leak\.star:2:\d+: template\("\.\./x/shadow"\): x is a symbolic link to /.*/outside, outside the config directory`,
	}, {
		name: "a relative link that climbs out",
		files: map[string]string{"config.toml": leakModule,
			"pkgs/leak.star": "def package():\n    return write_file(\"leak\", template(\"../up/outside/shadow\", {}))\n"},
		links: map[string]string{"up": "../../.."},
		want:  `up is a symbolic link to \.\./\.\./\.\., outside the config directory`,
	}, {
		name:  "a module that is a link out",
		files: map[string]string{"config.toml": leakModule},
		links: map[string]string{"pkgs/leak.star": "@TOP@/outside/evil.star"},
		want:  `^config\.toml:3:1: packages\[0\]\.module: pkgs/leak\.star is a symbolic link to /.*/outside/evil\.star, outside the config directory`,
	}, {
		name: "load with ..",
		files: map[string]string{"config.toml": leakModule,
			"pkgs/leak.star": "load(\"../../../../outside/evil.star\", \"package\")\n"},
		want: `load\("\.\./\.\./\.\./\.\./outside/evil\.star"\): \.\./\.\./\.\./\.\./outside/evil\.star leaves the config directory`,
	}, {
		name:  "includes with ..",
		files: map[string]string{"config.toml": "[includes]\npaths = [\"ok.toml\", \"../../../outside/evil.toml\"]\n", "ok.toml": ""},
		want:  `^config\.toml:2:\d+: includes\.paths\[1\]: \.\./\.\./\.\./outside/evil\.toml leaves the config directory`,
	}, {
		name:  "an absolute include",
		files: map[string]string{"config.toml": "[includes]\npaths = [\"@TOP@/outside/evil.toml\"]\n"},
		want:  `^config\.toml:2:\d+: includes\.paths\[0\]: /.*/outside/evil\.toml is absolute`,
	}, {
		name:  "an include that is a link out",
		files: map[string]string{"config.toml": "[includes]\npaths = [\"more.toml\"]\n"},
		links: map[string]string{"more.toml": "@TOP@/outside/evil.toml"},
		want:  `^config\.toml:2:\d+: includes\.paths: more\.toml \(included from config\.toml\): more\.toml is a symbolic link to /.*, outside the config directory`,
	}, {
		name:  "a config_files source with ..",
		files: map[string]string{"config.toml": "[config_files.leak]\npath = \"/etc/leak\"\nsource = \"../../../outside/shadow\"\n"},
		want:  `^config\.toml:3:1: config_files\.leak\.source: .*\.\./\.\./\.\./outside/shadow leaves the config directory`,
	}, {
		name:  "a config_files source through a link",
		files: map[string]string{"config.toml": "[config_files.leak]\npath = \"/etc/leak\"\nsource = \"x/shadow\"\n"},
		links: map[string]string{"x": "@TOP@/outside"},
		want:  `^config\.toml:3:1: config_files\.leak\.source: .*x is a symbolic link to /.*/outside, outside the config directory`,
	}, {
		name:  "an absolute config_files source",
		files: map[string]string{"config.toml": "[config_files.leak]\npath = \"/etc/leak\"\nsource = \"@TOP@/outside/shadow\"\n"},
		want:  `^config\.toml:3:1: config_files\.leak\.source: .*/outside/shadow is absolute`,
	}, {
		name: "path() of a link out",
		files: map[string]string{"config.toml": leakModule,
			"pkgs/leak.star": "def package():\n    return derivation(name = \"leak\", builder = \"/bin/sh\", inputs = [path(\"dir\")])\n"},
		links: map[string]string{"pkgs/dir": "@TOP@/outside/dir"},
		want:  `^pkgs/leak\.star:2:\d+: path\("dir"\): pkgs/dir is a symbolic link to /.*/outside/dir, outside the config directory`,
	}, {
		name:  "a package source with ..",
		files: map[string]string{"config.toml": "[[packages]]\nname = \"leak\"\nversion = \"1\"\nsource = \"../../../outside/dir\"\nbuild_system = \"none\"\n"},
		want:  `^config\.toml:4:1: packages\[0\]\.source: .*leaves the config directory`,
	}, {
		name:  "fetch_url of a file outside",
		files: map[string]string{"config.toml": "[[packages]]\nname = \"leak\"\nversion = \"1\"\nsource = \"file://@TOP@/outside/secret.tgz\"\nhash = \"sha256:" + strings.Repeat("0", 64) + "\"\n"},
		want:  `^config\.toml:4:1: packages\[0\]\.source: fetch_url\("file:///.*/outside/secret\.tgz"\): /.*/outside/secret\.tgz is outside the config directory`,
	}, {
		name:  "the lock file is a link out",
		files: map[string]string{"config.toml": ""},
		links: map[string]string{"nexis.lock": "@TOP@/outside/nexis.lock"},
		want:  `read lock: nexis\.lock is a symbolic link to /.*, outside the config directory`,
	}} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := scratch(t, c.files, c.links)
			sys, err := Eval(filepath.Join(cfg, "config.toml"), Options{})
			if err == nil {
				var b strings.Builder
				WriteFiles(&b, sys.Drv)
				t.Fatalf("evaluation succeeded; it produced:\n%s", b.String())
			}
			msg := FormatError(err, true)
			if strings.Contains(msg, secret) {
				t.Errorf("the error shows what the outside file holds:\n%s", msg)
			}
			if !regexp.MustCompile(`(?m)` + c.want).MatchString(strings.TrimPrefix(msg, "error: ")) {
				t.Errorf("error:\n%s\nwant it to match %s", msg, c.want)
			}
		})
	}
}

// TestLinksInsideConfigDir: a link that stays inside the config
// directory is followed, and a path() source hashes to what the store
// will compute when it adds the same tree (its links kept as data, never
// followed, even one to a host directory).
func TestLinksInsideConfigDir(t *testing.T) {
	cfg, top := scratch(t, map[string]string{
		"config.toml":      "[includes]\npaths = [\"current/more.toml\"]\n\n[[packages]]\nname = \"p\"\nmodule = \"pkgs/p.star\"\n",
		"v2/more.toml":     "[system]\nhostname = \"inside\"\n",
		"pkgs/p.star":      "def package():\n    return derivation(name = \"p\", builder = \"/bin/sh\", env = {\"t\": template(\"../current/t.tpl\", {})}, inputs = [path(\"../current\"), path(\"../tree\")])\n",
		"v2/t.tpl":         "from the template",
		"tree/a/file":      "data",
		"tree/exec":        "#!/bin/sh\n",
		"tree/a/deep/file": "more",
	}, map[string]string{
		"current":        "v2",
		"tree/host":      "@TOP@/outside",
		"tree/a/sibling": "../exec",
	})
	os.Chmod(filepath.Join(cfg, "tree/exec"), 0o755)
	// Named through a link from elsewhere, as /etc/nexis/config.toml may be.
	elsewhere := filepath.Join(top, "etc-nexis")
	os.MkdirAll(elsewhere, 0o755)
	os.Symlink(filepath.Join(cfg, "config.toml"), filepath.Join(elsewhere, "config.toml"))

	sys, err := Eval(filepath.Join(elsewhere, "config.toml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := sys.Config.data["system"].(map[string]any)["hostname"]; h != "inside" {
		t.Errorf("hostname %v: the include through a link inside was not read", h)
	}
	v, _, _ := sys.Packages.Get(starlark.String("p"))
	d := v.(*builtins.Derivation)
	if d.Getenv("t") != "from the template" {
		t.Errorf("template through a link read %q", d.Getenv("t"))
	}
	for _, s := range d.Srcs {
		want, err := treehash.TreeHash(s.Abs)
		if err != nil {
			t.Fatal(err)
		}
		if s.TreeHash != want.Hex() {
			t.Errorf("source %s (%s): evaluation hashed %s, the store would hash %s", s.Display, s.Abs, s.TreeHash, want.Hex())
		}
		if strings.Contains(s.Abs, "current") {
			t.Errorf("source %s: Abs %s still names the link, not what it leads to", s.Display, s.Abs)
		}
	}
	if len(d.Srcs) != 2 {
		t.Errorf("%d sources, want 2", len(d.Srcs))
	}
}

// TestSpecialFilesRefused: a FIFO in the config directory fails the
// evaluation rather than hanging it.
func TestSpecialFilesRefused(t *testing.T) {
	cfg, _ := scratch(t, map[string]string{"config.toml": leakModule,
		"pkgs/leak.star": "def package():\n    return write_file(\"leak\", template(\"fifo\", {}))\n"}, nil)
	if err := syscall.Mkfifo(filepath.Join(cfg, "pkgs/fifo"), 0o644); err != nil {
		t.Skip("cannot make a FIFO here:", err)
	}
	_, err := Eval(filepath.Join(cfg, "config.toml"), Options{})
	if err == nil || !strings.Contains(err.Error(), "pkgs/fifo is a FIFO, not a regular file") {
		t.Fatalf("got %v, want a refusal of the FIFO", err)
	}
}

// TestFailuresCloseConfigDir: a config that fails to load or evaluate
// leaves no descriptor open for the collector to find. The fuzzers load
// tens of thousands, and ran out of descriptors under a limit of 1,024.
func TestFailuresCloseConfigDir(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("x = \n"), 0o644)
	failing := filepath.Join(dir, "failing.toml")
	os.WriteFile(failing, []byte("[[packages]]\nname = \"p\"\nmodule = \"m.star\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.star"), []byte("def package():\n    fail(\"no\")\n"), 0o644)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[system]\nhostname = \"h\"\n"), 0o644)

	open := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	// A collection now closes what earlier tests left to finalizers.
	runtime.GC()
	before := open()
	for range 20 {
		if _, err := LoadConfig(bad); err == nil {
			t.Fatal("bad.toml loaded")
		}
		if _, err := Eval(failing, Options{}); err == nil {
			t.Fatal("failing.toml evaluated")
		}
		cfg, err := LoadConfig(good)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Close()
		sys, err := Eval(good, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sys.Close()
	}
	if after := open(); after > before {
		t.Errorf("%d descriptors open after 80 loads, %d before", after, before)
	}
}
