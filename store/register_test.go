package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// placedRegistration writes a one-file tree for name into s's bucket and
// returns its registration. Files with equal content share a content
// count, so batches touch each other's counters.
func placedRegistration(t *testing.T, s *Store, name, content string, refs ...storepath.Path) Registration {
	t.Helper()
	r, err := placeOneFile(s, fakePath(name), content, refs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// placeOneFile puts a normalised, synced tree holding one file at p's
// place in the store, as a substituter would before registering it.
func placeOneFile(s *Store, p storepath.Path, content string, refs ...storepath.Path) (Registration, error) {
	dir := s.Physical(p)
	f := filepath.Join(dir, "f")
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(f, []byte(content), 0o444)
	}
	for _, q := range []string{f, dir} {
		if err == nil {
			err = os.Chtimes(q, time.Unix(1, 0), time.Unix(1, 0))
		}
	}
	if err == nil {
		err = os.Chmod(dir, 0o555)
	}
	for _, q := range []string{f, dir, filepath.Dir(dir)} {
		if err == nil {
			err = fsyncPath(q)
		}
	}
	if err != nil {
		return Registration{}, fmt.Errorf("placing %s: %w", p.Base(), err)
	}
	files := []treehash.File{
		{Path: "", Type: treehash.Directory},
		{Path: "f", Type: treehash.Regular, Size: int64(len(content)), Digest: blake3.Sum256([]byte(content))},
	}
	return Registration{Path: p, Files: files, TreeHash: treehash.Hash(files), References: refs}, nil
}

// TestRegisterBatches registers a graph whose references cross batch
// boundaries (into the batch being committed while the next is prepared)
// and whose contents and referenced paths repeat across batches: every
// count must come out as verify recomputes it from the edges and
// manifests, before and after reopening.
func TestRegisterBatches(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openTest(t, dir, Options{})
	var regs []Registration
	for i := range 400 {
		var refs []storepath.Path
		for _, back := range []int{1, 7, 60, i} {
			if back <= i && back > 0 {
				refs = append(refs, regs[i-back].Path)
			}
		}
		if i%5 == 0 {
			refs = append(refs, fakePath(fmt.Sprintf("batch-%d", i))) // itself
		}
		regs = append(regs, placedRegistration(t, s, fmt.Sprintf("batch-%d", i), fmt.Sprintf("content %d\n", i%9), refs...))
	}
	var batches [][]Registration
	for i, size := 0, 1; i < len(regs); i, size = i+size, size%50+1 {
		batches = append(batches, slices.Clip(regs[i:min(i+size, len(regs))]))
	}
	// A path of the batch being committed, registered again.
	batches[5] = append(batches[5], batches[4][0])
	infos, err := s.RegisterBatches(batches)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(batches) {
		t.Fatalf("infos for %d batches, want %d", len(infos), len(batches))
	}
	if got, want := infos[5][len(infos[5])-1], infos[4][0]; got.Path != want.Path || got.Registered != want.Registered {
		t.Errorf("re-registered path: got %+v, want the first registration %+v", got, want)
	}
	mustVerify(t, s, true)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Paths != int64(len(regs)) || st.Contents != 9 {
		t.Errorf("stats: %d paths and %d contents, want %d and 9", st.Paths, st.Contents, len(regs))
	}
	s.Close()
	s = openTest(t, dir, Options{})
	mustVerify(t, s, true)
}

// TestRegisterBatchesStopsAtError: the batches before a bad one are
// registered, the bad one and those after it are not, and the counts
// stay exact.
func TestRegisterBatchesStopsAtError(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "store"), Options{})
	a := placedRegistration(t, s, "a", "x")
	b := placedRegistration(t, s, "b", "x", a.Path)
	bad := placedRegistration(t, s, "bad", "x", a.Path, fakePath("nowhere"))
	c := placedRegistration(t, s, "c", "y", b.Path)
	infos, err := s.RegisterBatches([][]Registration{{a}, {b}, {bad}, {c}})
	if err == nil || !strings.Contains(err.Error(), "is not valid in the store") {
		t.Fatalf("error = %v, want the invalid reference", err)
	}
	if len(infos) != 2 {
		t.Fatalf("infos of %d batches, want the 2 before the bad one", len(infos))
	}
	for _, r := range []Registration{a, b} {
		if pi, err := s.QueryPathInfo(r.Path); err != nil || pi == nil {
			t.Errorf("%s: %v, want it registered", r.Path.Name, err)
		}
	}
	for _, r := range []Registration{bad, c} {
		if ok, err := s.IsValid(r.Path); err != nil || ok {
			t.Errorf("%s: valid=%v (%v), want it unregistered", r.Path.Name, ok, err)
		}
	}
	if n, err := s.getUint(cfRefcount, []byte(a.Path.Hash)); err != nil || n != 1 {
		t.Errorf("refcount of a = %d (%v), want 1 (b only)", n, err)
	}
	rep, err := s.Verify(VerifyOptions{CheckContents: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("verify: %v", rep.Errors)
	}
}
