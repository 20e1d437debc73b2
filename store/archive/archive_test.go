package archive

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexisos/nexis/store/treehash"
)

var time0 = time.Unix(0, 0)

func makeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "share/empty"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin/hello"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "share/data"), bytes.Repeat([]byte("x"), 300<<10), 0o644))
	must(os.WriteFile(filepath.Join(root, "share/zero"), nil, 0o600))
	must(os.WriteFile(filepath.Join(root, "a-b"), []byte("sorts before a/"), 0o644))
	must(os.Symlink("../bin/hello", filepath.Join(root, "share/link")))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "abs")))
	return root
}

func TestRoundTrip(t *testing.T) {
	root := makeTree(t)
	var buf bytes.Buffer
	ws, err := Write(&buf, root)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Size != int64(buf.Len()) {
		t.Fatalf("size %d, wrote %d", ws.Size, buf.Len())
	}
	tree, err := treehash.Scan(root, treehash.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ws.TreeHash != tree.Hash {
		t.Fatalf("writer's tree hash %s, scan %s", ws.TreeHash, tree.Hash)
	}
	// Deterministic: a copy with other times, owners and modes gives the
	// same bytes.
	var again bytes.Buffer
	os.Chtimes(filepath.Join(root, "share/data"), time0, time0)
	os.Chmod(filepath.Join(root, "share/zero"), 0o644)
	if _, err := Write(&again, root); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("the same tree gave two archives")
	}

	dst := filepath.Join(t.TempDir(), "out")
	rs, err := Unpack(bytes.NewReader(buf.Bytes()), dst)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Hash != ws.Hash || rs.Size != ws.Size || rs.TreeHash != ws.TreeHash {
		t.Fatalf("unpacked summary %+v, written %+v", rs, ws)
	}
	got, err := treehash.TreeHash(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got != ws.TreeHash {
		t.Fatal("unpacked tree differs")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "abs")); l != "/etc/passwd" {
		t.Fatalf("symlink target %q", l)
	}
	if st, _ := os.Stat(filepath.Join(dst, "bin/hello")); st.Mode()&0o111 == 0 {
		t.Fatal("executable bit lost")
	}
	for i := range rs.Files {
		if rs.Files[i] != ws.Files[i] {
			t.Fatalf("manifest entry %d: %+v vs %+v", i, rs.Files[i], ws.Files[i])
		}
	}
}

func TestSingleFileAndSymlinkRoots(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("just a file"), 0o755)
	l := filepath.Join(dir, "l")
	os.Symlink("somewhere", l)
	for _, src := range []string{f, l} {
		var buf bytes.Buffer
		ws, err := Write(&buf, src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "x")
		rs, err := Unpack(&buf, dst)
		if err != nil {
			t.Fatal(err)
		}
		if rs.Hash != ws.Hash {
			t.Fatal("hash differs")
		}
		want, _ := treehash.TreeHash(src)
		if got, _ := treehash.TreeHash(dst); got != want {
			t.Fatalf("%s: tree differs", src)
		}
	}
}

