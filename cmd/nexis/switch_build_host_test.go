package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nexisos/nexis/realise/sandbox"
	"github.com/nexisos/nexis/store/cache/cachetest"
)

// TestSwitchBuildHost: three roots stand for three machines reached
// through Debian's sshd on loopback. switch --build-host --target-host
// builds examples/minimal on the build root only, brings the closure
// (signed with the build host's key, which local trusts) here, and
// deploys it to the remote root. A machine that does not trust the build
// host's key refuses the closure and activates nothing; --build-host
// alone activates the local root, and what local has already does not
// travel again.
func TestSwitchBuildHost(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skip(err) // as every test that builds: the sandbox needs root and namespaces
	}
	sshd := cachetest.StartSSHD(t)
	dir := t.TempDir()
	local, build, remote := filepath.Join(dir, "local"), filepath.Join(dir, "build"), filepath.Join(dir, "remote")
	copyMinimal(t, dir, "minimal")
	cfg := filepath.Join(dir, "minimal", "config.toml")

	l := newNexisCmd(t, local)
	key := func(name string) (secret, public string) {
		secret = filepath.Join(dir, name+".secret")
		return secret, strings.TrimSpace(l.must("key", "generate", name, "--secret-file", secret, "--public-file", filepath.Join(dir, name+".public")))
	}
	buildSecret, buildPub := key("build-1")
	deploySecret, deployPub := key("deploy-1")
	trust(t, local, buildPub)
	trust(t, remote, deployPub)
	host := strings.TrimPrefix(sshd.URL(), "ssh://")
	buildArgs := []string{"--build-host", host, "--build-program", "env NEXIS_ROOT=" + build + " NEXIS_SIGN_KEY=" + buildSecret + " NEXIS_STDENV=" + os.Getenv("NEXIS_STDENV") + " " + l.bin}
	l.env = []string{
		"NEXIS_SSHOPTS=" + sshd.OptsString(),
		"NEXIS_SIGN_KEY=" + deploySecret,
		"NEXIS_REMOTE_PROGRAM=env NEXIS_ROOT=" + remote + " " + l.bin,
	}
	fetched := regexp.MustCompile(`copied (\d+) of (\d+) path\(s\) from`)

	out, stderr, err := l.run(append([]string{"switch", "--target-host", host, cfg}, buildArgs...)...)
	if err != nil {
		t.Fatalf("switch --build-host --target-host: %v\n%s\n%s", err, out, stderr)
	}
	gen := regexp.MustCompile(`(?m)^generation 1 \(new\): (/store/.*-nexis-system-minimal-0\.1\.0)$`).FindStringSubmatch(out)
	if gen == nil {
		t.Fatalf("remote switch said:\n%s\n%s", out, stderr)
	}
	system := gen[1]
	if m := fetched.FindStringSubmatch(stderr); m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("the whole closure should come from the build host: %s", stderr)
	}
	// Built there, not here; activated on the target, not here.
	for _, root := range []string{build, local, remote} {
		if _, err := os.Stat(filepath.Join(root, system)); err != nil {
			t.Fatalf("%s is not in the store of %s: %v", system, root, err)
		}
	}
	if n := buildLogs(t, build); n == 0 {
		t.Fatal("the build root has no build logs")
	}
	if n := buildLogs(t, local); n != 0 {
		t.Fatalf("%d build log(s) here: something was built locally", n)
	}
	newNexisCmd(t, build).must("store", "verify", "--check-contents")
	if left, _ := os.ReadDir(filepath.Join(build, "var/lib/nexis/build-configs")); len(left) != 0 {
		t.Fatalf("the build host kept the config it built: %v", left)
	}
	newNexisCmd(t, local).must("store", "verify", "--check-contents")
	if l, err := os.Readlink(filepath.Join(remote, "etc/hostname")); err != nil || l != "/etc/static/hostname" {
		t.Fatalf("remote /etc/hostname: %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(local, "etc/hostname")); err == nil {
		t.Fatal("the local root was activated")
	}

	// A machine that trusts only the deploy key refuses what the build
	// host signed: nothing enters its store, nothing is activated.
	stranger := filepath.Join(dir, "stranger")
	trust(t, stranger, deployPub)
	s := newNexisCmd(t, stranger)
	s.env = l.env
	out, stderr, err = s.run(append([]string{"switch", cfg}, buildArgs...)...)
	if err == nil || !strings.Contains(stderr, "not signed by a trusted key") || !strings.Contains(stderr, "trusted-keys") || !strings.Contains(stderr, "nothing was activated") {
		t.Fatalf("an untrusted build host's closure was not refused clearly: %v\n%s\n%s", err, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(stranger, system)); err == nil {
		t.Fatal("the refused system is in the store")
	}
	if _, err := os.Lstat(filepath.Join(stranger, "etc/hostname")); err == nil {
		t.Fatal("the refusing root was activated")
	}

	// A build host without a signing key cannot send anything; one that
	// builds another system than this machine evaluated is not believed.
	fake := filepath.Join(dir, "fake-nexis")
	os.WriteFile(fake, []byte("cat >/dev/null; echo /store/00/00/00000000000000000000000000000000-nexis-system-evil\n"), 0o755)
	for _, c := range []struct{ program, want string }{
		{"env NEXIS_ROOT=" + build + " " + l.bin, "no signing key"},
		{"sh " + fake, "evaluates it differently"},
	} {
		out, stderr, err = s.run("switch", cfg, "--build-host", host, "--build-program", c.program)
		if err == nil || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "nothing was") {
			t.Fatalf("--build-program %s: want %q: %v\n%s\n%s", c.program, c.want, err, out, stderr)
		}
	}
	if _, err := os.Lstat(filepath.Join(stranger, "etc/hostname")); err == nil {
		t.Fatal("the refusing root was activated")
	}

	// --build-host alone switches this machine; it has the closure from
	// the first switch, so none of it travels.
	out, stderr, err = l.run(append([]string{"switch", cfg}, buildArgs...)...)
	if err != nil {
		t.Fatalf("switch --build-host: %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(out, "generation 1 (new): "+system) {
		t.Fatalf("local switch said:\n%s\n%s", out, stderr)
	}
	if m := fetched.FindStringSubmatch(stderr); m == nil || m[1] != "0" {
		t.Fatalf("nothing should come from the build host: %s", stderr)
	}
	if l, err := os.Readlink(filepath.Join(local, "etc/hostname")); err != nil || l != "/etc/static/hostname" {
		t.Fatalf("local /etc/hostname: %q %v", l, err)
	}
	if n := buildLogs(t, local); n != 0 {
		t.Fatalf("%d build log(s) here: something was built locally", n)
	}
}

// trust writes root's etc/nexis/trusted-keys.
func trust(t *testing.T, root, pub string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "etc/nexis"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/nexis/trusted-keys"), []byte(pub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildLogs counts the files under root's build log directory.
func buildLogs(t *testing.T, root string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(root, "var/lib/nexis/logs"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}
