package realise_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/stdenvtest"
)

// TestBuildrootStdenvFakeSysroot runs the image build's packer
// (buildroot/board/nexisos/stdenv.sh) on a fake Buildroot output: no
// Buildroot build can run here (it needs the network and an hour), so
// the test's stdenv is cut from the Debian one into the three trees an
// image build hands the script, laid out as Buildroot's are: TARGET_DIR
// (the userland, the C library, binutils, make; with etc/ and an earlier
// stdenv in usr/share/nexis that must not be packed), STAGING_DIR (the
// sysroot's headers) and the native toolchain nexis-native-gcc installs
// (gcc, g++, cc1 and its libraries). What it packs must be a stdenv:
// registered as `nexis store add-stdenv` does, named by a config, it
// builds and runs a C program in the sandbox, under paths of its own.
func TestBuildrootStdenvFakeSysroot(t *testing.T) {
	archive := tarGz(t, helloFiles)
	e := newEnv(t, map[string][]byte{"hello-1.0.tar.gz": archive})
	debian := stdenvtest.Manifest(t)
	work := t.TempDir()
	target, staging, native, out := filepath.Join(work, "target"), filepath.Join(work, "staging"), filepath.Join(work, "native"), filepath.Join(work, "images")
	for _, d := range []string{target, staging, native} {
		os.MkdirAll(d, 0o755)
	}
	run := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
		}
		return string(b)
	}
	run(target, nil, "tar", "-xzf", filepath.Join(debian.Dir(), debian.File), "--strip-components=1")
	// The compiler to the native toolchain, the headers to the sysroot;
	// the rest (binutils, make, the C library, the shell) is the image.
	run(target, nil, "sh", "-euc", `
mkdir -p "$1/usr/bin" "$1/usr/lib" "$1/usr/libexec" "$2/usr"
mv usr/lib/gcc "$1/usr/lib/"
[ ! -d usr/libexec/gcc ] || mv usr/libexec/gcc "$1/usr/libexec/"
for f in usr/bin/*gcc* usr/bin/*g++* usr/bin/cpp* usr/bin/*-cpp-* usr/bin/cc usr/bin/c++; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	mv "$f" "$1/usr/bin/"
done
mv usr/include "$2/usr/"
mkdir -p etc usr/share/nexis
echo root:x:0:0::/root:/bin/sh > etc/passwd
echo stale > usr/share/nexis/stdenv-core-x86_64-linux.tar.gz
`, "sh", native, staging)
	if _, err := os.Stat(filepath.Join(native, "usr/bin/gcc")); err != nil {
		t.Fatalf("the native toolchain has no gcc: %v", err)
	}

	repo, _ := filepath.Abs("..")
	printed := strings.TrimSpace(run(repo, []string{
		"TARGET_DIR=" + target, "STAGING_DIR=" + staging, "NEXIS_NATIVE_TOOLCHAIN=" + native,
		"BR2_EXTERNAL_NEXISOS_PATH=" + filepath.Join(repo, "buildroot"),
	}, filepath.Join(repo, "buildroot/board/nexisos/stdenv.sh"), out, realise.HostSystem()))
	listing := run(out, nil, "tar", "-tzf", "stdenv-core-"+realise.HostSystem()+".tar.gz")
	for _, bad := range []string{"stdenv-core/etc/", "stdenv-core/usr/share/nexis/"} {
		if strings.Contains(listing, bad) {
			t.Errorf("the stdenv holds %s", bad)
		}
	}
	m, err := realise.LoadStdenvManifest(filepath.Join(out, "stdenv-"+realise.HostSystem()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != printed || m.SHA256 == debian.SHA256 {
		t.Fatalf("manifest sha256 %s, printed %s, Debian's %s", m.SHA256, printed, debian.SHA256)
	}
	if _, err := m.AddTo(e.st); err != nil {
		t.Fatal(err)
	}

	cdir := filepath.Join(e.dir, "config")
	os.MkdirAll(cdir, 0o755)
	cfg := filepath.Join(cdir, "config.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, `
[nexis.stdenv]
version = %q
url = %q
sha256 = %q

[[packages]]
name = "hello"
version = "1.0"
source = "%s/hello-1.0.tar.gz"
hash = "sha256:%s"
build_system = "configure"
`, m.Version, m.URL, m.SHA256, e.srv.URL, sha(archive)), 0o644)
	sys, err := lang.Eval(cfg, lang.Options{StoreDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	hello := pkg(t, sys, "hello")
	debianHello := pkg(t, e.eval(t, fmt.Sprintf("[[packages]]\nname = \"hello\"\nversion = \"1.0\"\nsource = \"@URL@/hello-1.0.tar.gz\"\nhash = \"sha256:%s\"\nbuild_system = \"configure\"\n", sha(archive)), nil), "hello")
	if hello.Out() == debianHello.Out() {
		t.Fatal("the image's stdenv gave hello the Debian stdenv's path")
	}
	e.mustBuild(t, hello)
	e.runHello(t, hello, "hello, world")
	e.elfInStore(t, hello)
}
