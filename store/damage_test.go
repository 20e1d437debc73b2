package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// flipByte changes the byte at off of a stored file behind the store's
// back, keeping its mode and mtime: only its bytes tell.
func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x20
	f.WriteAt(b, off)
	f.Close()
	os.Chtimes(p, time.Unix(1, 0), time.Unix(1, 0))
}

// TestDamageDoesNotSpread: a flipped byte in a stored file (and so, with
// hard links, in its pool entry) is not linked into a new path with the
// original bytes; the damaged entry leaves the pool, the store says so,
// verify plans a restore of the damaged path, and a restore with the
// registered bytes mends it. The hard link case runs on the test
// directory's filesystem, the reflink case on a loop-mounted XFS.
func TestDamageDoesNotSpread(t *testing.T) {
	for _, c := range []struct {
		name string
		dir  func(t *testing.T) string
		mode DedupMode
	}{
		{"hardlink", func(t *testing.T) string { return t.TempDir() }, DedupHardlink},
		{"reflink", func(t *testing.T) string { return mountXFS(t) }, DedupReflink},
	} {
		t.Run(c.name, func(t *testing.T) {
			var warned []string
			s, err := Open(filepath.Join(c.dir(t), "store"), Options{Dedup: c.mode, OnDamage: func(m string) { warned = append(warned, m) }})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			content := strings.Repeat("the original bytes ", 1000)
			src := filepath.Join(t.TempDir(), "src")
			writeTree(t, src, map[string]string{"data": content})
			one, err := s.Ingest(src, fakePath("one"), IngestOptions{})
			if err != nil {
				t.Fatal(err)
			}
			damaged := filepath.Join(s.Physical(one.Path), "data")
			flipByte(t, damaged, 5)
			m, _ := s.Manifest(one.Path)
			flipByte(t, s.poolPath(keyOf(&m[1])), 7) // the same inode with hard links

			two, err := s.Ingest(src, fakePath("two"), IngestOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(s.Physical(two.Path), "data")); string(b) != content {
				t.Fatal("the new path got the damaged bytes")
			}
			if len(warned) != 1 || !strings.Contains(warned[0], "damaged") {
				t.Errorf("damage reports %q", warned)
			}
			rep, err := s.Verify(VerifyOptions{CheckContents: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Damaged) != 1 || rep.Damaged[0].Path != one.Path || len(rep.Plan.Restore) != 1 {
				t.Fatalf("damaged %+v, errors %v", rep.Damaged, rep.Errors)
			}
			// The store alone cannot restore bytes: its repair leaves the
			// damaged path as it is (and deletes nothing).
			if _, err := s.Repair(rep.Plan); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(damaged); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Restore(RestoreRequest{Path: one.Path, Src: filepath.Join(t.TempDir(), "missing")}); err == nil {
				t.Fatal("restored from nothing")
			}
			other := filepath.Join(t.TempDir(), "other")
			writeTree(t, other, map[string]string{"data": "other bytes"})
			if _, err := s.Restore(RestoreRequest{Path: one.Path, Src: other}); !errors.Is(err, ErrNotIdentical) {
				t.Fatalf("restore with other bytes: %v", err)
			}
			if _, err := s.Restore(RestoreRequest{Path: one.Path, Src: src}); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, s, true)
			trash, _ := os.ReadDir(s.TrashDir())
			if len(trash) != 1 {
				t.Errorf("the damaged copy is not in the trash: %v", trash)
			}
		})
	}
}

// TestMissingPathRestored: a deleted path is damage, not absence: plain
// verify plans its restore, and Restore puts it back.
func TestMissingPathRestored(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, map[string]string{"a": "a", "d/b": "b", "l": "->a"})
	pi, err := s.Ingest(src, fakePath("p"), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := removeTree(s.Physical(pi.Path)); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged) != 1 || !rep.Damaged[0].Missing {
		t.Fatalf("damaged %+v", rep.Damaged)
	}
	if _, err := s.Restore(RestoreRequest{Path: pi.Path, Src: src}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, true)
}

// TestSecretsKeepTheirOwnInode: a secret and a public file with the
// same bytes never share an inode, in either order, and the secret's
// bytes are not left readable in the pool.
func TestSecretsKeepTheirOwnInode(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Dedup: DedupHardlink})
	tmp := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(tmp, name)
		os.WriteFile(p, []byte("$y$j9T$a password hash"), 0o600)
		return p
	}
	secret1, err := s.Ingest(file("s1"), fakePath("secret1"), IngestOptions{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	public, err := s.Ingest(file("p"), fakePath("public"), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret2, err := s.Ingest(file("s2"), fakePath("secret2"), IngestOptions{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	pp, s1, s2 := s.Physical(public.Path), s.Physical(secret1.Path), s.Physical(secret2.Path)
	if mode(pp) != 0o444 || mode(s1) != 0o400 || mode(s2) != 0o400 {
		t.Fatalf("modes public %o, secrets %o %o", mode(pp), mode(s1), mode(s2))
	}
	if inode(t, pp) == inode(t, s1) || inode(t, pp) == inode(t, s2) || inode(t, s1) == inode(t, s2) {
		t.Fatal("a secret shares an inode")
	}
	mustVerify(t, s, true)
	dir := filepath.Join(tmp, "tree")
	writeTree(t, dir, map[string]string{"a": "x"})
	if _, err := s.Ingest(dir, fakePath("tree"), IngestOptions{Private: true}); err == nil {
		t.Fatal("a private tree was accepted")
	}

	// A secret stored public by an older nexis shares the pool's inode
	// with a public path; MakePrivate gives it its own, and leaves the
	// public one readable.
	old := openTest(t, t.TempDir(), Options{Dedup: DedupHardlink})
	legacy, err := old.Ingest(file("l"), fakePath("legacy-secret"), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := old.Ingest(file("q"), fakePath("public"), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lp, qp := old.Physical(legacy.Path), old.Physical(pub.Path)
	if inode(t, lp) != inode(t, qp) {
		t.Fatal("setup: not shared")
	}
	if err := old.MakePrivate(legacy.Path); err != nil {
		t.Fatal(err)
	}
	if mode(lp) != 0o400 || mode(qp) != 0o444 || inode(t, lp) == inode(t, qp) {
		t.Fatalf("after MakePrivate: modes %o %o, shared %v", mode(lp), mode(qp), inode(t, lp) == inode(t, qp))
	}
	mustVerify(t, old, true)
	m, _ := old.Manifest(legacy.Path)
	if _, err := os.Lstat(old.poolPath(keyOf(&m[0]))); err != nil {
		t.Fatalf("the public copy's pool entry went: %v", err)
	}
	// Alone with its bytes, a secret that arrived public leaves the
	// pool, where everyone could read it.
	p := filepath.Join(tmp, "unique")
	os.WriteFile(p, []byte("$y$j9T$another hash"), 0o600)
	lone, err := old.Ingest(p, fakePath("imported-secret"), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ = old.Manifest(lone.Path)
	if _, err := os.Lstat(old.poolPath(keyOf(&m[0]))); err != nil {
		t.Fatalf("setup: no pool entry: %v", err)
	}
	if err := old.MakePrivate(lone.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(old.poolPath(keyOf(&m[0]))); err == nil {
		t.Fatal("the secret's bytes stayed in the pool")
	}
	mustVerify(t, old, true)
}
