package treehash

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nexisos/nexis/store/storepath"
)

func build(t *testing.T, root string) {
	t.Helper()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(root, "README"), []byte("hello\n"), 0o600)
	os.Symlink("bin/tool", filepath.Join(root, "link"))
}

// TestGolden pins the serialisation: if this hash changes, every
// content-addressed path changes with it.
func TestGolden(t *testing.T) {
	root := filepath.Join(t.TempDir(), "tree")
	build(t, root)
	d, err := TreeHash(root)
	if err != nil {
		t.Fatal(err)
	}
	const want = "blake3:9c8ff63075d8beee88a1a601a7e4e46c2d7fe99f08cfa33e53cd8446d7c17c47"
	if d.String() != want {
		t.Errorf("tree hash %s, want %s", d, want)
	}
	// Timestamps, owners and non-exec mode bits do not count.
	os.Chmod(filepath.Join(root, "README"), 0o444)
	os.Chtimes(filepath.Join(root, "README"), time.Unix(5, 0), time.Unix(5, 0))
	if d2, _ := TreeHash(root); d2 != d {
		t.Errorf("mode or mtime changed the hash")
	}
	os.Chmod(filepath.Join(root, "README"), 0o555)
	if d3, _ := TreeHash(root); d3 == d {
		t.Errorf("the exec bit did not change the hash")
	}
}

func TestSingleFileAndContentPath(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("data"), 0o644)
	d, err := TreeHash(f)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := ContentPath("/store", "f", d)
	p2, _ := ContentPath("/store", "g", d)
	p3, _ := ContentPath("/other", "f", d)
	if p1.Hash == p2.Hash || p1.Hash == p3.Hash || !storepath.IsHash(p1.Hash) {
		t.Errorf("content paths do not separate names and stores: %v %v %v", p1, p2, p3)
	}
	if _, err := ContentPath("/store", ".hidden", d); err == nil {
		t.Errorf("ContentPath accepted a bad name")
	}
}

func TestRefsAcrossReadBoundary(t *testing.T) {
	h := storepath.EncodeHash(bytes.Repeat([]byte{7}, 20))
	dir := t.TempDir()
	// Put the reference right across the 256 KiB read boundary.
	data := bytes.Repeat([]byte{'x'}, 256<<10-10)
	data = append(data, []byte("/store/ab/cd/"+h+"-name")...)
	os.WriteFile(filepath.Join(dir, "f"), data, 0o644)
	tr, err := Scan(dir, ScanOptions{RefCandidates: map[string]struct{}{h: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Refs[h]; !ok {
		t.Errorf("reference across the read boundary not found")
	}
}
