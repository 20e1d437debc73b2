package store

import (
	"path/filepath"
	"testing"
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
