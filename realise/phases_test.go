package realise_test

// Tests of the generic builder's phases (stdlib/build.star), one class of
// real-world failure each, with small packages built in the sandbox: the
// corpus (corpus_test.go) found them in real releases.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
)

// tarEntry is a file of a test archive, in archive order.
type tarEntry struct {
	name, body string
	mtime      int64
	exec       bool
}

func tarGzEntries(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	for _, e := range entries {
		parts := strings.Split(e.name, "/")
		for i := 1; i < len(parts); i++ {
			if d := strings.Join(parts[:i], "/") + "/"; !dirs[d] {
				dirs[d] = true
				tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(e.mtime, 0)})
			}
		}
		mode := int64(0o644)
		if e.exec {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(e.body)), ModTime: time.Unix(e.mtime, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func (e *env) read(t *testing.T, d *builtins.Derivation, file string) string {
	t.Helper()
	b, err := os.ReadFile(e.physical(t, d.Out()+"/"+file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// generatedMakefile fails when make thinks a generated file is older
// than what it is made from: in a release, configure.ac is older than
// aclocal.m4, which is older than configure, and a build that reorders
// those times runs aclocal (pcre2 10.42: aclocal-1.16 is not there).
const generatedMakefile = `PREFIX ?= /usr/local
all: configure
aclocal.m4: configure.ac
	@echo "configure.ac is newer than aclocal.m4: make would run aclocal"; exit 1
configure: aclocal.m4 configure.ac
	@echo "configure is older than its inputs: make would run autoconf"; exit 1
install:
	mkdir -p $(PREFIX)
	stat -c '%n %Y' configure.ac aclocal.m4 configure > $(PREFIX)/times
`

// A release's timestamps survive the unpack, so nothing generated looks
// stale; a tree from the store (a local directory, a git checkout, a
// zip) has the store's times, all equal, which look stale to nothing
// either.
func TestUnpackKeepsReleaseTimestamps(t *testing.T) {
	// The generated files come first in the archive: a copy made in
	// archive order would give the inputs the newer times.
	archive := tarGzEntries(t, []tarEntry{
		{name: "gen-1.0/configure", body: "#!/bin/sh\n", mtime: 1_600_000_300, exec: true},
		{name: "gen-1.0/aclocal.m4", body: "dnl generated\n", mtime: 1_600_000_200},
		{name: "gen-1.0/configure.ac", body: "AC_INIT([gen], [1.0])\n", mtime: 1_600_000_100},
		{name: "gen-1.0/Makefile", body: generatedMakefile, mtime: 1_600_000_100},
	})
	// A zip is unpacked when fetched (the stdenv has no unzip): a tree.
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, name := range []string{"configure", "aclocal.m4", "configure.ac", "Makefile"} {
		w, _ := zw.Create("gen-1.0/" + name)
		if name == "Makefile" {
			w.Write([]byte(generatedMakefile))
		}
	}
	zw.Close()
	zipArchive := zbuf.Bytes()
	e := newEnv(t, map[string][]byte{"gen-1.0.tar.gz": archive, "gen-1.0.zip": zipArchive})
	sys := e.eval(t, fmt.Sprintf(`
[[packages]]
name = "gen"
version = "1.0"
source = "@URL@/gen-1.0.tar.gz"
hash = "sha256:%s"

[[packages]]
name = "gen-zip"
version = "1.0"
source = "@URL@/gen-1.0.zip"
hash = "sha256:%s"

[[packages]]
name = "gen-tree"
version = "1.0"
source = "tree"
`, sha(archive), sha(zipArchive)), map[string]string{
		"tree/configure":    "#!/bin/sh\n",
		"tree/aclocal.m4":   "dnl generated\n",
		"tree/configure.ac": "AC_INIT([gen], [1.0])\n",
		"tree/Makefile":     generatedMakefile,
	})
	gen, zipped, tree := pkg(t, sys, "gen"), pkg(t, sys, "gen-zip"), pkg(t, sys, "gen-tree")
	e.mustBuild(t, gen, zipped, tree)
	if got, want := e.read(t, gen, "times"), "configure.ac 1600000100\naclocal.m4 1600000200\nconfigure 1600000300\n"; got != want {
		t.Errorf("the unpacked release's times:\n%s\nwant the archive's:\n%s", got, want)
	}
	for _, d := range []*builtins.Derivation{zipped, tree} {
		if got, want := e.read(t, d, "times"), "configure.ac 1\naclocal.m4 1\nconfigure 1\n"; got != want {
			t.Errorf("%s: the copied tree's times:\n%s\nwant the store's:\n%s", d.Name, got, want)
		}
	}
}

// ownLibFiles is a package with a library of its own, a program linked
// against it and against a dependency's (greetlib), and a second library
// that needs both.
var ownLibFiles = map[string]string{
	"multi/own.c":  "#include <stdio.h>\nvoid own(void) { printf(\"own library\\n\"); }\n",
	"multi/both.c": "#include \"greet.h\"\nvoid own(void);\nvoid both(void) { own(); greet(\"both\"); }\n",
	"multi/main.c": "void both(void);\nint main(void) { both(); return 0; }\n",
	"multi/Makefile": `all: libown.so libboth.so multi
libown.so: own.c
	$(CC) -shared -fPIC -o $@ own.c
libboth.so: both.c libown.so
	$(CC) -shared -fPIC -o $@ both.c -L. -lown -lgreet
multi: main.c libboth.so
	$(CC) -o $@ main.c -L. -lboth -Wl,-rpath-link,.
install:
	mkdir -p $(PREFIX)/lib $(PREFIX)/bin
	cp libown.so libboth.so $(PREFIX)/lib/
	cp multi $(PREFIX)/bin/
`,
}

// Every ELF output's RPATH names its own lib/ and its dependencies'
// (what the compiler wrapper adds: without it the program would load
// the host's libraries, as nginx did the host's libz), as a DT_RPATH,
// and it runs with nothing but its closure.
func TestRPathOwnLibAndDependencies(t *testing.T) {
	e := newEnv(t, nil)
	sys := e.eval(t, libConfig+`
[[packages]]
name = "multi"
version = "1"
source = "multi"
dependencies = ["greetlib"]
`, mergeFiles(libFiles, ownLibFiles))
	multi, lib := pkg(t, sys, "multi"), pkg(t, sys, "greetlib")
	e.mustBuild(t, multi)
	out, err := runInStore(t, e.st, multi.Out()+"/bin/multi")
	if err != nil || out != "own library\nhello, both\n" {
		t.Fatalf("multi: %q %v", out, err)
	}
	e.elfInStore(t, multi)
	for _, f := range []string{"bin/multi", "lib/libboth.so", "lib/libown.so"} {
		ef, err := elf.Open(e.physical(t, multi.Out()+"/"+f))
		if err != nil {
			t.Fatal(err)
		}
		rpath, _ := ef.DynString(elf.DT_RPATH)
		runpath, _ := ef.DynString(elf.DT_RUNPATH)
		ef.Close()
		dirs := strings.Split(strings.Join(rpath, ":"), ":")
		for _, want := range []string{multi.Out() + "/lib", lib.Out() + "/lib"} {
			if !slices.Contains(dirs, want) {
				t.Errorf("%s: RPATH %v lacks %s", f, dirs, want)
			}
		}
		if len(runpath) != 0 {
			t.Errorf("%s has a RUNPATH %v: the loader would not apply it to the libraries it loads", f, runpath)
		}
	}
}

func mergeFiles(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// libDirFiles: a CMake library installed with GNUInstallDirs (which
// picks lib64 on a 64-bit system it does not know as Debian, as the
// sandbox is), a Meson library, a Makefile that installs into lib64, a
// module whose library stays in lib64 (as a prebuilt one may), and
// programs that find them: with CMake's find_library and with
// pkg-config.
var libDirFiles = map[string]string{
	"sq/sq.h": "int sq(int);\n",
	"sq/sq.c": "int sq(int x) { return x * x; }\n",
	"sq/CMakeLists.txt": `cmake_minimum_required(VERSION 3.10)
project(sq C)
include(GNUInstallDirs)
add_library(sq SHARED sq.c)
install(TARGETS sq LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES sq.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
`,
	"sqapp/main.c": "#include <stdio.h>\n#include <sq.h>\nint main(void) { printf(\"sq %d\\n\", sq(7)); return 0; }\n",
	"sqapp/CMakeLists.txt": `cmake_minimum_required(VERSION 3.18)
project(sqapp C)
find_library(SQ sq REQUIRED)
find_path(SQ_INCLUDE sq.h REQUIRED)
add_executable(sqapp main.c)
target_include_directories(sqapp PRIVATE ${SQ_INCLUDE})
target_link_libraries(sqapp PRIVATE ${SQ})
install(TARGETS sqapp DESTINATION bin)
`,
	"mq/mq.c":        "int mq(void) { return 42; }\n",
	"mq/meson.build": "project('mq', 'c')\nlibrary('mq', 'mq.c', install: true)\n",
	"l64/l64.c":      "int l64(void) { return 64; }\n",
	"l64/main.c":     "#include <stdio.h>\nint l64(void);\nint main(void) { printf(\"l64 %d\\n\", l64()); return 0; }\n",
	"l64/Makefile": `all: libl64.so l64
libl64.so: l64.c
	$(CC) -shared -fPIC -o $@ l64.c
l64: main.c libl64.so
	$(CC) -o $@ main.c -L. -ll64
install:
	mkdir -p $(PREFIX)/lib64 $(PREFIX)/bin
	cp libl64.so $(PREFIX)/lib64/
	cp l64 $(PREFIX)/bin/
`,
	"pre64.star": `load("@stdlib//build.star", "stdenv_derivation")

def package():
    return stdenv_derivation("pre64", """
mkdir -p $out/lib64/pkgconfig $out/include
printf 'int pre64(void) { return 6464; }\\n' > pre64.c
gcc -shared -fPIC -o $out/lib64/libpre64.so pre64.c
printf 'int pre64(void);\\n' > $out/include/pre64.h
printf 'prefix=%s\\nName: pre64\\nDescription: t\\nVersion: 1\\nLibs: -L%s/lib64 -lpre64\\nCflags: -I%s/include\\n' $out $out $out > $out/lib64/pkgconfig/pre64.pc
""", version = "1")
`,
	"preapp/main.c": "#include <stdio.h>\n#include <pre64.h>\nint main(void) { printf(\"pre64 %d\\n\", pre64()); return 0; }\n",
	"preapp/Makefile": `preapp: main.c
	$(CC) -o $@ main.c $$(pkg-config --cflags --libs pre64)
install: preapp
	mkdir -p $(PREFIX)/bin
	cp preapp $(PREFIX)/bin/
`,
}

// Libraries land in lib/ whatever the build system would pick, and a
// dependency's lib64/ is searched anyway.
func TestLibDirs(t *testing.T) {
	e := newEnv(t, nil)
	sys := e.eval(t, `
[[packages]]
name = "sq"
version = "1"
source = "sq"
build_system = "cmake"

[[packages]]
name = "sqapp"
version = "1"
source = "sqapp"
build_system = "cmake"
dependencies = ["sq"]

[[packages]]
name = "mq"
version = "1"
source = "mq"
build_system = "meson"

[[packages]]
name = "l64"
version = "1"
source = "l64"

[[packages]]
name = "pre64"
module = "pre64.star"

[[packages]]
name = "preapp"
version = "1"
source = "preapp"
dependencies = ["pre64"]
`, libDirFiles)
	sq, sqapp, mq, l64, preapp := pkg(t, sys, "sq"), pkg(t, sys, "sqapp"), pkg(t, sys, "mq"), pkg(t, sys, "l64"), pkg(t, sys, "preapp")
	e.mustBuild(t, sqapp, mq, l64, preapp)
	for d, lib := range map[*builtins.Derivation]string{sq: "libsq.so", mq: "libmq.so", l64: "libl64.so"} {
		if fi, err := os.Lstat(e.physical(t, d.Out()+"/lib/"+lib)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: no lib/%s: %v", d.FullName(), lib, err)
		}
	}
	if _, err := os.Lstat(e.physical(t, sq.Out()+"/lib64")); err == nil {
		t.Errorf("CMake made %s/lib64", sq.FullName())
	}
	// The fixup moved l64's lib64 into lib and left a link behind.
	if target, err := os.Readlink(e.physical(t, l64.Out()+"/lib64")); err != nil || target != "lib" {
		t.Errorf("l64's lib64: %q %v, want a link to lib", target, err)
	}
	for d, want := range map[*builtins.Derivation]string{sqapp: "sq 49\n", l64: "l64 64\n", preapp: "pre64 6464\n"} {
		if out, err := runInStore(t, e.st, d.Out()+"/bin/"+d.Name); err != nil || out != want {
			t.Errorf("%s: %q %v, want %q", d.Name, out, err, want)
		}
	}
	e.elfInStore(t, sq, sqapp, mq, l64, preapp)
}

// flagsMakefile records which variables reach which make call, and
// fails when the default targets run instead of the ones asked for.
const flagsMakefile = `PREFIX ?= /usr/local
-include config.mk
all:
	@echo "the default target ran, not build_targets"; exit 1
prog:
	echo "build MODE=$(MODE) ONLY_BUILD=$(ONLY_BUILD) ONLY_INSTALL=$(ONLY_INSTALL)" > built
install:
	@echo "the default install target ran, not install_targets"; exit 1
install-bin:
	mkdir -p $(DEST)
	cp built $(DEST)/built
	echo "install MODE=$(MODE) ONLY_BUILD=$(ONLY_BUILD) ONLY_INSTALL=$(ONLY_INSTALL)" > $(DEST)/installed
install-doc:
	mkdir -p $(DEST)/doc
	echo "configured: $(CONFIGURED)" > $(DEST)/doc/README
`

// make_flags reach every make call, build_flags and build_targets the
// build, install_flags and install_targets the install: Nix's makeFlags,
// buildFlags, installFlags and installTargets. A prefix that is a make
// variable of its own (lua's INSTALL_TOP) is given as $(out).
func TestMakeFlagsReachTheirPhases(t *testing.T) {
	archive := tarGzEntries(t, []tarEntry{
		{name: "flags-1/Makefile", body: flagsMakefile, mtime: 1_600_000_000},
		{name: "flags-1/configure", exec: true, mtime: 1_600_000_000, body: `#!/bin/sh
echo "CONFIGURED = $*" > config.mk
`},
	})
	e := newEnv(t, map[string][]byte{"flags-1.tar.gz": archive})
	common := fmt.Sprintf(`version = "1"
source = "@URL@/flags-1.tar.gz"
hash = "sha256:%s"
make_flags = ["MODE=two words"]
build_targets = ["prog"]
install_flags = ["ONLY_INSTALL=1", "DEST=$(out)/share"]
install_targets = ["install-bin", "install-doc"]
`, sha(archive))
	sys := e.eval(t, `
[[packages]]
name = "flags-make"
build_system = "make"
build_flags = ["ONLY_BUILD=1"]
`+common+`
[[packages]]
name = "flags-configure"
build_system = "configure"
build_flags = ["--enable-thing", "--with-space=a b"]
`+common, nil)
	mk, cf := pkg(t, sys, "flags-make"), pkg(t, sys, "flags-configure")
	e.mustBuild(t, mk, cf)
	for _, c := range []struct {
		d                           *builtins.Derivation
		built, installed, configure string
	}{
		{mk, "build MODE=two words ONLY_BUILD=1 ONLY_INSTALL=\n", "install MODE=two words ONLY_BUILD= ONLY_INSTALL=1\n", "configured: \n"},
		{cf, "build MODE=two words ONLY_BUILD= ONLY_INSTALL=\n", "install MODE=two words ONLY_BUILD= ONLY_INSTALL=1\n",
			"configured: --prefix=" + cf.Out() + " --enable-thing --with-space=a b\n"},
	} {
		for file, want := range map[string]string{"share/built": c.built, "share/installed": c.installed, "share/doc/README": c.configure} {
			if got := e.read(t, c.d, file); got != want {
				t.Errorf("%s %s: %q, want %q", c.d.Name, file, got, want)
			}
		}
	}
}

// A source that builds below its top names the directory; patches apply
// there, as with Nix's sourceRoot. A directory that is not there fails
// the unpack saying what is.
func TestSourceSubdir(t *testing.T) {
	archive := tarGzEntries(t, []tarEntry{
		{name: "proj-1.0/README", body: "the library is in lib/\n", mtime: 1_600_000_000},
		{name: "proj-1.0/lib/hello.c", body: helloFiles["hello-1.0/hello.c"], mtime: 1_600_000_000},
		{name: "proj-1.0/lib/greeting.h", body: helloFiles["hello-1.0/greeting.h"], mtime: 1_600_000_000},
		{name: "proj-1.0/lib/Makefile", body: helloFiles["hello-1.0/Makefile"], mtime: 1_600_000_000},
	})
	e := newEnv(t, map[string][]byte{"proj-1.0.tar.gz": archive})
	entry := func(name, subdir string) string {
		return fmt.Sprintf(`
[[packages]]
name = %q
version = "1.0"
source = "@URL@/proj-1.0.tar.gz"
hash = "sha256:%s"
source_subdir = %q
patches = ["greeting.patch"]
`, name, sha(archive), subdir)
	}
	sys := e.eval(t, entry("proj", "lib")+entry("proj-typo", "src"), map[string]string{"greeting.patch": greetingPatch})
	proj, typo := pkg(t, sys, "proj"), pkg(t, sys, "proj-typo")
	e.mustBuild(t, proj)
	e.runHello(t, proj, "hello, patched world")

	res, err := e.build(t, realise.Options{}, typo)
	if !errors.Is(err, realise.ErrFailed) || len(res.Failures) != 1 {
		t.Fatalf("a missing source_subdir: %v", err)
	}
	f := res.Failures[0]
	if tail := strings.Join(f.Tail, "\n"); f.Phase != "unpack" || !strings.Contains(tail, "source_subdir src: the source has no such directory; its top holds: README lib") {
		t.Errorf("the failure (phase %q) does not say what is there:\n%s", f.Phase, tail)
	}
}

// autoreconfFiles is a tag archive's tree: configure.ac and Makefile.am,
// no configure script, a libtool library, and a macro that comes from a
// dependency's share/aclocal.
var autoreconfFiles = map[string]string{
	"ahello/configure.ac": `AC_INIT([ahello], [1.0])
AM_INIT_AUTOMAKE([foreign])
AC_PROG_CC
LT_INIT
GREETING_DEFINE
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
`,
	"ahello/Makefile.am": `lib_LTLIBRARIES = libahello.la
libahello_la_SOURCES = lib.c
bin_PROGRAMS = ahello
ahello_SOURCES = main.c
ahello_LDADD = libahello.la
`,
	"ahello/lib.c":  "#include <stdio.h>\nvoid ahello(void) { printf(\"%s\\n\", GREETING); }\n",
	"ahello/main.c": "void ahello(void);\nint main(void) { ahello(); return 0; }\n",
	"m4dep/share/aclocal/greeting.m4": `AC_DEFUN([GREETING_DEFINE], [AC_DEFINE([GREETING], ["hello from autoreconf"], [what ahello says])])
`,
}

// A source with configure.ac and no configure script runs autoreconf
// when the build names the autotools layer, with its dependencies'
// macros on ACLOCAL_PATH; without the layer it fails saying to name it.
func TestAutoreconf(t *testing.T) {
	e := newEnv(t, nil)
	entry := func(name, tools string) string {
		return fmt.Sprintf(`
[[packages]]
name = %q
version = "1.0"
source = "ahello"
build_system = "configure"
dependencies = ["m4dep"]
%s
`, name, tools)
	}
	sys := e.eval(t, `
[[packages]]
name = "m4dep"
version = "1"
source = "m4dep"
build_system = "none"
`+entry("ahello", `tools = ["autotools"]`)+entry("ahello-no-tools", ""), autoreconfFiles)
	ah, bare := pkg(t, sys, "ahello"), pkg(t, sys, "ahello-no-tools")
	e.mustBuild(t, ah)
	if out, err := runInStore(t, e.st, ah.Out()+"/bin/ahello"); err != nil || out != "hello from autoreconf\n" {
		t.Errorf("ahello: %q %v", out, err)
	}
	e.elfInStore(t, ah)

	res, err := e.build(t, realise.Options{}, bare)
	if !errors.Is(err, realise.ErrFailed) || len(res.Failures) != 1 {
		t.Fatalf("autoreconf without the autotools layer: %v", err)
	}
	f := res.Failures[0]
	if tail := strings.Join(f.Tail, "\n"); f.Phase != "configure" || !strings.Contains(tail, `add tools = ["autotools"]`) {
		t.Errorf("the failure (phase %q) does not say what to add:\n%s", f.Phase, tail)
	}
	if text := realise.FailureText(f); !strings.Contains(text, "failed in phase configure") {
		t.Errorf("the failure does not name its phase:\n%s", text)
	}
}
