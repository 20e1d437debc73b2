package trash

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o444); err != nil {
		t.Fatal(err)
	}
}

// A release list unlinks the pool entries nothing else links, and keeps
// (links back) the one a new path linked after the collection; it goes
// after the trash entries whose files share the entries' inodes.
func TestEmptyReleasesUnsharedPoolEntries(t *testing.T) {
	store := t.TempDir()
	pool := filepath.Join(store, ".nexis", "content", "ab")
	write(t, filepath.Join(pool, "gone"), "collected content")
	write(t, filepath.Join(pool, "kept"), "content a new path uses again")
	// The collected path's files are links of the pool entries, renamed
	// into a trash bucket with their read-only directory.
	dead := filepath.Join(Dir(store), "0a", "0a00-dead")
	os.MkdirAll(dead, 0o755)
	os.Link(filepath.Join(pool, "gone"), filepath.Join(dead, "f"))
	os.Link(filepath.Join(pool, "kept"), filepath.Join(dead, "g"))
	os.Chmod(dead, 0o555)
	// A path registered since links "kept" again.
	live := filepath.Join(store, "0b", "0c", "0b0c-live")
	os.MkdirAll(live, 0o755)
	os.Link(filepath.Join(pool, "kept"), filepath.Join(live, "g"))
	write(t, filepath.Join(Dir(store), releasePrefix+"1"), ".nexis/content/ab/gone\n.nexis/content/ab/kept\n.nexis/content/ab/missing\n")
	write(t, filepath.Join(Dir(store), "loose.1234"), "an ingest's leftover")

	if !Pending(store) {
		t.Fatal("trash with entries is not pending")
	}
	st, err := Empty(store, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 2 || st.Released != 2 || st.Kept != 1 {
		t.Fatalf("stats %+v, want 2 entries, 2 released (one already missing), 1 kept", st)
	}
	if _, err := os.Lstat(filepath.Join(pool, "gone")); !os.IsNotExist(err) {
		t.Errorf("unshared pool entry not released: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(pool, "kept")); err != nil || string(b) != "content a new path uses again" {
		t.Errorf("shared pool entry not kept: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(Dir(store)); len(ents) != 0 || Pending(store) {
		t.Errorf("trash not empty: %v", ents)
	}
}

// A worker that finds the lock taken does nothing; the one holding it
// empties what arrives while it works.
func TestWorkerIsAloneAndTakesLateEntries(t *testing.T) {
	store := t.TempDir()
	os.MkdirAll(filepath.Join(store, ".nexis"), 0o755)
	write(t, filepath.Join(Dir(store), "zz", "zz00-a", "f"), "a")
	lk, err := TryLock(store)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := RunWorker(store, -1, Options{}); err != nil || st.Passes != 0 {
		t.Fatalf("a second worker ran: %+v %v", st, err)
	}
	if _, err := TryLock(store); err != ErrBusy {
		t.Fatalf("lock not exclusive: %v", err)
	}
	n := 0
	st, err := Work(store, lk, Options{Progress: func(done, total int) {
		// An entry arriving mid-pass is left to the next pass.
		if n++; n == 1 {
			write(t, filepath.Join(Dir(store), "zy", "zy00-late", "f"), "late")
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 2 || st.Passes < 2 || Pending(store) {
		t.Fatalf("stats %+v, pending %v: the late entry was not taken", st, Pending(store))
	}
	l2, err := TryLock(store)
	if err != nil {
		t.Fatalf("lock not released after work: %v", err)
	}
	l2.Unlock()
}
