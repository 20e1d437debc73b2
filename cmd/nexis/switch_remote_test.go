package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nexisos/nexis/realise/sandbox"
	"github.com/nexisos/nexis/store/cache/cachetest"
)

// TestSwitchTargetHost: nexis switch --target-host builds examples/minimal
// here, copies the closure through Debian's sshd on loopback into a
// second root standing for the remote machine, and activates it there
// with the remote nexis; a second switch copies only what changed and
// prints the remote diff. Nothing is activated on the local root.
func TestSwitchTargetHost(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skip(err) // as every test that builds: the sandbox needs root and namespaces
	}
	sshd := cachetest.StartSSHD(t)
	dir := t.TempDir()
	local, remote := filepath.Join(dir, "local"), filepath.Join(dir, "remote")
	copyMinimal(t, dir, "minimal")
	copyMinimal(t, dir, "other")

	l := newNexisCmd(t, local)
	secret := filepath.Join(dir, "deploy.secret")
	pub := strings.TrimSpace(l.must("key", "generate", "deploy-1", "--secret-file", secret, "--public-file", filepath.Join(dir, "deploy.public")))
	os.MkdirAll(filepath.Join(remote, "etc/nexis"), 0o755)
	os.WriteFile(filepath.Join(remote, "etc/nexis/trusted-keys"), []byte(pub+"\n"), 0o644)
	l.env = []string{
		"NEXIS_SSHOPTS=" + sshd.OptsString(),
		"NEXIS_SIGN_KEY=" + secret,
		"NEXIS_REMOTE_PROGRAM=env NEXIS_ROOT=" + remote + " " + l.bin,
	}
	target := strings.TrimPrefix(sshd.URL(), "ssh://")

	out, stderr, err := l.run("switch", "--target-host", target, filepath.Join(dir, "minimal", "config.toml"))
	if err != nil {
		t.Fatalf("switch --target-host: %v\n%s\n%s", err, out, stderr)
	}
	if !regexp.MustCompile(`(?m)^generation 1 \(new\): /store/.*-nexis-system-minimal-0\.1\.0$`).MatchString(out) {
		t.Fatalf("remote switch said:\n%s\n%s", out, stderr)
	}
	copied := regexp.MustCompile(`copied (\d+) of (\d+) path\(s\)`)
	m := copied.FindStringSubmatch(stderr)
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("first copy: %s", stderr)
	}
	// Activated there, not here.
	if l, err := os.Readlink(filepath.Join(remote, "etc/hostname")); err != nil || l != "/etc/static/hostname" {
		t.Fatalf("remote /etc/hostname: %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(local, "etc/hostname")); err == nil {
		t.Fatal("the local root was activated")
	}
	r := newNexisCmd(t, remote)
	if o := r.must("activate", "--check"); !strings.Contains(o, "the root matches generation 1") {
		t.Fatalf("remote check: %s", o)
	}

	// The other config: only the changed paths travel, and the remote
	// prints what changed.
	out, stderr, err = l.run("switch", "--target-host", target, filepath.Join(dir, "other", "config.toml"))
	if err != nil {
		t.Fatalf("second switch --target-host: %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(out, "generation 2 (new)") || !strings.Contains(out, "hostname minimal -> other") {
		t.Fatalf("remote switch said:\n%s", out)
	}
	m = copied.FindStringSubmatch(stderr)
	if m == nil || m[1] == m[2] || m[1] == "0" {
		t.Fatalf("second copy should send only what changed: %s", stderr)
	}
	r.must("store", "verify", "--check-contents")

	// Back to the first config: everything is there already, nothing
	// travels, and the remote switches back (a new generation, as a
	// local switch to an older config makes).
	out, stderr, err = l.run("switch", "--target-host", target, filepath.Join(dir, "minimal", "config.toml"))
	if err != nil {
		t.Fatalf("third switch --target-host: %v\n%s\n%s", err, out, stderr)
	}
	if m = copied.FindStringSubmatch(stderr); m == nil || m[1] != "0" {
		t.Fatalf("third copy should send nothing: %s", stderr)
	}
	if !strings.Contains(out, "generation 3 (new)") || !strings.Contains(out, "hostname other -> minimal") {
		t.Fatalf("remote switch said:\n%s", out)
	}
}

// copyMinimal copies examples/minimal to dir/hostname with that hostname
// and, as switch.txtar, a one-word greeting (build_flags are passed to
// make unquoted).
func copyMinimal(t *testing.T, dir, hostname string) {
	t.Helper()
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, hostname)
	if out, err := exec.Command("cp", "-r", filepath.Join(examples, "minimal"), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cfg := filepath.Join(dst, "config.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `greeting = "Hello from NexisOS"`, `greeting = "Hello"`, 1)
	s = strings.Replace(s, `hostname = "minimal"`, `hostname = "`+hostname+`"`, 1)
	os.WriteFile(cfg, []byte(s), 0o644)
}
