package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache/cachetest"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// nexisCmd runs the nexis binary testscript set up in $PATH (this test
// binary under the name nexis) with root as NEXIS_ROOT.
type nexisCmd struct {
	t    *testing.T
	bin  string
	root string
	env  []string
}

func newNexisCmd(t *testing.T, root string, env ...string) *nexisCmd {
	t.Helper()
	bin, err := exec.LookPath("nexis")
	if err != nil {
		t.Fatalf("the nexis command is not in $PATH: %v", err)
	}
	return &nexisCmd{t: t, bin: bin, root: root, env: env}
}

func (c *nexisCmd) run(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(append(os.Environ(), "NEXIS_ROOT="+c.root), c.env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (c *nexisCmd) must(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("nexis %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// makeClosure puts lib and app (which mentions lib) into the store under
// root and returns app's store path.
func makeClosure(t *testing.T, root, scratch string) (app, lib storepath.Path) {
	t.Helper()
	st, err := store.Open(filepath.Join(root, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk := func(name string, files map[string]string, refs ...storepath.Path) storepath.Path {
		src := filepath.Join(scratch, name)
		for rel, content := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(src, rel)), 0o755)
			os.WriteFile(filepath.Join(src, rel), []byte(content), 0o755)
		}
		d := treehash.Digest{}
		copy(d[:], name)
		p, err := treehash.ContentPath("/store", name, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Ingest(src, p, store.IngestOptions{RefCandidates: refs}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lib = mk("libgreet-1.0", map[string]string{"lib/greeting": "hello from a remote store\n"})
	app = mk("greeter-1.0", map[string]string{"bin/greeter": "#!/bin/sh\ncat " + st.Logical(lib) + "/lib/greeting\n"}, lib)
	return app, lib
}

// TestCopySSH: nexis copy --to ssh:// through Debian's OpenSSH server on
// loopback, into a second store root standing for the remote machine;
// the remote nexis (this binary) runs `store serve --stdio`.
func TestCopySSH(t *testing.T) {
	sshd := cachetest.StartSSHD(t)
	dir := t.TempDir()
	local, remote := filepath.Join(dir, "local"), filepath.Join(dir, "remote")
	app, lib := makeClosure(t, local, filepath.Join(dir, "scratch"))
	appPath := app.In("/store")

	l := newNexisCmd(t, local)
	secret, public := filepath.Join(dir, "deploy.secret"), filepath.Join(dir, "deploy.public")
	pubLine := strings.TrimSpace(l.must("key", "generate", "deploy-1", "--secret-file", secret, "--public-file", public))

	l.env = []string{
		"NEXIS_SSHOPTS=" + sshd.OptsString(),
		"NEXIS_SIGN_KEY=" + secret,
		"NEXIS_REMOTE_PROGRAM=env NEXIS_ROOT=" + remote + " " + l.bin,
	}
	// The remote trusts nobody: refused, and nothing registers there.
	_, stderr, err := l.run("copy", "--to", sshd.URL(), appPath)
	if err == nil || !strings.Contains(stderr, "deploy-1 is not in trusted_keys") {
		t.Fatalf("copy to a remote that does not trust the key: %v\n%s", err, stderr)
	}
	r := newNexisCmd(t, remote)
	if _, _, err := r.run("store", "path-info", appPath); err == nil {
		t.Fatal("the app is on the remote after a refused copy")
	}

	os.MkdirAll(filepath.Join(remote, "etc/nexis"), 0o755)
	if err := os.WriteFile(filepath.Join(remote, "etc/nexis/trusted-keys"), []byte("# the deploy key\n"+pubLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = l.run("copy", "--to", sshd.URL(), appPath)
	if err != nil {
		t.Fatalf("copy: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "copied 2 of 2 path(s)") {
		t.Fatalf("copy said: %s", stderr)
	}
	// Only what is missing travels.
	_, stderr, err = l.run("copy", "--to", sshd.URL(), appPath)
	if err != nil || !strings.Contains(stderr, "copied 0 of 2 path(s)") {
		t.Fatalf("second copy: %v\n%s", err, stderr)
	}
	out := r.must("store", "refs", appPath)
	if !strings.Contains(out, lib.Base()) {
		t.Fatalf("remote references of the app: %s", out)
	}
	r.must("store", "verify", "--check-contents")

	// A user@host:port that ssh cannot reach fails with ssh's reason.
	_, stderr, err = l.run("copy", "--to", "ssh://nobody@127.0.0.1:1", appPath)
	if err == nil || stderr == "" {
		t.Fatalf("copy to a closed port: %v %s", err, stderr)
	}
}
