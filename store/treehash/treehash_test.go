package treehash

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lukechampine.com/blake3"

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

// TestRefsAcrossReadBoundary puts a reference across each read boundary
// of a fresh worker, whose buffer grows (16 KiB, then 64, then 256), and
// of one grown already.
func TestRefsAcrossReadBoundary(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	var data []byte
	cands := map[string]struct{}{}
	for i, boundary := range []int{16 << 10, 80 << 10, 256 << 10, 336 << 10, 512 << 10, 592 << 10} {
		h := storepath.EncodeHash(bytes.Repeat([]byte{byte(7 + i)}, 20))
		cands[h] = struct{}{}
		data = append(data, bytes.Repeat([]byte{'x'}, boundary-10-len(data))...)
		data = append(data, "/store/ab/cd/"+h+"-name"...)
	}
	os.WriteFile(f, data, 0o644)
	for _, size := range []int{minWorkerBuf, maxWorkerBuf} {
		w := &worker{buf: make([]byte, size), h: blake3.New(32, nil)}
		refs := map[string]struct{}{}
		d, _, err := w.hashFile(f, cands, refs)
		if err != nil {
			t.Fatal(err)
		}
		if d != Digest(blake3.Sum256(data)) {
			t.Errorf("buffer of %d: wrong digest", size)
		}
		for h := range cands {
			if _, ok := refs[h]; !ok {
				t.Errorf("buffer of %d: reference %s across a read boundary not found", size, h)
			}
		}
	}
}

// TestSumAndWrite: hashing a chunk at a time (Sum, Write, Hasher, file
// hashing with a growing buffer) gives BLAKE3-256, whatever the sizes and
// the alignment of the writes before.
func TestSumAndWrite(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 63, 64, 1023, 1024, 1025, 16<<10 + 5, smallWrite - 1, smallWrite, 300 << 10, 700<<10 + 3} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + i>>11)
		}
		want := Digest(blake3.Sum256(data))
		if got := Sum(data); got != want {
			t.Errorf("Sum of %d bytes = %s, want %s", n, got, want)
		}
		for _, split := range []int{0, 1, 13, 1024, 5000} {
			split = min(split, n)
			if got := Sum(data[:split], data[split:]); got != want {
				t.Errorf("Sum of %d bytes split at %d = %s, want %s", n, split, got, want)
			}
		}
		h := NewHasher()
		h.Write(data[:min(n, 7)])
		h.Write(data[min(n, 7):])
		if got := Digest(h.Sum(nil)); got != want {
			t.Errorf("Hasher of %d bytes = %s, want %s", n, got, want)
		}
		f := filepath.Join(dir, "f")
		os.WriteFile(f, data, 0o644)
		got, size, err := HashFile(f)
		if err != nil || got != want || size != int64(n) {
			t.Errorf("HashFile of %d bytes = %s, %d, %v; want %s", n, got, size, err, want)
		}
	}
}
