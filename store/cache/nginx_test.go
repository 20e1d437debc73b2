package cache

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache/cachetest"
	"github.com/nexisos/nexis/store/storepath"
)

// TestNginxCache: the closure goes up to Debian's nginx by PUT (its dav
// module), and comes down into an empty store, verified.
func TestNginxCache(t *testing.T) {
	w := newWorld(t)
	ng := cachetest.StartNginx(t, filepath.Join(w.dir, "www"), cachetest.NginxOptions{})
	url := ng.URL + "/cache"
	dest, err := OpenDest(context.Background(), url, SSHOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := w.copyTo(t, dest); s.Sent != 3 {
		t.Fatalf("%+v", s)
	}
	if s := w.copyTo(t, dest); s.Sent != 0 {
		t.Fatalf("second copy sent %d", s.Sent)
	}
	if _, err := os.Stat(filepath.Join(ng.Root, "cache", CacheInfoFile)); err != nil {
		t.Fatal("PUT did not land in nginx's root:", err)
	}
	dst := openStore(t, filepath.Join(w.dir, "dst"))
	sub, _ := NewSubstituter([]string{url}, w.trusted)
	stats, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Paths != 3 {
		t.Fatalf("%+v", stats)
	}
	verify(t, dst)

	// A cache of another store directory is refused by name.
	os.WriteFile(filepath.Join(ng.Root, "cache", CacheInfoFile), []byte("StoreDir: /nix/store\n"), 0o644)
	other := openStore(t, filepath.Join(w.dir, "other"))
	sub, _ = NewSubstituter([]string{url}, w.trusted)
	if _, err := sub.Substitute(context.Background(), other, []storepath.Path{w.app}); err == nil || !strings.Contains(err.Error(), "serves the store /nix/store") {
		t.Fatalf("cache of another store: %v", err)
	}
}

// TestInterruptedDownload: nginx dies in the middle of a download;
// nothing registers and nothing is left behind; after a restart the
// same substitution succeeds.
func TestInterruptedDownload(t *testing.T) {
	w := newWorld(t)
	// A big incompressible file, so that the download lasts.
	big := fakePath("big-1")
	src := filepath.Join(w.dir, "bigsrc")
	os.MkdirAll(src, 0o755)
	data := make([]byte, 4<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(src, "blob"), data, 0o644)
	if _, err := w.src.Ingest(src, big, store.IngestOptions{RefCandidates: w.all}); err != nil {
		t.Fatal(err)
	}
	cacheRoot := filepath.Join(w.dir, "www")
	dest, _ := OpenDest(context.Background(), "file://"+filepath.Join(cacheRoot, "c"), SSHOptions{})
	if _, err := Copy(context.Background(), w.src, dest, []storepath.Path{big, w.app}, ExportOptions{Key: w.key}); err != nil {
		t.Fatal(err)
	}
	ng := cachetest.StartNginx(t, cacheRoot, cachetest.NginxOptions{LimitRate: "512k"})
	dst := openStore(t, filepath.Join(w.dir, "dst"))
	sub, _ := NewSubstituter([]string{ng.URL + "/c"}, w.trusted)
	done := make(chan error, 1)
	go func() {
		_, err := sub.Substitute(context.Background(), dst, []storepath.Path{big, w.app})
		done <- err
	}()
	// Kill once the download is under way: part of the blob in tmp.
	deadline := time.Now().Add(30 * time.Second)
	for !partialDownload(dst, "blob", int64(len(data))) {
		if time.Now().After(deadline) {
			t.Fatal("the download never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ng.Kill()
	if err := <-done; err == nil {
		t.Fatal("an interrupted download succeeded")
	} else {
		t.Logf("interrupted: %v", err)
	}
	for _, p := range append([]storepath.Path{big}, w.all...) {
		if ok, _ := dst.IsValid(p); ok {
			t.Fatalf("%s registered after an interrupted download", p.Name)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dst.Dir(), ".nexis", "tmp")); len(ents) != 0 {
		t.Fatalf("left in tmp: %v", ents)
	}
	verify(t, dst)

	ng.Restart(cachetest.NginxOptions{})
	sub, _ = NewSubstituter([]string{ng.URL + "/c"}, w.trusted)
	stats, err := sub.Substitute(context.Background(), dst, []storepath.Path{big, w.app})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Paths != 4 {
		t.Fatalf("%+v", stats)
	}
	verify(t, dst)
}

// partialDownload reports whether the file name is being written under
// tmp: some of its size bytes are there, not all.
func partialDownload(st *store.Store, name string, size int64) bool {
	found := false
	filepath.Walk(filepath.Join(st.Dir(), ".nexis", "tmp"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == name && fi.Size() > 0 && fi.Size() < size {
			found = true
		}
		return nil
	})
	return found
}
