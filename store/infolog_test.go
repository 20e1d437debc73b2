package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInfoLogWarnings: opening the store writes no info log (RocksDB's
// would dump every option on every open), and a warning RocksDB logs
// still reaches db/LOG.
func TestInfoLogWarnings(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	log := filepath.Join(dir, ".nexis", "db", "LOG")
	if fi, err := os.Stat(log); err == nil {
		t.Fatalf("opening the store wrote %d bytes of info log", fi.Size())
	}
	if old, _ := filepath.Glob(log + ".old*"); len(old) > 0 {
		t.Fatalf("opening the store rotated the info log: %v", old)
	}
	s := openTest(t, dir, Options{})
	if err := s.db.SetOptions([]string{"no_such_option"}, []string{"1"}); err == nil {
		t.Fatal("RocksDB accepted an unknown option")
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("the warning was not logged: %v", err)
	}
	if !strings.Contains(string(b), "[WARN]") || !strings.Contains(string(b), "SetOptions() failed") {
		t.Fatalf("db/LOG holds %q, want RocksDB's warning about SetOptions", b)
	}

	// A log past 1 MiB moves to LOG.old when the next process logs.
	s.Close()
	big := append(make([]byte, 0, 1<<20+1), strings.Repeat("x", 1<<20+1)...)
	if err := os.WriteFile(log, big, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	s.db.SetOptions([]string{"no_such_option"}, []string{"1"})
	if fi, err := os.Stat(log + ".old"); err != nil || fi.Size() != int64(len(big)) {
		t.Errorf("the full log was not moved to LOG.old: %v", err)
	}
	if b, err := os.ReadFile(log); err != nil || len(b) > 1000 || !strings.Contains(string(b), "SetOptions() failed") {
		t.Errorf("after the move, db/LOG holds %d bytes (%v), want just the new warning", len(b), err)
	}
}
