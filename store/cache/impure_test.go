package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache/cachetest"
	"github.com/nexisos/nexis/store/storepath"
)

// addImpure puts into w's store an output built with sandbox_paths
// (sdk) and a pure-looking package that refers to it (plugin), which the
// store marks impure too.
func (w *world) addImpure(t *testing.T) (sdk, plugin storepath.Path) {
	t.Helper()
	sdk, plugin = fakePath("vendor-sdk-1"), fakePath("plugin-1")
	mk := func(p storepath.Path, content string, opts store.IngestOptions) {
		src := filepath.Join(w.dir, "scratch-"+p.Name)
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "f"), []byte(content), 0o644)
		if _, err := w.src.Ingest(src, p, opts); err != nil {
			t.Fatal(err)
		}
	}
	mk(sdk, "made from /opt/sdk", store.IngestOptions{Impure: store.SandboxPathsImpurity([]string{"/opt/sdk"})})
	mk(plugin, "links "+w.src.Logical(sdk)+" and "+w.src.Logical(w.app), store.IngestOptions{RefCandidates: []storepath.Path{sdk, w.app}})
	return sdk, plugin
}

// wantImpure checks a refusal: ErrImpure, naming the path, the setting
// and what to do.
func wantImpure(t *testing.T, err error, st *store.Store, p storepath.Path) {
	t.Helper()
	if !errors.Is(err, store.ErrImpure) {
		t.Fatalf("got %v, want a refusal of an impure path", err)
	}
	for _, part := range []string{st.Logical(p), "sandbox_paths = [/opt/sdk]", "build it without [nexis] sandbox_paths"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("the refusal does not say %q: %v", part, err)
		}
	}
}

// An impure path, or a closure holding one, is never copied, whatever
// the destination (a directory, nginx over HTTP, an S3 server, a remote
// nexis over ssh), and nothing of the closure goes; its pure part still
// can.
func TestCopyRefusesImpure(t *testing.T) {
	w := newWorld(t)
	sdk, plugin := w.addImpure(t)

	// The remote's store first: a store is made only in an empty
	// directory.
	remote := filepath.Join(w.dir, "remote")
	rs, err := store.Open(remote, store.Options{LogicalDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	rs.Close()
	os.WriteFile(filepath.Join(remote, "trusted-keys"), []byte(w.key.Public().String()+"\n"), 0o644)
	fakeSSH := filepath.Join(w.dir, "fake-ssh")
	os.WriteFile(fakeSSH, []byte("#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift 2\nexec sh -c \"$1\"\n"), 0o755)
	self, _ := os.Executable()
	sshOpts := SSHOptions{SSH: fakeSSH, RemoteProgram: "env " + envServe + "=" + remote + " " + self}

	ng := cachetest.StartNginx(t, filepath.Join(w.dir, "www"), cachetest.NginxOptions{})
	s3 := cachetest.StartS3(t, filepath.Join(w.dir, "s3"))
	s3.Bucket("nexis")
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(w.dir, "no-credentials"))

	fileCache := filepath.Join(w.dir, "cache")
	dests := []struct {
		url string
		// landed says whether anything of the closure reached it.
		landed func(p storepath.Path) bool
	}{
		{"file://" + fileCache, func(p storepath.Path) bool {
			_, err := os.Stat(filepath.Join(fileCache, infoName(p)))
			return err == nil
		}},
		{ng.URL + "/cache", func(p storepath.Path) bool {
			_, err := os.Stat(filepath.Join(ng.Root, "cache", infoName(p)))
			return err == nil
		}},
		{s3.URL("nexis", "cache"), func(p storepath.Path) bool {
			_, err := os.Stat(filepath.Join(s3.Root, "nexis", "cache", infoName(p)))
			return err == nil
		}},
		{"ssh://user@remote.example", func(p storepath.Path) bool {
			rs, err := store.Open(remote, store.Options{LogicalDir: "/store", ReadOnly: true})
			if err != nil {
				return false
			}
			defer rs.Close()
			ok, _ := rs.IsValid(p)
			return ok
		}},
	}
	for _, d := range dests {
		t.Run(strings.SplitN(d.url, ":", 2)[0], func(t *testing.T) {
			for _, root := range []storepath.Path{sdk, plugin} {
				dest, err := OpenDest(context.Background(), d.url, sshOpts)
				if err != nil {
					t.Fatal(err)
				}
				_, err = Copy(context.Background(), w.src, dest, []storepath.Path{root}, ExportOptions{Key: w.key, TempDir: t.TempDir()})
				dest.Close()
				wantImpure(t, err, w.src, sdk)
				if root == plugin && !strings.Contains(err.Error(), w.src.Logical(plugin)) {
					t.Errorf("the refusal does not name the path asked for: %v", err)
				}
				for _, p := range append([]storepath.Path{sdk, plugin}, w.all...) {
					if d.landed(p) {
						t.Fatalf("%s reached %s from a refused copy", p.Name, d.url)
					}
				}
			}
			// The pure part of the store still goes.
			dest, err := OpenDest(context.Background(), d.url, sshOpts)
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			if _, err := Copy(context.Background(), w.src, dest, []storepath.Path{w.app}, ExportOptions{Key: w.key, TempDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			if !d.landed(w.app) {
				t.Fatalf("the pure closure did not reach %s", d.url)
			}
		})
	}
}

// Neither an export file nor a signed record is ever made of an impure
// path, and a remote nexis asked for one over the serve protocol (what
// a pool fetches after a build) answers with the refusal.
func TestExportSignServeRefuseImpure(t *testing.T) {
	w := newWorld(t)
	sdk, plugin := w.addImpure(t)

	var buf bytes.Buffer
	err := Export(context.Background(), w.src, append(append([]storepath.Path{}, w.all...), plugin), &buf, ExportOptions{Key: w.key})
	wantImpure(t, err, w.src, sdk)
	if buf.Len() != 0 {
		t.Fatalf("a refused export wrote %d bytes", buf.Len())
	}

	for _, p := range []storepath.Path{sdk, plugin} {
		it, err := Prepare(w.src, p, w.key, "zstd", t.TempDir())
		if it != nil {
			it.Close()
		}
		wantImpure(t, err, w.src, sdk)
	}

	in := strings.NewReader(ServeMagic + "\nexport 1\n" + plugin.Base() + "\n")
	var out bytes.Buffer
	err = ServeWith(w.src, in, &out, ServeOptions{Trusted: w.trusted, Key: w.key, TempDir: t.TempDir()})
	wantImpure(t, err, w.src, sdk)
	br := bufio.NewReader(&out)
	hello, _ := br.ReadString('\n')
	answer, _ := br.ReadString('\n')
	if !strings.HasPrefix(hello, ServeMagic+" ") || !strings.HasPrefix(answer, "error refusing to ") || !strings.Contains(answer, "sandbox_paths") {
		t.Fatalf("serve answered %q then %q", hello, answer)
	}
	if rest, _ := br.ReadString(0); rest != "" {
		t.Fatalf("serve sent more after the refusal: %q", rest)
	}
}
