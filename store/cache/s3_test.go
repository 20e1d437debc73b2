package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache/cachetest"
	"github.com/nexisos/nexis/store/storepath"
)

// s3World is a world with a running S3 server (versitygw) and a bucket.
type s3World struct {
	*world
	srv *cachetest.S3
	url string
}

func newS3World(t *testing.T) *s3World {
	w := newWorld(t)
	srv := cachetest.StartS3(t, filepath.Join(w.dir, "s3"))
	srv.Bucket("nexis")
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	// No shared credentials file of the machine's user may answer.
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(w.dir, "no-credentials"))
	return &s3World{world: w, srv: srv, url: srv.URL("nexis", "cache/x86")}
}

// object is the file versitygw keeps an object of the cache in.
func (w *s3World) object(name string) string {
	return filepath.Join(w.srv.Root, "nexis", "cache", "x86", filepath.FromSlash(name))
}

// addBlob ingests a path holding size random bytes (incompressible, so
// that its archive is as large) into the world's source store.
func (w *s3World) addBlob(t *testing.T, name string, size int) storepath.Path {
	t.Helper()
	p := fakePath(name)
	src := filepath.Join(w.dir, "scratch-"+name)
	os.MkdirAll(src, 0o755)
	data := make([]byte, size)
	rand.Read(data)
	os.WriteFile(filepath.Join(src, "blob"), data, 0o644)
	if _, err := w.src.Ingest(src, p, store.IngestOptions{RefCandidates: w.all}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *s3World) dest(t *testing.T) *s3Cache {
	t.Helper()
	d, err := OpenDest(context.Background(), w.url, SSHOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.(*s3Cache)
}

// TestS3Cache: a closure goes up to a real S3 server, its big archive in
// parts, and comes down into an empty store, verified; a second copy
// sends nothing.
func TestS3Cache(t *testing.T) {
	w := newS3World(t)
	big := w.addBlob(t, "big-1", 11<<20)
	dest := w.dest(t)
	dest.partSize = 5 << 20 // S3's smallest: the blob goes up in three parts
	var trace bytes.Buffer
	dest.client.TraceOn(&trace)
	stats, err := Copy(context.Background(), w.src, dest, []storepath.Path{w.app, big}, ExportOptions{Key: w.key, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent != 4 {
		t.Fatalf("%+v", stats)
	}
	dest.client.TraceOff()
	if n := strings.Count(trace.String(), "PUT /nexis/cache/x86/archive/"); !strings.Contains(trace.String(), "uploadId=") || n < 6 {
		t.Fatalf("the big archive did not go up in parts (%d archive PUTs)", n)
	}
	if _, err := os.Stat(w.object(CacheInfoFile)); err != nil {
		t.Fatal("the upload did not land in the bucket:", err)
	}
	if s := w.copyTo(t, w.dest(t)); s.Sent != 0 {
		t.Fatalf("second copy sent %d", s.Sent)
	}

	dst := openStore(t, filepath.Join(w.dir, "dst"))
	sub, err := NewSubstituter([]string{w.url}, w.trusted)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app, big})
	if err != nil {
		t.Fatal(err)
	}
	if got.Paths != 4 {
		t.Fatalf("%+v", got)
	}
	verify(t, dst)
	_, err = sub.Substitute(context.Background(), dst, []storepath.Path{fakePath("nowhere-1")})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("a path the bucket lacks: %v", err)
	}
}

// TestS3Refusals: objects changed in the bucket are refused on the way
// down, and nothing registers: an archive swapped for another's bytes
// under its valid signed record, a record whose signature no longer
// matches, one signed by an unknown key, and wrong credentials.
func TestS3Refusals(t *testing.T) {
	w := newS3World(t)
	w.copyTo(t, w.dest(t))
	lib := w.all[0]
	rec, err := os.ReadFile(w.object(infoName(lib)))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseInfo(rec, "/store")
	if err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, want string) {
		t.Helper()
		dst := openStore(t, filepath.Join(t.TempDir(), "dst"))
		sub, _ := NewSubstituter([]string{w.url}, w.trusted)
		_, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want a refusal saying %q, got %v", want, err)
		}
		for _, p := range w.all {
			if ok, _ := dst.IsValid(p); ok {
				t.Fatalf("%s registered after a refusal", p.Name)
			}
		}
		verify(t, dst)
	}
	restore := func(name string, b []byte) {
		if err := os.WriteFile(w.object(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("archive-bytes", func(t *testing.T) {
		// Another path's archive, well formed, under lib's signed record.
		orig, _ := os.ReadFile(w.object(parsed.URL))
		defer restore(parsed.URL, orig)
		toolRec, _ := os.ReadFile(w.object(infoName(w.all[1])))
		tool, _ := ParseInfo(toolRec, "/store")
		other, _ := os.ReadFile(w.object(tool.URL))
		restore(parsed.URL, other)
		refused(t, "archive does not match its signed record")
	})
	t.Run("one-byte", func(t *testing.T) {
		orig, _ := os.ReadFile(w.object(parsed.URL))
		defer restore(parsed.URL, orig)
		bad := bytes.Clone(orig)
		bad[len(bad)/2] ^= 0x40
		restore(parsed.URL, bad)
		refused(t, lib.Hash)
	})
	t.Run("record-changed", func(t *testing.T) {
		defer restore(infoName(lib), rec)
		forged := *parsed
		forged.Deriver = "drv-someone-else"
		restore(infoName(lib), forged.Marshal())
		refused(t, "refusing")
	})
	t.Run("unknown-key", func(t *testing.T) {
		defer restore(infoName(lib), rec)
		other := newWorld(t)
		forged := *parsed
		forged.Sigs = nil
		forged.Sign(other.key)
		restore(infoName(lib), forged.Marshal())
		refused(t, "refusing")
	})
	t.Run("wrong-credentials", func(t *testing.T) {
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
		refused(t, "check the credentials")
	})
	t.Run("no-bucket", func(t *testing.T) {
		dst := openStore(t, filepath.Join(t.TempDir(), "dst"))
		sub, _ := NewSubstituter([]string{w.srv.URL("missing", "")}, w.trusted)
		_, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app})
		if err == nil || !strings.Contains(err.Error(), "bucket missing does not exist") {
			t.Fatalf("missing bucket: %v", err)
		}
	})
}

