package realise_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/stdenvtest"
	"github.com/nexisos/nexis/store/storepath"
)

// What a build sees is its inputs: the stdenv's tree at /usr, nothing of
// the host. perl and python3 are on this host, and are not found until
// the build names the tool layer that has them.
func TestBuildsSeeOnlyTheirInputs(t *testing.T) {
	e := newEnv(t, nil)
	sys := e.eval(t, `
[[packages]]
name = "look"
version = "1"
build_system = "custom"
build_script = "look.sh"

[[packages]]
name = "perl-missing"
version = "1"
build_system = "custom"
build_script = "perl.sh"

[[packages]]
name = "perl-given"
version = "1"
build_system = "custom"
build_script = "perl.sh"
tools = ["perl"]

[[packages]]
name = "python-missing"
version = "1"
build_system = "custom"
build_script = "python.sh"

[[packages]]
name = "python-given"
version = "1"
build_system = "custom"
build_script = "python.sh"
tools = ["meson"]
`, map[string]string{
		"look.sh": `mkdir -p $out
ls / > $out/root
readlink /bin/sh > $out/sh
umask > $out/umask
echo "$TZ $LC_ALL $SOURCE_DATE_EPOCH" > $out/env
id -u > $out/uid
uname -n > $out/hostname
test -x /usr/bin/env
gcc -dumpversion > $out/gcc
`,
		"perl.sh":   "mkdir -p $out; perl -e 'print qq(perl ran\\n)' > $out/said\n",
		"python.sh": "mkdir -p $out; python3 -c 'print(\"python ran\")' > $out/said\n",
	})
	look := pkg(t, sys, "look")
	e.mustBuild(t, look, pkg(t, sys, "perl-given"), pkg(t, sys, "python-given"))
	read := func(d *builtins.Derivation, f string) string {
		b, err := os.ReadFile(e.physical(t, d.Out()+"/"+f))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	root := strings.Fields(read(look, "root"))
	for _, host := range []string{"home", "root", "var", "opt", "srv", "boot", "work"} {
		for _, r := range root {
			if r == host {
				t.Errorf("the sandbox shows the host's /%s: / holds %v", host, root)
			}
		}
	}
	for f, want := range map[string]string{"sh": "dash", "umask": "0022", "env": "UTC C 1", "uid": fmt.Sprint(realise.DefaultBuildUID), "hostname": "localhost"} {
		if got := read(look, f); got != want {
			t.Errorf("%s in the sandbox: %q, want %q", f, got, want)
		}
	}
	if read(pkg(t, sys, "perl-given"), "said") != "perl ran" || read(pkg(t, sys, "python-given"), "said") != "python ran" {
		t.Error("a tool the build named did not run")
	}
	for _, name := range []string{"perl-missing", "python-missing"} {
		d := pkg(t, sys, name)
		res, err := e.build(t, realise.Options{}, d)
		if !errors.Is(err, realise.ErrFailed) || len(res.Failures) != 1 {
			t.Fatalf("%s: a build ran a tool it did not name: %v", name, err)
		}
		if tail := strings.Join(res.Failures[0].Tail, "\n"); !strings.Contains(tail, "not found") {
			t.Errorf("%s: the log does not say the tool is not found:\n%s", name, tail)
		}
	}
}

// libFiles and appFiles are a shared C library and a C++ program linked
// against it (and so against libstdc++, libm and libgcc_s too).
var libFiles = map[string]string{
	"greetlib/greet.h": "void greet(const char *who);\n",
	"greetlib/greet.c": "#include <stdio.h>\n#include \"greet.h\"\nvoid greet(const char *who) { printf(\"hello, %s\\n\", who); }\n",
	"greetlib/Makefile": `libgreet.so: greet.c
	$(CC) -shared -fPIC -O2 -o $@ greet.c
install: libgreet.so
	mkdir -p $(PREFIX)/lib $(PREFIX)/include
	cp libgreet.so $(PREFIX)/lib/
	cp greet.h $(PREFIX)/include/
`,
	"greeter/main.cc": `#include <iostream>
#include <cmath>
extern "C" {
#include "greet.h"
}
int main() { greet("library"); std::cout << "and c++ " << std::sqrt(16.0) << std::endl; return 0; }
`,
	"greeter/Makefile": `greeter: main.cc
	$(CXX) -O2 -o $@ main.cc -lgreet
install: greeter
	mkdir -p $(PREFIX)/bin
	cp greeter $(PREFIX)/bin/
`,
}

const libConfig = `
[[packages]]
name = "greetlib"
version = "1"
source = "greetlib"

[[packages]]
name = "greeter"
version = "1"
source = "greeter"
dependencies = ["greetlib"]
`

// Every ELF output of the test packages and of examples/minimal finds
// its interpreter and libraries in the store (checked by reading the
// files, and by running them with nothing but their closure), and a
// program's closure holds the runtime libc, not the compiler.
func TestELFOutputsResolveInTheStore(t *testing.T) {
	e := newEnv(t, nil)
	sys := e.eval(t, libConfig, libFiles)
	lib, app := pkg(t, sys, "greetlib"), pkg(t, sys, "greeter")
	e.mustBuild(t, app)
	out, err := runInStore(t, e.st, app.Out()+"/bin/greeter")
	if err != nil || out != "hello, library\nand c++ 4\n" {
		t.Fatalf("greeter: %q %v", out, err)
	}

	ex, err := lang.Eval("../examples/minimal/config.toml", evalOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	e.mustBuild(t, ex.Drv)
	hello := pkg(t, ex, "hello")
	if out, err := runInStore(t, e.st, hello.Out()+"/bin/hello"); err != nil || strings.TrimSpace(out) != "Hello from NexisOS" {
		t.Fatalf("examples/minimal hello: %q %v", out, err)
	}

	e.elfInStore(t, lib, app, hello)

	// The check sees a binary that would load the host's libc: the
	// stdenv's own true, copied as it is.
	cp := pkg(t, e.eval(t, "[[packages]]\nname = \"copied\"\nversion = \"1\"\nbuild_system = \"custom\"\nbuild_script = \"cp.sh\"\n",
		map[string]string{"cp.sh": "mkdir -p $out/bin; cp /usr/bin/true $out/bin/\n"}), "copied")
	e.mustBuild(t, cp)
	if problems, err := stdenvtest.ELFProblems(e.st, cp.Out()); err != nil || len(problems) == 0 || !strings.Contains(problems[0], "interpreter /lib64/") {
		t.Errorf("a binary with the host's interpreter passed the check: %v %v", problems, err)
	}
	for _, d := range []*builtins.Derivation{lib, app, hello} {
		closure, err := e.st.Closure([]storepath.Path{mustParse(t, d.Out())})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range closure {
			if strings.HasPrefix(c.Name, "stdenv") {
				t.Errorf("%s keeps the whole toolchain %s alive", d.FullName(), c.Name)
			}
		}
	}
}

// A build gives the same bytes under umask 077 as under 022, and with
// one core as with two.
func TestUmaskAndCoresDoNotChangeOutputs(t *testing.T) {
	archive := tarGz(t, helloFiles)
	e := newEnv(t, map[string][]byte{"hello-1.0.tar.gz": archive})
	sys := e.eval(t, fmt.Sprintf(`
[[packages]]
name = "hello-cores"
version = "1.0"
source = "@URL@/hello-1.0.tar.gz"
hash = "sha256:%s"
build_system = "configure"
`, sha(archive))+libConfig, libFiles)
	hello, app := pkg(t, sys, "hello-cores"), pkg(t, sys, "greeter")
	if _, err := e.build(t, realise.Options{Cores: 1}, hello, app); err != nil {
		t.Fatal(err)
	}
	res, err := e.build(t, realise.Options{Cores: 2, Check: true}, hello, app)
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, res, hello, app)

	old := syscall.Umask(0o077)
	res, err = e.build(t, realise.Options{Cores: 2, Check: true}, hello, app)
	syscall.Umask(old)
	if err != nil {
		for _, f := range res.Failures {
			t.Log(realise.FailureText(f))
		}
		t.Fatalf("under umask 077: %v", err)
	}
	checkAll(t, res, hello, app)
}

// TestHelperHostCompiler is the process TestHostCompilerIsInvisible runs
// with a broken compiler bound over the host's: it builds a config in a
// store of its own and writes the output path and tree hash.
func TestHelperHostCompiler(t *testing.T) {
	cfg := os.Getenv("NEXIS_TEST_HOSTCC_CONFIG")
	if cfg == "" {
		t.Skip("helper process only")
	}
	if out, err := exec.Command("gcc", "--version").CombinedOutput(); err == nil || !strings.Contains(string(out), "OVERLAID") {
		t.Fatalf("the host's gcc is not the overlaid one: %v %s", err, out)
	}
	sys, err := lang.Eval(cfg, evalOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	st := ownStore(t, t.TempDir())
	d := pkg(t, sys, "greeter")
	if _, err := realise.Build(t.Context(), st, []*builtins.Derivation{d}, realise.Options{}); err != nil {
		t.Fatal(err)
	}
	pi, err := st.QueryPathInfo(mustParse(t, d.Out()))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(os.Getenv("NEXIS_TEST_HOSTCC_RESULT"), []byte(d.Out()+" "+pi.TreeHash.Hex()), 0o644)
}

// The host's compiler does not reach a build: with a compiler that only
// fails bound over the host's gcc and g++ (in a private mount namespace),
// the same config gives the same paths and bit-identical outputs.
func TestHostCompilerIsInvisible(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	real, err := filepath.EvalSymlinks("/usr/bin/gcc")
	if err != nil {
		t.Skipf("no host gcc to overlay: %v", err)
	}
	realCxx, err := filepath.EvalSymlinks("/usr/bin/g++")
	if err != nil {
		t.Skipf("no host g++ to overlay: %v", err)
	}
	e := newEnv(t, nil)
	sys := e.eval(t, libConfig, libFiles)
	app := pkg(t, sys, "greeter")
	e.mustBuild(t, app)
	pi, err := e.st.QueryPathInfo(mustParse(t, app.Out()))
	if err != nil {
		t.Fatal(err)
	}

	fake := filepath.Join(t.TempDir(), "cc")
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'OVERLAID compiler: the host toolchain was used' >&2\nexit 1\n"), 0o755)
	result := filepath.Join(t.TempDir(), "result")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec",
		`mount --bind "$1" "$2"; mount --bind "$1" "$3"; exec "$4" -test.run='^TestHelperHostCompiler$' -test.count=1 -test.v`,
		"sh", fake, real, realCxx, os.Args[0])
	cmd.Env = append(os.Environ(),
		"NEXIS_TEST_HOSTCC_CONFIG="+filepath.Join(e.dir, "config", "config.toml"),
		"NEXIS_TEST_HOSTCC_RESULT="+result)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building beside an overlaid host compiler: %v\n%s", err, out)
	}
	got, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	if want := app.Out() + " " + pi.TreeHash.Hex(); string(got) != want {
		t.Errorf("with another host compiler: %s, want %s", got, want)
	}
}

