package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
)

// An impure output is recorded as such, in the database, and stays so
// after the store is closed and opened again; what refers to it is
// impure too, named after the path where the host came in; what does not
// stays pure.
func TestImpurityIsRecordedAndInherited(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ingest := func(name, content string, opts IngestOptions) storepath.Path {
		t.Helper()
		src := filepath.Join(t.TempDir(), name)
		writeTree(t, src, map[string]string{"f": content})
		p := fakePath(name)
		if _, err := s.Ingest(src, p, opts); err != nil {
			t.Fatal(err)
		}
		return p
	}
	why := SandboxPathsImpurity([]string{"/opt/sdk"})
	sdk := ingest("sdk", "vendor bits", IngestOptions{Impure: why})
	app := ingest("app", "uses "+s.Logical(sdk), IngestOptions{RefCandidates: []storepath.Path{sdk}})
	top := ingest("top", "uses "+s.Logical(app), IngestOptions{RefCandidates: []storepath.Path{app}})
	pure := ingest("pure", "nothing of the host", IngestOptions{})

	// Two paths registered together, the impure one second: the batch
	// is followed whatever its order.
	a, b := fakePath("batch-a"), fakePath("batch-b")
	rb, err := placeOneFile(s, b, "b")
	if err != nil {
		t.Fatal(err)
	}
	rb.Impure = why
	ra, err := placeOneFile(s, a, "a", b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register([]Registration{ra, rb}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTest(t, dir, Options{ReadOnly: true})
	want := map[storepath.Path]string{
		sdk:  why,
		app:  "it depends on " + s.Logical(sdk) + ", which was " + why,
		top:  "it depends on " + s.Logical(sdk) + ", which was " + why,
		pure: "",
		b:    why,
		a:    "it depends on " + s.Logical(b) + ", which was " + why,
	}
	for p, w := range want {
		pi, err := s.QueryPathInfo(p)
		if err != nil {
			t.Fatal(err)
		}
		if pi.Impure != w {
			t.Errorf("%s: Impure = %q, want %q", p.Name, pi.Impure, w)
		}
	}
	err = s.RefuseImpure([]storepath.Path{pure, top}, "copy it to file:///cache")
	var ie *ImpureError
	if !errors.Is(err, ErrImpure) || !errors.As(err, &ie) || ie.Path != s.Logical(top) {
		t.Fatalf("RefuseImpure = %v", err)
	}
	for _, part := range []string{"copy it to file:///cache", s.Logical(top), "[nexis] sandbox_paths = [/opt/sdk]", "build it without [nexis] sandbox_paths"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("the refusal does not say %q: %v", part, err)
		}
	}
	if err := s.RefuseImpure([]storepath.Path{pure}, "copy it"); err != nil {
		t.Errorf("a pure path refused: %v", err)
	}
	mustVerify(t, s, true)
}

// A pure path's record is the version 1 record schema 1 wrote, so a
// store of schema 1 (made here by writing version 1 back: its records are
// the same bytes) is read as it is when opened read-only and migrated
// to schema 2 by a writable open, its paths intact.
func TestSchema1Migrates(t *testing.T) {
	if b := encodeInfo(&PathInfo{Path: fakePath("x")}); b[0] != 1 {
		t.Fatalf("a pure record is version %d, want 1", b[0])
	}
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	src := filepath.Join(t.TempDir(), "old")
	writeTree(t, src, map[string]string{"f": "from schema 1"})
	p := fakePath("old")
	if _, err := s.Ingest(src, p, IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	tx := s.newTxn()
	tx.put(cfDefault, keySchema, appendUvarint(nil, 1))
	if err := tx.commit(); err != nil {
		t.Fatal(err)
	}
	tx.destroy()
	s.Close()

	ro := openTest(t, dir, Options{ReadOnly: true})
	if v, _ := ro.getUint(cfDefault, keySchema); v != 1 {
		t.Fatalf("a read-only open changed the schema to %d", v)
	}
	if ok, err := ro.IsValid(p); !ok || err != nil {
		t.Fatalf("schema 1 path read-only: %v %v", ok, err)
	}
	ro.Close()

	s = openTest(t, dir, Options{})
	if v, _ := s.getUint(cfDefault, keySchema); v != SchemaVersion {
		t.Fatalf("schema %d after a writable open, want %d", v, SchemaVersion)
	}
	pi, err := s.QueryPathInfo(p)
	if err != nil || pi.Impure != "" {
		t.Fatalf("schema 1 path after migration: %+v %v", pi, err)
	}
	mustVerify(t, s, true)
}
