package resolve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise/fetch"
)

// GitRepo makes a bare repository at dir/repo.git whose tags are tags,
// each on its own commit with a file "version" holding the tag.
func gitRepo(t *testing.T, dir string, tags ...string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	work := filepath.Join(dir, "work")
	bare := filepath.Join(dir, "repo.git")
	run := func(d string, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = d
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.MkdirAll(work, 0o755)
	run(work, "init", "-q", "-b", "main")
	for _, tag := range tags {
		os.WriteFile(filepath.Join(work, "version"), []byte(tag+"\n"), 0o644)
		run(work, "add", "version")
		run(work, "commit", "-q", "-m", tag)
		run(work, "tag", "-a", "-m", tag, tag)
	}
	run(dir, "clone", "-q", "--bare", work, bare)
	return bare
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct{ a, b string }{{"v1.2", "v1.10"}, {"1.9", "1.10"}, {"v1.0", "v1.0.1"}, {"2.0-rc1", "2.0"}} {
		if fetch.CompareVersions(c.a, c.b) >= 0 || fetch.CompareVersions(c.b, c.a) <= 0 {
			t.Errorf("want %s < %s", c.a, c.b)
		}
	}
}

func TestLatestFromGitTags(t *testing.T) {
	dir := t.TempDir()
	repo := gitRepo(t, dir, "v1.0", "v1.10", "v1.2", "v2.0-rc1")
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		if r.URL.Path == "/releases/v1.10/tool-1.10-x86_64.tar.gz" {
			w.Write([]byte("prebuilt archive"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	cfgPath := filepath.Join(dir, "config.toml")
	os.WriteFile(cfgPath, []byte(`
[[packages]]
name = "tool"
version = "latest"
source = "file://`+repo+`"
rev = ""
prebuilt = "`+srv.URL+`/releases/{tag}/tool-{version}-{arch}.tar.gz"
fallback_to_source = true

[[packages]]
name = "plain"
version = "1.0"
`), 0o644)
	cfg, err := lang.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// "file://.../repo.git" ends in .git: a git source.
	lock, changes, err := Resolve(context.Background(), cfg, &lang.Lock{Packages: map[string]*lang.LockedPackage{}}, Options{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	lp := lock.Packages["tool"]
	if lp == nil || lp.Tag != "v1.10" || lp.Version != "1.10" || len(lp.Rev) != 40 {
		t.Fatalf("tool pinned to %+v, want v1.10", lp)
	}
	if lp.PrebuiltURL != srv.URL+"/releases/v1.10/tool-1.10-x86_64.tar.gz" || !strings.HasPrefix(lp.PrebuiltHash, "sha256:") {
		t.Errorf("prebuilt: %q %q", lp.PrebuiltURL, lp.PrebuiltHash)
	}
	if !strings.HasPrefix(lp.SourceHash, "blake3:") {
		t.Errorf("source hash %q", lp.SourceHash)
	}
	if _, ok := lock.Packages["plain"]; ok || len(changes) != 1 {
		t.Errorf("plain needs no pin; changes %v", changes)
	}
	// Written and read back, the lock is the same.
	lockPath := filepath.Join(dir, lang.LockFile)
	if err := lang.WriteLock(lockPath, lock); err != nil {
		t.Fatal(err)
	}
	back, err := lang.LoadLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if *back.Packages["tool"] != *lp {
		t.Errorf("read back %+v, wrote %+v", back.Packages["tool"], lp)
	}
	// A lock run keeps the pin; nothing changes.
	_, changes, err = Resolve(context.Background(), cfg, back, Options{TempDir: dir})
	if err != nil || len(changes) != 0 {
		t.Errorf("second lock: %v %v", changes, err)
	}
	// The source hash is the tree hash of the checkout.
	co := filepath.Join(dir, "co")
	if err := fetch.Git(context.Background(), "file://"+repo, lp.Rev, co); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(co, "version")); string(b) != "v1.10\n" {
		t.Errorf("checkout of the pinned rev has version %q", b)
	}
}
