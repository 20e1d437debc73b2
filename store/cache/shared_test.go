package cache

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nexisos/nexis/store/archive"
	"github.com/nexisos/nexis/store/storepath"
)

// TestSharedItems: copies that send the same path at the same time
// share one archive, which goes with the last of them; a later copy
// prepares it again; what two copies made that way is what each makes
// alone (both caches substitute the closure).
func TestSharedItems(t *testing.T) {
	w := newWorld(t)
	tmp := t.TempDir()
	var sh SharedItems
	a, err := sh.prepare(w.src, w.app, w.key, archive.CompressionNone, tmp)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sh.prepare(w.src, w.app, w.key, archive.CompressionNone, tmp)
	if err != nil {
		t.Fatal(err)
	}
	if a.file != b.file || a.Info != b.Info {
		t.Fatalf("two users of one path got two archives: %v, %v", a.file, b.file)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Open(); err != nil {
		t.Fatalf("the archive went while a copy still used it: %v", err)
	} else {
		r.Close()
	}
	f := b.file
	b.Close()
	if _, err := f.Stat(); err == nil {
		t.Fatal("the archive outlived its last user")
	}
	c, err := sh.prepare(w.src, w.app, w.key, archive.CompressionNone, tmp)
	if err != nil {
		t.Fatal(err)
	}
	// Prepared again, not the closed file: read whole.
	r, err := c.Open()
	if err != nil {
		t.Fatalf("a later copy's archive: %v", err)
	}
	if n, err := io.Copy(io.Discard, r); err != nil || n != c.Info.FileSize {
		t.Fatalf("a later copy's archive: read %d of %d bytes: %v", n, c.Info.FileSize, err)
	}
	r.Close()
	c.Close()

	var wg sync.WaitGroup
	dirs := []string{filepath.Join(w.dir, "cache-a"), filepath.Join(w.dir, "cache-b")}
	errs := make([]error, len(dirs))
	for i, d := range dirs {
		dest, err := OpenDest(context.Background(), "file://"+d, SSHOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Copy(context.Background(), w.src, dest, []storepath.Path{w.app}, ExportOptions{Key: w.key, TempDir: tmp, Shared: &sh})
		}()
	}
	wg.Wait()
	for i, d := range dirs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		dst := openStore(t, filepath.Join(w.dir, "dst-"+filepath.Base(d)))
		sub, err := NewSubstituter([]string{"file://" + d}, w.trusted)
		if err != nil {
			t.Fatal(err)
		}
		if stats, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app}); err != nil || stats.Paths != 3 {
			t.Fatalf("%s: %+v %v", d, stats, err)
		}
		verify(t, dst)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 || len(sh.items) != 0 {
		t.Fatalf("left behind: %d files, %d items", len(left), len(sh.items))
	}
}

// TestPreparedArchiveHasNoName: an item's archive is never a file of the
// temporary directory, so that a process that dies while it sends (a
// reader that goes away kills `nexis store export` with SIGPIPE) leaves
// none behind; each Open reads it whole from its start.
func TestPreparedArchiveHasNoName(t *testing.T) {
	w := newWorld(t)
	tmp := t.TempDir()
	it, err := Prepare(w.src, w.app, w.key, archive.CompressionZstd, tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("the temporary directory holds %v", left)
	}
	for range 2 {
		r, err := it.Open()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != it.Info.FileSize {
			t.Fatalf("read %d of %d bytes: %v", n, it.Info.FileSize, err)
		}
	}
}