// One byte more or less in the stdenv's tarball changes every package's
// path (evaluation only).
func TestStdenvByteChangesEveryPath(t *testing.T) {
	m := stdenvtest.Manifest(t)
	f, err := os.Open(filepath.Join(m.Dir(), m.File))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, f)
	f.Close()
	h.Write([]byte{0}) // the same tarball and one byte
	other := map[string]any{}
	for k, v := range m.Spec() {
		other[k] = v
	}
	other["sha256"] = hex.EncodeToString(h.Sum(nil))

	eval := func(spec map[string]any) *lang.System {
		sys, err := lang.Eval("../examples/minimal/config.toml", lang.Options{StoreDir: "/store", Stdenv: spec})
		if err != nil {
			t.Fatal(err)
		}
		return sys
	}
	a, b := eval(m.Spec()), eval(other)
	if a.Drv.Out() == b.Drv.Out() {
		t.Error("the system's path did not change")
	}
	n := 0
	for _, item := range a.Packages.Items() {
		name := item[0]
		pb, _, _ := b.Packages.Get(name)
		if item[1].(*builtins.Derivation).Out() == pb.(*builtins.Derivation).Out() {
			t.Errorf("package %s kept its path with another stdenv", name)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no packages compared")
	}
}

// A derivation for another system is refused before anything of it is
// fetched or run.
func TestOtherSystemIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	cdir := filepath.Join(e.dir, "config")
	os.MkdirAll(cdir, 0o755)
	os.WriteFile(filepath.Join(cdir, "config.toml"), []byte("[[packages]]\nname = \"x\"\nversion = \"1\"\nbuild_system = \"custom\"\nbuild_script = \"x.sh\"\n"), 0o644)
	os.WriteFile(filepath.Join(cdir, "x.sh"), []byte("mkdir -p $out\n"), 0o644)
	other := "aarch64-linux"
	if realise.HostSystem() == other {
		other = "x86_64-linux"
	}
	sys, err := lang.Eval(filepath.Join(cdir, "config.toml"), lang.Options{StoreDir: "/store", System: other})
	if err != nil {
		t.Fatal(err)
	}
	d := pkg(t, sys, "x")
	res, err := e.build(t, realise.Options{}, d)
	if err == nil || len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Err.Error(), "does not cross-build") {
		t.Fatalf("a build for %s: %v %v", other, err, res.Failures)
	}
	for _, x := range builtins.Closure(d) {
		if res.Status[x.ID()] == realise.Fetched || res.Status[x.ID()] == realise.Built {
			t.Errorf("%s was realised for a refused build", x.FullName())
		}
	}
}