// TestS3CompromisedFixedOutput: the bucket holds other bytes under the
// path of a fixed-output fetch, signed by the trusted key (a compromised
// cache): the content address refuses them on arrival, as from every
// other cache.
func TestS3CompromisedFixedOutput(t *testing.T) {
	w := newS3World(t)
	good, evil := []byte("the real release tarball\n"), []byte("a tarball with a back door\n")
	p, ca := fixedFetch(t, good)
	bad := openStore(t, filepath.Join(w.dir, "bad"))
	registerRaw(t, bad, p, evil, ca.String())
	if _, err := Copy(context.Background(), bad, w.dest(t), []storepath.Path{p}, ExportOptions{Key: w.key, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t, filepath.Join(w.dir, "dst"))
	sub, _ := NewSubstituter([]string{w.url}, w.trusted)
	_, err := sub.SubstituteFixed(context.Background(), dst, p, ca)
	if err == nil || !strings.Contains(err.Error(), ca.Digest()) {
		t.Fatalf("other bytes under a content address: %v", err)
	}
	if ok, _ := dst.IsValid(p); ok {
		t.Fatal("registered")
	}
}

// TestS3RestartMidCopy: the server is killed and started again while a
// copy is uploading, and again while a substitution is downloading; the
// client's retries carry both through, and what arrives verifies.
func TestS3RestartMidCopy(t *testing.T) {
	w := newS3World(t)
	var blobs []storepath.Path
	for i := range 24 {
		blobs = append(blobs, w.addBlob(t, fmt.Sprintf("blob%02d-1", i), 1<<20))
	}
	roots := append([]storepath.Path{w.app}, blobs...)
	// restartWhen kills and restarts the server once cond holds.
	restartWhen := func(cond func() bool) (stop func() bool) {
		var (
			wg        sync.WaitGroup
			restarted bool
			quit      = make(chan struct{})
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !cond() {
				select {
				case <-quit:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
			w.srv.Kill()
			time.Sleep(300 * time.Millisecond)
			w.srv.Restart()
			restarted = true
		}()
		return func() bool { close(quit); wg.Wait(); return restarted }
	}

	archives := func() int {
		ents, _ := os.ReadDir(w.object("archive"))
		return len(ents)
	}
	stop := restartWhen(func() bool { return archives() >= 4 })
	stats, err := Copy(context.Background(), w.src, w.dest(t), roots, ExportOptions{Key: w.key, TempDir: t.TempDir(), Jobs: 2})
	if !stop() {
		t.Fatal("the copy ended before the server was restarted")
	}
	if err != nil {
		t.Fatalf("the copy did not survive the restart: %v", err)
	}
	if stats.Sent != len(w.all)+len(blobs) {
		t.Fatalf("%+v", stats)
	}

	dst := openStore(t, filepath.Join(w.dir, "dst"))
	sub, _ := NewSubstituter([]string{w.url}, w.trusted)
	sub.Jobs = 2
	var mu sync.Mutex
	done := 0
	sub.Progress = func(p SubstituteProgress) { mu.Lock(); done = p.Paths; mu.Unlock() }
	stop = restartWhen(func() bool { mu.Lock(); defer mu.Unlock(); return done >= 3 })
	got, err := sub.Substitute(context.Background(), dst, roots)
	if !stop() {
		t.Fatal("the substitution ended before the server was restarted")
	}
	if err != nil {
		t.Fatalf("the substitution did not survive the restart: %v", err)
	}
	if got.Paths != stats.Sent {
		t.Fatalf("%+v", got)
	}
	verify(t, dst)
}
