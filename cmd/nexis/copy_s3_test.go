package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store/cache/cachetest"
)

// TestCopyS3: nexis copy --to s3:// into a real S3 server on loopback
// (versitygw), credentials from the environment, then a fresh root whose
// [nexis.substituters] names the bucket builds nothing.
func TestCopyS3(t *testing.T) {
	dir := t.TempDir()
	srv := cachetest.StartS3(t, filepath.Join(dir, "s3"))
	srv.Bucket("cache")
	url := srv.URL("cache", "nexis")
	cfgDir := filepath.Join(dir, "cfg")
	os.MkdirAll(cfgDir, 0o755)
	files := map[string]string{
		"config.toml": `[system]
hostname = "t"

[[packages]]
name = "libgreet"
version = "1.0"
build_system = "custom"
build_script = "lib.sh"

[[packages]]
name = "greet"
version = "1.0"
build_system = "custom"
build_script = "greet.sh"
dependencies = ["libgreet"]
`,
		"lib.sh":   "mkdir -p $out/share\necho hello from the bucket > $out/share/greeting\n",
		"greet.sh": "mkdir -p $out/bin\nprintf '#!/bin/sh\\ncat %s/share/greeting\\n' \"$buildInputs\" > $out/bin/greet\nchmod +x $out/bin/greet\n",
	}
	for name, content := range files {
		os.WriteFile(filepath.Join(cfgDir, name), []byte(content), 0o644)
	}
	cfg := filepath.Join(cfgDir, "config.toml")
	creds := append(srv.Env(), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"), "HOME="+dir)

	l := newNexisCmd(t, filepath.Join(dir, "local"), creds...)
	secret, public := filepath.Join(dir, "cache.secret"), filepath.Join(dir, "cache.public")
	pub := strings.TrimSpace(l.must("key", "generate", "cache-1", "--secret-file", secret, "--public-file", public))
	greet := strings.TrimSpace(l.must("build", cfg, "-A", "greet", "--no-out-link"))
	l.env = append(l.env, "NEXIS_SIGN_KEY="+secret)
	_, stderr, err := l.run("copy", "--to", url, greet)
	if err != nil || !strings.Contains(stderr, "copied 2 of 2 path(s)") {
		t.Fatalf("copy: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(srv.Root, "cache", "nexis", "nexis-cache-info")); err != nil {
		t.Fatal("nothing landed in the bucket:", err)
	}
	if _, stderr, err = l.run("copy", "--to", url, greet); err != nil || !strings.Contains(stderr, "copied 0 of 2 path(s)") {
		t.Fatalf("second copy: %v\n%s", err, stderr)
	}
	// Without credentials the server refuses the upload, and says so.
	anon := newNexisCmd(t, filepath.Join(dir, "local"), "NEXIS_SIGN_KEY="+secret, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"), "HOME="+dir, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	if _, stderr, err = anon.run("copy", "--to", srv.URL("cache", "other"), greet); err == nil || !strings.Contains(stderr, "credentials") {
		t.Fatalf("anonymous copy: %v\n%s", err, stderr)
	}

	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "\n[nexis.substituters]\nurls = [%q]\ntrusted_keys = [%q]\n", url, pub)
	f.Close()
	fresh := newNexisCmd(t, filepath.Join(dir, "fresh"), creds...)
	out := fresh.must("build", cfg, "-A", "greet", "--no-out-link", "--json")
	if !strings.Contains(out, `"built": 0`) || !strings.Contains(out, `"substituted": 1`) {
		t.Fatalf("the fresh root did not substitute from the bucket: %s", out)
	}
	fresh.must("store", "path-info", greet)
	fresh.must("store", "verify", "--check-contents")
}
