package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexisos/nexis/realise/sandbox"
	"github.com/nexisos/nexis/store/cache/cachetest"
)

// fleet is a local root and two builders, each a root of its own behind
// its own Debian sshd on loopback, listed in the config's
// [nexis.builders]. The builders trust the local key (for the inputs
// copied to them); local trusts each builder's key through its
// public_key (for the outputs they send back).
type fleet struct {
	t        *testing.T
	dir      string
	local    *nexisCmd
	sshd     map[string]*cachetest.SSHD
	roots    map[string]string
	cfg      string
	builders string
}

func newFleet(t *testing.T, speeds map[string]int) *fleet {
	t.Helper()
	if err := sandbox.Available(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir, sshd: map[string]*cachetest.SSHD{}, roots: map[string]string{}}
	f.local = newNexisCmd(t, filepath.Join(dir, "local"))
	key := func(name string) (secret, public string) {
		secret = filepath.Join(dir, name+".secret")
		return secret, strings.TrimSpace(f.local.must("key", "generate", name, "--secret-file", secret, "--public-file", filepath.Join(dir, name+".public")))
	}
	localSecret, localPub := key("local-1")
	var b strings.Builder
	for _, name := range []string{"a", "b"} {
		srv := cachetest.StartSSHD(t)
		root := filepath.Join(dir, name)
		secret, pub := key("builder-" + name)
		trust(t, root, localPub)
		f.sshd[name], f.roots[name] = srv, root
		fmt.Fprintf(&b, "\n[nexis.builders.%s]\nurl = %q\nsystems = [\"x86_64-linux\"]\nmax_jobs = 4\nspeed_factor = %d\nssh_key = %q\nhost_key = %q\npublic_key = %q\nremote_program = %q\n",
			name, srv.URL(), speeds[name], srv.ClientKey, srv.HostKey, pub,
			"env NEXIS_ROOT="+root+" NEXIS_SIGN_KEY="+secret+" "+f.local.bin)
	}
	f.builders = b.String()
	f.local.env = []string{
		"NEXIS_SIGN_KEY=" + localSecret,
		"NEXIS_SSHOPTS=-F /dev/null -o BatchMode=yes -o LogLevel=ERROR",
	}
	return f
}

