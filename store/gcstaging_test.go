package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
)

// stage does what Collect does to a path before its batch commits:
// renames its directory into the staging directory.
func stage(t *testing.T, s *Store, p storepath.Path) {
	t.Helper()
	b := filepath.Join(s.stagingDir(), p.Hash[:2])
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.Physical(p), filepath.Join(b, p.Base())); err != nil {
		t.Fatal(err)
	}
}

func ingestOne(t *testing.T, s *Store, name string) storepath.Path {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	writeTree(t, src, map[string]string{"f": "contents of " + name, "d/g": "more of " + name})
	p := fakePath(name)
	if _, err := s.Ingest(src, p, IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func trashHolds(t *testing.T, s *Store, p storepath.Path) bool {
	t.Helper()
	found := false
	filepath.WalkDir(s.TrashDir(), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == p.Base() {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// A collection killed after renaming into staging but before its batch
// committed: the paths are still registered, and recovery puts their
// directories back.
func TestFinishCollectRestoresStagedPathsOfAnUncommittedBatch(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	a := ingestOne(t, s, "a")
	b := ingestOne(t, s, "b")
	stage(t, s, a)
	stage(t, s, b)
	fst, err := s.FinishCollect(2)
	if err != nil {
		t.Fatal(err)
	}
	if fst.Restored != 2 {
		t.Fatalf("restored %d, want 2", fst.Restored)
	}
	if _, err := os.Stat(s.stagingDir()); !os.IsNotExist(err) {
		t.Fatalf("the staging directory is left: %v", err)
	}
	if trashHolds(t, s, a) || trashHolds(t, s, b) {
		t.Fatal("a registered path went to the trash")
	}
	mustVerify(t, s, true)
}

// Killed after the batch committed: the staged paths are unregistered
// garbage, and recovery moves them into the trash; the records find
// nothing left to move.
func TestFinishCollectTrashesStagedPathsOfACommittedBatch(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	a := ingestOne(t, s, "a")
	keep := ingestOne(t, s, "keep")
	if err := s.AddRoot("keep", keep); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CollectBatch([]storepath.Path{a}, nil); err != nil {
		t.Fatal(err)
	}
	stage(t, s, a)
	fst, err := s.FinishCollect(2)
	if err != nil {
		t.Fatal(err)
	}
	if fst.Restored != 0 || fst.Moved != 0 {
		t.Fatalf("restored %d, moved %d; want 0, 0 (the staging directory goes whole)", fst.Restored, fst.Moved)
	}
	if _, err := os.Stat(s.Physical(a)); !os.IsNotExist(err) {
		t.Fatalf("collected %s is back in its bucket: %v", a.Base(), err)
	}
	if !trashHolds(t, s, a) {
		t.Fatal("the collected path is not in the trash")
	}
	ents, _ := os.ReadDir(s.TrashDir())
	staged := false
	for _, e := range ents {
		staged = staged || strings.HasPrefix(e.Name(), StagedPrefix)
	}
	if !staged {
		t.Fatalf("the trash holds no %s directory: %v", StagedPrefix, ents)
	}
	if pending, _ := s.PendingCollect(); pending {
		t.Fatal("records left")
	}
	mustVerify(t, s, true)
}

// A path collected, staged, and then placed and registered again (by a
// command that ran before recovery): the new copy stays, the staged one
// is garbage.
func TestFinishCollectKeepsANewCopyOverAStagedOne(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	a := ingestOne(t, s, "a")
	if _, err := s.CollectBatch([]storepath.Path{a}, nil); err != nil {
		t.Fatal(err)
	}
	stage(t, s, a)
	ingestOne(t, s, "a")
	fst, err := s.FinishCollect(2)
	if err != nil {
		t.Fatal(err)
	}
	if fst.Restored != 0 {
		t.Fatalf("restored %d over a new copy", fst.Restored)
	}
	if ok, _ := s.IsValid(a); !ok {
		t.Fatal("the new copy is not registered")
	}
	mustVerify(t, s, true)
}
