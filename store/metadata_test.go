package store

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
)

// listAll lists every entry under dir (relative), for "nothing changed"
// checks.
func listAll(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// sameEntries compares two listings, RocksDB's diagnostic LOG aside (a
// refused open may write why there).
func sameEntries(a, b []string) bool {
	drop := func(l []string) string {
		var out []string
		for _, e := range l {
			if e != filepath.Join(".nexis", "db", "LOG") {
				out = append(out, e)
			}
		}
		return strings.Join(out, "\n")
	}
	return drop(a) == drop(b)
}

// storeWithPaths makes a store holding two paths (one refers to the
// other, one content-addressed) and a generation, and closes it.
func storeWithPaths(t *testing.T) (dir string, lib, app storepath.Path) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "store")
	s := openTest(t, dir, Options{})
	src := filepath.Join(t.TempDir(), "lib")
	writeTree(t, src, map[string]string{"lib/libx": "code", "*bin/x": "#!/bin/sh\n"})
	pi, err := s.AddPath(src, "lib")
	if err != nil {
		t.Fatal(err)
	}
	lib = pi.Path
	asrc := filepath.Join(t.TempDir(), "app")
	writeTree(t, asrc, map[string]string{"bin/app": "exec " + s.Logical(lib) + "/bin/x\n", "link": "->bin/app"})
	app = fakePath("app-1")
	if _, err := s.Ingest(asrc, app, IngestOptions{RefCandidates: []storepath.Path{lib}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGeneration(Generation{Profile: "system", Number: 1, Path: app}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return dir, lib, app
}

// refusedUnchanged checks that both kinds of Open refuse dir for lost
// metadata, naming the store and the recovery, and change nothing.
func refusedUnchanged(t *testing.T, dir, why string) {
	t.Helper()
	before := listAll(t, dir)
	for _, ro := range []bool{true, false} {
		_, err := Open(dir, Options{ReadOnly: ro})
		if !errors.Is(err, ErrMetadataLost) || errors.Is(err, ErrNotInitialised) {
			t.Fatalf("ReadOnly=%v: %v, want ErrMetadataLost", ro, err)
		}
		for _, want := range []string{dir, why, "nexis store recover"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ReadOnly=%v: %q does not say %q", ro, err, want)
			}
		}
	}
	if after := listAll(t, dir); !sameEntries(before, after) {
		t.Fatalf("a refused open changed the store:\nbefore %v\nafter  %v", before, after)
	}
}

func TestLostMetadataRefused(t *testing.T) {
	t.Run("database deleted", func(t *testing.T) {
		dir, _, _ := storeWithPaths(t)
		os.RemoveAll(filepath.Join(dir, ".nexis", "db"))
		refusedUnchanged(t, dir, "is missing")
	})
	t.Run("database and identity deleted", func(t *testing.T) {
		dir, _, _ := storeWithPaths(t)
		os.RemoveAll(filepath.Join(dir, ".nexis", "db"))
		os.Remove(idFile(dir))
		refusedUnchanged(t, dir, "holds store paths")
	})
	t.Run("CURRENT lost", func(t *testing.T) {
		dir, _, _ := storeWithPaths(t)
		os.Remove(filepath.Join(dir, ".nexis", "db", "CURRENT"))
		refusedUnchanged(t, dir, "no CURRENT file")
	})
	t.Run("manifest corrupt", func(t *testing.T) {
		dir, _, _ := storeWithPaths(t)
		ms, _ := filepath.Glob(filepath.Join(dir, ".nexis", "db", "MANIFEST-*"))
		for _, m := range ms {
			os.WriteFile(m, []byte("garbage"), 0o644)
		}
		refusedUnchanged(t, dir, "cannot be read")
	})
	t.Run("another store's database", func(t *testing.T) {
		dir, _, _ := storeWithPaths(t)
		other := filepath.Join(t.TempDir(), "other")
		openTest(t, other, Options{}).Close()
		os.RemoveAll(filepath.Join(dir, ".nexis", "db"))
		if err := os.Rename(filepath.Join(other, ".nexis", "db"), filepath.Join(dir, ".nexis", "db")); err != nil {
			t.Fatal(err)
		}
		refusedUnchanged(t, dir, "another store's")
	})
	t.Run("older nexis emptied it", func(t *testing.T) {
		// A database the store never recorded the identity of (as older
		// nexis made them) that registers nothing, beside buckets that
		// hold paths.
		dir, _, _ := storeWithPaths(t)
		other := filepath.Join(t.TempDir(), "other")
		openTest(t, other, Options{}).Close()
		os.RemoveAll(filepath.Join(dir, ".nexis", "db"))
		os.Rename(filepath.Join(other, ".nexis", "db"), filepath.Join(dir, ".nexis", "db"))
		os.Remove(idFile(dir))
		refusedUnchanged(t, dir, "registers no path")
	})
}

// TestOlderStoreAdopted: a store an older nexis made (no identity) and
// that registers its paths opens, and gets an identity.
func TestOlderStoreAdopted(t *testing.T) {
	dir, _, app := storeWithPaths(t)
	os.Remove(idFile(dir))
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	s := openTest(t, dir, Options{})
	if ok, _ := s.IsValid(app); !ok {
		t.Fatal("the adopted store lost a path")
	}
	if _, err := os.Stat(idFile(dir)); err != nil {
		t.Fatalf("no identity after a writable open: %v", err)
	}
}

// TestStoreOnlyInEmptyDirectory: a store is made in an absent or empty
// directory (or one with only a store's own empty scaffolding), never
// in one that holds something else, which stays untouched.
func TestStoreOnlyInEmptyDirectory(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "absent"), t.TempDir()} {
		openTest(t, dir, Options{}).Close()
	}
	scaffold := t.TempDir()
	os.MkdirAll(filepath.Join(scaffold, ".nexis", "tmp"), 0o755)
	os.MkdirAll(filepath.Join(scaffold, ".trash"), 0o755)
	os.MkdirAll(filepath.Join(scaffold, "ab", "cd"), 0o755)
	os.MkdirAll(filepath.Join(scaffold, "lost+found"), 0o700)
	openTest(t, scaffold, Options{}).Close()

	foreign := t.TempDir()
	writeTree(t, foreign, map[string]string{"home/user/notes": "mine"})
	before := listAll(t, foreign)
	for _, ro := range []bool{true, false} {
		if _, err := Open(foreign, Options{ReadOnly: ro}); !errors.Is(err, ErrNotAStore) {
			t.Errorf("ReadOnly=%v: %v, want ErrNotAStore", ro, err)
		}
	}
	if _, err := Recover(foreign, RecoverOptions{}); !errors.Is(err, ErrNotAStore) {
		t.Errorf("Recover: %v, want ErrNotAStore", err)
	}
	if after := listAll(t, foreign); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("the directory changed: %v", after)
	}
}