// [nexis] sandbox_paths shows host paths to builds, and says so in every
// identity it touches.
func TestSandboxPathsEnterIdentity(t *testing.T) {
	e := newEnv(t, nil)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "marker"), []byte("from the host\n"), 0o644)
	os.Chmod(host, 0o755)
	config := "[[packages]]\nname = \"peek\"\nversion = \"1\"\nbuild_system = \"custom\"\nbuild_script = \"peek.sh\"\n"
	files := map[string]string{"peek.sh": "mkdir -p $out; cat " + host + "/marker > $out/marker\n"}
	pure := pkg(t, e.eval(t, config, files), "peek")
	impure := pkg(t, e.eval(t, fmt.Sprintf("[nexis]\nsandbox_paths = [%q]\n\n", host)+config, files), "peek")
	if pure.Out() == impure.Out() {
		t.Fatal("sandbox_paths did not change the package's path")
	}
	if _, err := e.build(t, realise.Options{}, pure); err == nil {
		t.Error("a build saw a host path nobody named")
	}
	e.mustBuild(t, impure)
	if b, _ := os.ReadFile(e.physical(t, impure.Out()+"/marker")); string(b) != "from the host\n" {
		t.Errorf("the named host path was not visible: %q", b)
	}
}

// A derivation that names no stdenv has no /bin/sh: the error says why
// and what to use.
func TestNoStdenvNoShell(t *testing.T) {
	e := newEnv(t, nil)
	sys := e.eval(t, "[[packages]]\nname = \"raw\"\nmodule = \"raw.star\"\n", map[string]string{"raw.star": `
def package():
    return derivation(name = "raw", builder = "/bin/sh", args = ["-c", "mkdir $out"])
`})
	res, err := e.build(t, realise.Options{}, pkg(t, sys, "raw"))
	if err == nil || len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Err.Error(), "stdenv_derivation") {
		t.Fatalf("a builder outside the sandbox: %v %v", err, res.Failures)
	}
}