// config writes a config of n quick packages, a slow one that sleeps
// for slow seconds, and "all", which needs them all.
func (f *fleet) config(n, slow int) {
	f.t.Helper()
	cdir := filepath.Join(f.dir, "cfg")
	os.MkdirAll(cdir, 0o755)
	var b strings.Builder
	b.WriteString("[system]\nhostname = \"t\"\n")
	deps := []string{}
	pkg := func(name, script string, dependencies ...string) {
		fmt.Fprintf(&b, "\n[[packages]]\nname = %q\nversion = \"1.0\"\nbuild_system = \"custom\"\nbuild_script = \"%s.sh\"\n", name, name)
		if len(dependencies) > 0 {
			fmt.Fprintf(&b, "dependencies = [\"%s\"]\n", strings.Join(dependencies, "\", \""))
		}
		os.WriteFile(filepath.Join(cdir, name+".sh"), []byte(script), 0o644)
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("p%d", i)
		pkg(name, fmt.Sprintf("mkdir -p $out\necho package %d > $out/n\n", i))
		deps = append(deps, name)
	}
	pkg("slow", fmt.Sprintf("sleep %d\nmkdir -p $out\necho slow > $out/n\n", slow))
	deps = append(deps, "slow")
	pkg("all", "mkdir -p $out\nfor d in $buildInputs; do cat $d/n >> $out/all; done\n", deps...)
	b.WriteString(f.builders)
	f.cfg = filepath.Join(cdir, "config.toml")
	if err := os.WriteFile(f.cfg, []byte(b.String()), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// on reports whether the store path p is in builder name's store.
func (f *fleet) on(name, p string) bool {
	_, _, err := newNexisCmd(f.t, f.roots[name]).run("store", "path-info", p)
	return err == nil
}

// TestBuilderPool: a build spread over two builders reached over SSH,
// each building in its own sandbox into its own store; every output
// comes back here signed by its builder and verified, and the builders
// got only what they built and its inputs.
func TestBuilderPool(t *testing.T) {
	f := newFleet(t, map[string]int{"a": 1, "b": 1})
	f.config(6, 1)
	_, stderr, err := f.local.run("build", f.cfg, "-A", "all", "--no-out-link", "--json")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	count := map[string]int{}
	for i := 1; i <= 6; i++ {
		p := strings.TrimSpace(f.local.must("build", f.cfg, "-A", fmt.Sprintf("p%d", i), "--no-out-link"))
		log := f.local.must("log", p)
		for _, b := range []string{"a", "b"} {
			if strings.Contains(log, fmt.Sprintf("building p%d-1.0 on %s\n", i, b)) {
				count[b]++
				if !f.on(b, p) {
					t.Fatalf("p%d was built on %s, which does not have it", i, b)
				}
			}
		}
	}
	if count["a"] == 0 || count["b"] == 0 || count["a"]+count["b"] != 6 {
		t.Fatalf("the six packages were built %v: want them spread over both builders, each once", count)
	}
	all := strings.TrimSpace(f.local.must("build", f.cfg, "-A", "all", "--no-out-link"))
	content, err := os.ReadFile(filepath.Join(f.local.root, all, "all"))
	if err != nil || strings.Count(string(content), "package") != 6 {
		t.Fatalf("all: %q %v", content, err)
	}
	f.local.must("store", "verify", "--check-contents")
	for _, b := range []string{"a", "b"} {
		newNexisCmd(t, f.roots[b]).must("store", "verify", "--check-contents")
	}

	// A builder whose key this machine does not trust: its outputs are
	// refused, nothing of them registers here.
	cfg, _ := os.ReadFile(f.cfg)
	os.WriteFile(f.cfg, []byte(strings.ReplaceAll(string(cfg), "public_key", "# public_key")), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(f.cfg), "slow.sh"), []byte("mkdir -p $out\necho another > $out/n\n"), 0o644)
	_, stderr, err = f.local.run("build", f.cfg, "-A", "slow", "--no-out-link")
	if err == nil || !strings.Contains(stderr, "not in trusted_keys") {
		t.Fatalf("a build from an untrusted builder: %v\n%s", err, stderr)
	}
	f.local.must("store", "verify", "--check-contents")
}

// TestBuilderGoesAway: the builder running a job dies (its sshd, the
// session and the build are killed); the job starts again on the other
// builder and the build succeeds, verified. With both gone, the build
// runs here.
func TestBuilderGoesAway(t *testing.T) {
	f := newFleet(t, map[string]int{"a": 4, "b": 1})
	f.config(1, 3)
	done := make(chan error, 1)
	var stderr string
	go func() {
		var err error
		_, stderr, err = f.local.run("build", f.cfg, "-A", "slow", "--no-out-link", "-L")
		done <- err
	}()
	// The faster builder, a, takes the job; kill it once it builds. No
	// deadline: copying the inputs there takes what the machine's load
	// makes it take; a build that ends first ends the wait.
	for !building(filepath.Join(f.roots["a"], "store", ".build"), "slow-1.0") {
		select {
		case err := <-done:
			t.Fatalf("the build ended (%v) before it was seen running on builder a\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	f.sshd["a"].Kill()
	if err := <-done; err != nil {
		t.Fatalf("the build did not survive its builder going away: %v\n%s", err, stderr)
	}
	p := strings.TrimSpace(f.local.must("build", f.cfg, "-A", "slow", "--no-out-link"))
	if !f.on("b", p) {
		t.Fatalf("builder b did not build it:\n%s", stderr)
	}
	log := f.local.must("log", p)
	if !strings.Contains(log, "builder a went away") || !strings.Contains(log, "building slow-1.0 on b") {
		t.Fatalf("the log does not tell the story:\n%s", log)
	}
	f.local.must("store", "verify", "--check-contents")

	// With every builder gone, this machine builds what it can itself.
	f.sshd["b"].Kill()
	os.WriteFile(filepath.Join(filepath.Dir(f.cfg), "slow.sh"), []byte("mkdir -p $out\necho here > $out/n\n"), 0o644)
	_, stderr, err := f.local.run("build", f.cfg, "-A", "slow", "--no-out-link")
	if err != nil || !strings.Contains(stderr, "no builder of the pool can build it; building it here") {
		t.Fatalf("with no builder left: %v\n%s", err, stderr)
	}
	f.local.must("store", "verify", "--check-contents")
}

// building reports whether a build directory of name exists under dir.
func building(dir, name string) bool {
	found := false
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && strings.HasPrefix(fi.Name(), name+"-") {
			found = true
		}
		return nil
	})
	return found
}

// TestBuilderSubstitutes: a builder substitutes the inputs it lacks
// from the config's caches itself, checked against the keys it trusts.
// This machine has no key to copy inputs with, so the build succeeds only
// if the builder got the stdenv, the sources and the dependency from the
// cache; a cache signed by a key the builders do not trust gives them
// nothing, and the build says what is missing.
func TestBuilderSubstitutes(t *testing.T) {
	f := newFleet(t, map[string]int{"a": 1, "b": 1})
	cdir := filepath.Join(f.dir, "cfg")
	os.MkdirAll(cdir, 0o755)
	// One script for both: building dep here puts it in the store.
	os.WriteFile(filepath.Join(cdir, "b.sh"), []byte("mkdir -p $out\necho $out >> $out/n\nfor d in $buildInputs; do cat $d/n >> $out/n; done\n"), 0o644)
	pkgs := "[system]\nhostname = \"t\"\n" +
		"\n[[packages]]\nname = \"dep\"\nversion = \"1.0\"\nbuild_system = \"custom\"\nbuild_script = \"b.sh\"\n" +
		"\n[[packages]]\nname = \"top\"\nversion = \"1.0\"\nbuild_system = \"custom\"\nbuild_script = \"b.sh\"\ndependencies = [\"dep\"]\n"
	cfg := filepath.Join(cdir, "config.toml")
	os.WriteFile(cfg, []byte(pkgs), 0o644)
	// Everything the builders will need, built here (without
	// builders), goes to two caches: one signed with the key
	// the builders trust, one with a key they do not.
	dep := strings.TrimSpace(f.local.must("build", cfg, "-A", "dep", "--no-out-link"))
	paths, _ := filepath.Glob(filepath.Join(f.local.root, "store", "*", "*", "*"))
	var all []string
	for _, p := range paths {
		if !strings.Contains(p, "/.") {
			all = append(all, strings.TrimPrefix(p, f.local.root))
		}
	}
	good, bad := filepath.Join(f.dir, "cache-good"), filepath.Join(f.dir, "cache-bad")
	f.local.must(append([]string{"copy", "--to", "file://" + good, "--sign-key", filepath.Join(f.dir, "local-1.secret")}, all...)...)
	strangerPub := strings.TrimSpace(f.local.must("key", "generate", "stranger-1", "--secret-file", filepath.Join(f.dir, "stranger.secret"), "--public-file", filepath.Join(f.dir, "stranger.public")))
	f.local.must(append([]string{"copy", "--to", "file://" + bad, "--sign-key", filepath.Join(f.dir, "stranger.secret")}, all...)...)
	var env []string
	for _, e := range f.local.env {
		if !strings.HasPrefix(e, "NEXIS_SIGN_KEY=") {
			env = append(env, e)
		}
	}
	f.local.env = env
	localPub := strings.TrimSpace(f.local.must("key", "public", filepath.Join(f.dir, "local-1.secret")))
	withCache := func(url, key string) {
		os.WriteFile(cfg, []byte(pkgs+fmt.Sprintf("\n[nexis.substituters]\nurls = [%q]\ntrusted_keys = [%q]\n", "file://"+url, key)+f.builders), 0o644)
	}

	withCache(bad, strangerPub)
	_, stderr, err := f.local.run("build", cfg, "-A", "top", "--no-out-link")
	if err == nil || !strings.Contains(stderr, "no signing key to copy them with") {
		t.Fatalf("inputs in a cache the builders do not trust: %v\n%s", err, stderr)
	}
	for _, b := range []string{"a", "b"} {
		if f.on(b, dep) {
			t.Fatalf("builder %s took %s from a cache signed by a key it does not trust", b, dep)
		}
	}

	withCache(good, localPub)
	top, stderr, err := f.local.run("build", cfg, "-A", "top", "--no-out-link")
	if err != nil {
		t.Fatalf("build with the inputs in a cache: %v\n%s", err, stderr)
	}
	content, err := os.ReadFile(filepath.Join(f.local.root, strings.TrimSpace(top), "n"))
	if err != nil || !strings.Contains(string(content), "top") || !strings.Contains(string(content), "dep") {
		t.Fatalf("top: %q %v", content, err)
	}
	f.local.must("store", "verify", "--check-contents")
	substituted := 0
	for _, b := range []string{"a", "b"} {
		if f.on(b, dep) {
			substituted++
			newNexisCmd(t, f.roots[b]).must("store", "verify", "--check-contents")
		}
	}
	if substituted == 0 {
		t.Fatal("no builder has the dependency")
	}
}