// TestRecover: a store whose database is gone comes back from its
// disk: paths, references, content addresses, generations; nothing is
// deleted, what cannot be explained is reported and left in place.
func TestRecover(t *testing.T) {
	dir, lib, app := storeWithPaths(t)
	s := openTest(t, dir, Options{})
	want := map[string]*PathInfo{}
	for _, p := range []storepath.Path{lib, app} {
		pi, err := s.QueryPathInfo(p)
		if err != nil {
			t.Fatal(err)
		}
		want[p.Hash] = pi
	}
	s.Close()
	os.RemoveAll(filepath.Join(dir, ".nexis", "db"))
	// Unexplained things: a name that is no store path, a path changed
	// after it was stored, a path mentioning one that is gone.
	junk := filepath.Join(dir, "00", "00", "not-a-store-path")
	os.MkdirAll(junk, 0o755)
	changed := fakePath("changed-1")
	os.MkdirAll(s.Physical(changed), 0o755)
	os.WriteFile(filepath.Join(s.Physical(changed), "f"), []byte("x"), 0o644)
	gone := fakePath("gone-1")
	dangling := fakePath("dangling-1")
	os.MkdirAll(filepath.Dir(s.Physical(dangling)), 0o755)
	os.WriteFile(s.Physical(dangling), []byte("uses "+s.Logical(gone)+"/bin\n"), 0o444)
	setMtime(s.Physical(dangling))
	before := listAll(t, dir)

	rep, err := Recover(dir, RecoverOptions{Generations: []Generation{
		{Profile: "system", Number: 1, Path: app}, {Profile: "system", Number: 2, Path: gone},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Intact || rep.Salvaged || rep.Registered != 3 || rep.ContentAddressed != 1 {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Generations) != 1 || rep.Generations[0] != 1 {
		t.Errorf("generations %v", rep.Generations)
	}
	text := ""
	for _, u := range rep.Unexplained {
		text += u.Path + ": " + u.Why + "\n"
	}
	for _, w := range []string{"not-a-store-path", "changed-1: directory", "dangling-1: registered, but it mentions " + gone.Hash, "generation 2 of system"} {
		if !strings.Contains(text, w) {
			t.Errorf("unexplained does not say %q:\n%s", w, text)
		}
	}
	for _, e := range before {
		if _, err := os.Lstat(filepath.Join(dir, e)); err != nil && !strings.HasPrefix(e, ".nexis") {
			t.Errorf("%s went away", e)
		}
	}
	s = openTest(t, dir, Options{})
	for h, w := range want {
		got, err := s.QueryPathInfo(w.Path)
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if got.TreeHash != w.TreeHash || got.ContentAddress != w.ContentAddress || len(got.References) != len(w.References) {
			t.Errorf("%s: recovered %+v, was %+v", w.Path.Name, got, w)
		}
	}
	if g, ok, _ := s.GetGeneration("system", 1); !ok || g.Path != app {
		t.Errorf("generation 1: %+v %v", g, ok)
	}
	roots, _ := s.Roots()
	var names []string
	for _, r := range roots {
		names = append(names, r.Name)
	}
	if strings.Join(names, " ") != "generation/system/1 "+RecoveredRootPrefix+dangling.Base() {
		t.Errorf("roots %v", names)
	}
	if n, err := s.RemoveRootsWithPrefix(RecoveredRootPrefix); err != nil || n != 1 {
		t.Errorf("RemoveRootsWithPrefix: %d %v", n, err)
	}
	rep2, err := s.Verify(VerifyOptions{CheckContents: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep2.Clean() {
		t.Fatalf("recovered store: %v", rep2.Errors)
	}
	s.Close()
	if rep, err := Recover(dir, RecoverOptions{}); err != nil || !rep.Intact {
		t.Errorf("second recover: %+v %v", rep, err)
	}
}