// A shared buffered stream: Unpack stops at the end marker and leaves
// what follows.
func TestUnpackLeavesFollowingData(t *testing.T) {
	var buf bytes.Buffer
	ws, err := Write(&buf, makeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	buf.WriteString("NEXT")
	br := bufio.NewReader(&buf)
	rs, err := Unpack(br, filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Hash != ws.Hash {
		t.Fatal("hash differs")
	}
	rest, _ := br.ReadString(0)
	if rest != "NEXT" {
		t.Fatalf("left %q", rest)
	}
}

// raw builds an archive from entries written by hand.
type raw struct{ b []byte }

func newRaw() *raw { return &raw{b: []byte(Magic)} }

func (r *raw) ent(t byte, path string) *raw {
	r.b = append(r.b, t)
	r.b = binary.AppendUvarint(r.b, uint64(len(path)))
	r.b = append(r.b, path...)
	return r
}
func (r *raw) dir(p string) *raw { return r.ent('d', p) }
func (r *raw) file(p, data string) *raw {
	r.ent('f', p)
	r.b = binary.BigEndian.AppendUint64(r.b, uint64(len(data)))
	r.b = append(r.b, data...)
	return r
}
func (r *raw) link(p, target string) *raw {
	r.ent('l', p)
	r.b = binary.AppendUvarint(r.b, uint64(len(target)))
	r.b = append(r.b, target...)
	return r
}
func (r *raw) end() []byte { return append(r.b, 'E') }

func TestHostileArchives(t *testing.T) {
	cases := map[string][]byte{
		"bad magic":          []byte("tar-archive-1\n\x00\x00E"),
		"empty":              {},
		"no root":            newRaw().end(),
		"first not root":     newRaw().dir("a").end(),
		"dotdot":             newRaw().dir("").file("../evil", "x").end(),
		"dotdot inside":      newRaw().dir("").dir("a").file("a/../../evil", "x").end(),
		"absolute":           newRaw().dir("").file("/etc/evil", "x").end(),
		"dot":                newRaw().dir("").file("./x", "x").end(),
		"empty element":      newRaw().dir("").dir("a").file("a//b", "x").end(),
		"trailing slash":     newRaw().dir("").dir("a/").end(),
		"nul":                newRaw().dir("").file("a\x00b", "x").end(),
		"out of order":       newRaw().dir("").file("b", "x").file("a", "y").end(),
		"duplicate":          newRaw().dir("").file("a", "x").file("a", "y").end(),
		"through symlink":    newRaw().dir("").link("a", "/tmp").file("a/b", "x").end(),
		"missing parent":     newRaw().dir("").file("a/b", "x").end(),
		"parent is a file":   newRaw().dir("").file("a", "x").file("a/b", "y").end(),
		"after file root":    newRaw().file("", "x").file("a", "y").end(),
		"unknown type":       newRaw().dir("").ent('c', "dev").end(),
		"empty target":       newRaw().dir("").link("a", "").end(),
		"truncated contents": newRaw().dir("").file("a", "hello").b[:len(newRaw().dir("").file("a", "hello").b)-2],
		"truncated no end":   newRaw().dir("").file("a", "hello").b,
		"trailing data":      append(newRaw().dir("").end(), "more"...),
		"huge path length":   append(newRaw().b, 'd', 0xff, 0xff, 0xff, 0xff, 0x0f),
		"varint overflow":    append(newRaw().b, 'd', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"huge file":          append(newRaw().ent('f', "").b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"long element":       newRaw().dir("").file(strings.Repeat("a", 256), "x").end(),
		"second root":        newRaw().dir("").dir("").end(),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "out")
			_, err := Unpack(bytes.NewReader(data), dst)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			// Nothing escaped dst.
			ents, _ := os.ReadDir(base)
			for _, e := range ents {
				if e.Name() != "out" {
					t.Fatalf("%s created outside the destination", e.Name())
				}
			}
		})
	}
	if _, err := os.Stat("/tmp/b"); err == nil {
		t.Log("note: /tmp/b exists on this machine")
	}
}

func TestCompressRoundTrip(t *testing.T) {
	var arc bytes.Buffer
	ws, err := Write(&arc, makeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{CompressionZstd, CompressionNone} {
		var z bytes.Buffer
		zw, err := Compress(&z, c)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(arc.Bytes())
		zw.Close()
		if c == CompressionZstd && z.Len() >= arc.Len() {
			t.Fatalf("zstd did not compress: %d >= %d", z.Len(), arc.Len())
		}
		zr, err := Decompress(&z, c)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := Unpack(zr, filepath.Join(t.TempDir(), "x"))
		zr.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rs.Hash != ws.Hash {
			t.Fatal("hash differs")
		}
	}
	if _, err := Compress(&arc, "lzma"); err == nil {
		t.Fatal("unknown compression accepted")
	}
}
