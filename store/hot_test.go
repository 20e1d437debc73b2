package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
)

// The writer's cache of records and counts follows every change the
// process commits: a path it registered (and so cached) and then
// collected is no longer a valid reference, and counts it cached before a
// collection are exact after it.
func TestHotCacheFollowsCollection(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	ingest := func(name string, refs ...storepath.Path) storepath.Path {
		t.Helper()
		src := filepath.Join(t.TempDir(), name)
		content := "contents of " + name
		for _, r := range refs {
			content += " " + s.Logical(r)
		}
		writeTree(t, src, map[string]string{"f": content})
		if _, err := s.Ingest(src, fakePath(name), IngestOptions{RefCandidates: refs}); err != nil {
			t.Fatal(err)
		}
		return fakePath(name)
	}
	dep := ingest("dep")
	user := ingest("user", dep) // reads and caches dep's record and count
	if _, err := s.CollectBatch([]storepath.Path{user}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CollectBatch([]storepath.Path{dep}, nil); err != nil {
		t.Fatalf("dep's count was not dropped with user: %v", err)
	}
	if _, err := s.FinishCollect(2); err != nil {
		t.Fatal(err)
	}
	// The collected path's directory is gone, so a registration that
	// names it must fail on the record, which only the cache could still
	// claim valid.
	regs := []Registration{{Path: fakePath("late"), References: []storepath.Path{dep}}}
	if err := os.MkdirAll(s.Physical(regs[0].Path), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register(regs); err == nil {
		t.Fatal("registered a reference to a collected path")
	}
	os.Remove(s.Physical(regs[0].Path))
	mustVerify(t, s, true)
}
