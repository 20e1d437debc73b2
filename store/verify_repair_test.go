package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestVerifyRepairsCounters(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	src := filepath.Join(t.TempDir(), "x")
	writeTree(t, src, map[string]string{"f": "x"})
	pi, err := s.AddPath(src, "x")
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt a refcount and a content count behind the store's back.
	tx := s.newTxn()
	tx.put(cfRefcount, []byte(pi.Path.Hash), appendUvarint(nil, 7))
	tx.del(cfContent, func() []byte { m, _ := s.Manifest(pi.Path); k := keyOf(&m[1]); return k[:] }())
	if err := tx.commit(); err != nil {
		t.Fatal(err)
	}
	tx.destroy()
	rep, _ := s.Verify(VerifyOptions{})
	if rep.Clean() {
		t.Fatalf("verify missed corrupted counters")
	}
	if _, err := s.Verify(VerifyOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, true)
}

// A store path whose mode or mtime changed after registration hashes the
// same, but is no longer what ingestion left: verify --check-contents
// says so, plain verify does not look.
func TestVerifyChecksNormalisation(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Dedup: DedupCopy})
	src := filepath.Join(t.TempDir(), "x")
	writeTree(t, src, map[string]string{"f": "x", "d/g": "y"})
	pi, err := s.AddPath(src, "x")
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, true)
	// A private file (a secret, mode 0400) is narrower than normal: fine.
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("hash"), 0o600)
	spi, err := s.AddPath(secret, "secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MakePrivate(spi.Path); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, true)
	phys := s.Physical(pi.Path)
	for _, c := range []struct {
		name    string
		breakIt func() error
		fix     func() error
		want    string
	}{
		{"writable file", func() error { return os.Chmod(filepath.Join(phys, "f"), 0o644) },
			func() error { return os.Chmod(filepath.Join(phys, "f"), modeFile) }, "file f has mode 0644"},
		{"setuid file", func() error { return unix.Chmod(filepath.Join(phys, "f"), 0o4444) },
			func() error { return os.Chmod(filepath.Join(phys, "f"), modeFile) }, "file f has mode 4444"},
		{"writable directory", func() error { return os.Chmod(filepath.Join(phys, "d"), 0o755) },
			func() error { return os.Chmod(filepath.Join(phys, "d"), modeDir) }, "directory d has mode 0755"},
		{"touched file", func() error { return os.Chtimes(filepath.Join(phys, "d/g"), time.Now(), time.Now()) },
			func() error { return setMtime(filepath.Join(phys, "d/g")) }, "d/g has mtime"},
	} {
		if err := c.breakIt(); err != nil {
			t.Fatal(err)
		}
		if rep, _ := s.Verify(VerifyOptions{}); !rep.Clean() {
			t.Errorf("%s: plain verify looked at modes: %v", c.name, rep.Errors)
		}
		rep, err := s.Verify(VerifyOptions{CheckContents: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], c.want) {
			t.Errorf("%s: verify --check-contents said %v, want %q", c.name, rep.Errors, c.want)
		}
		if err := c.fix(); err != nil {
			t.Fatal(err)
		}
		mustVerify(t, s, true)
	}
}
