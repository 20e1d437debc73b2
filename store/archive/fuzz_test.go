package archive

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack feeds Unpack hostile archives: it must never panic or
// write outside its destination, and an archive it accepts must be the
// canonical one for the tree it made (writing that tree again gives the
// same bytes). The seeds in testdata/fuzz/FuzzUnpack are written by
// TestFuzzCorpus; scripts/fuzz-store runs this for a bounded time.
func FuzzUnpack(f *testing.F) {
	f.Add(newRaw().dir("").file("a", "x").link("b", "a").dir("c").end())
	f.Add(newRaw().file("", "x").end())
	f.Add(newRaw().dir("").link("a", "/tmp").file("a/b", "x").end())
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		dst := filepath.Join(dir, "t")
		sum, err := Unpack(bytes.NewReader(data), dst)
		if err != nil {
			return
		}
		if sum.Size != int64(len(data)) {
			t.Fatalf("accepted %d bytes of %d", sum.Size, len(data))
		}
		var again bytes.Buffer
		ws, err := Write(&again, dst)
		if err != nil {
			t.Fatalf("writing the unpacked tree: %v", err)
		}
		if !bytes.Equal(again.Bytes(), data) || ws.Hash != sum.Hash || ws.TreeHash != sum.TreeHash {
			t.Fatalf("accepted a non-canonical archive:\n%q\nrewritten:\n%q", data, again.Bytes())
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("unpacking made %d entries beside its destination", len(ents))
		}
	})
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed seed corpora of the fuzz targets")

// TestFuzzCorpus checks that testdata/fuzz/FuzzUnpack holds the seeds
// seedArchives makes (-update-corpus writes them).
func TestFuzzCorpus(t *testing.T) {
	seeds := seedArchives(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzUnpack")
	for name, data := range seeds {
		p := filepath.Join(dir, name)
		want := []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data))
		if *updateCorpus {
			os.MkdirAll(dir, 0o755)
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not the seed the archive format gives now (%v): go test ./store/archive -run TestFuzzCorpus -update-corpus", p, err)
		}
	}
}

// seedArchives are archives of small trees of every entry type, and
// broken variants of one: truncated, out of order, an escaping path.
func seedArchives(t *testing.T) map[string][]byte {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "share/empty"), 0o755)
	os.WriteFile(filepath.Join(root, "bin/tool"), []byte("#!/bin/sh\necho /store/0123456789abcdfghijklmnpqrsvwxyz-lib/x\n"), 0o755)
	os.WriteFile(filepath.Join(root, "share/data"), []byte("data"), 0o644)
	os.WriteFile(filepath.Join(root, "share/zero"), nil, 0o644)
	os.Symlink("../bin/tool", filepath.Join(root, "share/link"))
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("a single file\n"), 0o644)
	out := map[string][]byte{}
	for name, p := range map[string]string{"tree": root, "file": file, "empty-dir": filepath.Join(root, "share/empty")} {
		var b bytes.Buffer
		if _, err := Write(&b, p); err != nil {
			t.Fatal(err)
		}
		out[name] = b.Bytes()
	}
	tree := out["tree"]
	out["truncated"] = tree[:len(tree)/2]
	// A path with a ".." element, and a directory given twice.
	out["escape"] = append([]byte(Magic+"d\x00f\x06../etc\x00\x00\x00\x00\x00\x00\x00\x01x"), 'E')
	out["unordered"] = append([]byte(Magic+"d\x00d\x03bin"+"d\x03bin"), 'E')
	return out
}
