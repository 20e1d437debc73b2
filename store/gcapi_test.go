package store

import (
	"path/filepath"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
)

func TestUnregisterCascade(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	tmp := t.TempDir()
	c, b, a := fakePath("c"), fakePath("b"), fakePath("a")
	ingest := func(p storepath.Path, content string, cands ...storepath.Path) {
		src := filepath.Join(tmp, p.Name)
		writeTree(t, src, map[string]string{"f": content, "common": "same everywhere"})
		if _, err := s.Ingest(src, p, IngestOptions{RefCandidates: cands}); err != nil {
			t.Fatal(err)
		}
	}
	ingest(c, "leaf")
	ingest(b, "needs "+s.Logical(c), c)
	ingest(a, "needs "+s.Logical(b), b, c)
	if err := s.AddRoot("keep", a); err != nil {
		t.Fatal(err)
	}
	var zero []storepath.Path
	s.ZeroRefcount(func(p storepath.Path) error { zero = append(zero, p); return nil })
	if len(zero) != 0 {
		t.Fatalf("zero-refcount paths with a rooted chain: %v", zero)
	}
	// Rooted: nothing goes.
	res, err := s.Unregister([]storepath.Path{a, b, c}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Paths) != 0 || len(res.Skipped) != 3 {
		t.Fatalf("unregistered rooted paths: %+v", res)
	}
	if err := s.RemoveRoot("keep"); err != nil {
		t.Fatal(err)
	}
	s.ZeroRefcount(func(p storepath.Path) error { zero = append(zero, p); return nil })
	if len(zero) != 1 || zero[0] != a {
		t.Fatalf("zero list %v, want [a]", zero)
	}
	// A kept (temp-rooted) path stops the cascade.
	res, err = s.Unregister(zero, true, func(p storepath.Path) bool { return p == c })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Paths) != 2 || len(res.Skipped) != 1 || res.Skipped[0] != c {
		t.Fatalf("cascade: %+v", res)
	}
	// "f" of a and b reached zero; "common" is still held by c.
	if len(res.Contents) != 2 {
		t.Errorf("contents reaching zero: %d, want 2", len(res.Contents))
	}
	for _, p := range res.Paths {
		if err := s.MoveToTrash(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, ct := range res.Contents {
		if ok, err := s.RemovePoolEntry(ct); !ok || err != nil {
			t.Errorf("RemovePoolEntry: %v %v", ok, err)
		}
	}
	if n, _ := s.Refcount(c); n != 0 {
		t.Errorf("refcount(c) = %d after its referrers went", n)
	}
	if err := s.MoveToTrash(c); err == nil {
		t.Errorf("MoveToTrash of a registered path succeeded")
	}
	mustVerify(t, s, true)
	rep, _ := s.Verify(VerifyOptions{})
	if len(rep.Garbage) != 0 {
		t.Errorf("garbage left: %v", rep.Garbage)
	}
	st, _ := s.Stats()
	if st.Paths != 1 || st.Contents != 2 {
		t.Errorf("stats after collection: %+v", st)
	}
}

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
	tx.b.PutCF(tx.cf(cfRefcount), []byte(pi.Path.Hash), appendUvarint(nil, 7))
	tx.b.DeleteCF(tx.cf(cfContent), func() []byte { m, _ := s.Manifest(pi.Path); k := keyOf(&m[1]); return k[:] }())
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
