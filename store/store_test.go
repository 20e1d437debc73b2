package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/linxGnu/grocksdb"
	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

func openTest(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writeTree creates files under root from a map of relative path to
// content; a content starting with "->" makes a symlink, a trailing "/"
// in the path a directory, and a "*" prefix on the path an executable.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "*") {
			rel, mode = rel[1:], 0o755
		}
		p := filepath.Join(root, rel)
		if strings.HasSuffix(rel, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func fakePath(name string) storepath.Path {
	d := blake3.Sum256([]byte(name))
	return storepath.Path{Hash: storepath.EncodeHash(d[:]), Name: name}
}

func mustVerify(t *testing.T, s *Store, contents bool) {
	t.Helper()
	rep, err := s.Verify(VerifyOptions{CheckContents: contents})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("verify found errors:\n%s", strings.Join(rep.Errors, "\n"))
	}
}

func TestAddPathAndQuery(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	src := filepath.Join(t.TempDir(), "hello")
	writeTree(t, src, map[string]string{
		"bin/hello":  "#!/bin/sh\necho hi\n",
		"*bin/run":   "run",
		"share/doc":  "doc",
		"share/same": "doc",
		"empty/":     "",
		"link":       "->bin/hello",
		"zero":       "",
	})
	pi, err := s.AddPath(src, "hello")
	if err != nil {
		t.Fatal(err)
	}
	th, err := treehash.TreeHash(src)
	if err != nil {
		t.Fatal(err)
	}
	if pi.TreeHash != th {
		t.Errorf("tree hash %s, TreeHash gives %s", pi.TreeHash, th)
	}
	want, _ := treehash.ContentPath("/store", "hello", th)
	if pi.Path != want {
		t.Errorf("path %v, want %v", pi.Path, want)
	}
	if ok, err := s.IsValid(pi.Path); !ok || err != nil {
		t.Fatalf("IsValid = %v, %v", ok, err)
	}
	phys := s.Physical(pi.Path)
	for rel, wantMode := range map[string]os.FileMode{"": 0o555, "bin": 0o555, "bin/hello": 0o444, "bin/run": 0o555, "zero": 0o444} {
		fi, err := os.Lstat(filepath.Join(phys, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode().Perm(), wantMode)
		}
		if fi.ModTime().Unix() != 1 {
			t.Errorf("%s: mtime %v, want 1", rel, fi.ModTime().Unix())
		}
	}
	if tgt, _ := os.Readlink(filepath.Join(phys, "link")); tgt != "bin/hello" {
		t.Errorf("symlink target %q", tgt)
	}
	a, _ := os.Stat(filepath.Join(phys, "share/doc"))
	b, _ := os.Stat(filepath.Join(phys, "share/same"))
	if s.Dedup() == DedupHardlink && !os.SameFile(a, b) {
		t.Errorf("identical files do not share an inode")
	}
	// Adding again is a no-op.
	pi2, err := s.AddPath(src, "hello")
	if err != nil || pi2.Path != pi.Path {
		t.Fatalf("second AddPath: %v %v", pi2, err)
	}
	st, _ := s.Stats()
	if st.Paths != 1 || st.Contents != 3 {
		t.Errorf("stats %+v", st)
	}
	mustVerify(t, s, true)
	s.Close()

	r := openTest(t, dir, Options{ReadOnly: true})
	got, err := r.QueryPathInfo(pi.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got.TreeHash != th || got.Size != pi.Size || got.ContentAddress != treehash.ContentAddress(th) {
		t.Errorf("read back %+v", got)
	}
	if _, err := r.AddPath(src, "x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write on read-only store: %v", err)
	}
}

func TestReferencesRootsRefcounts(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	tmp := t.TempDir()
	lib := fakePath("lib")
	writeTree(t, filepath.Join(tmp, "lib"), map[string]string{"lib.so": "library"})
	if _, err := s.Ingest(filepath.Join(tmp, "lib"), lib, IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	app := fakePath("app")
	other := fakePath("other") // a candidate that is not mentioned
	writeTree(t, filepath.Join(tmp, "app"), map[string]string{
		"bin/app": "uses " + s.Logical(lib) + "/lib.so and " + s.Logical(app) + "/self",
	})
	pi, err := s.Ingest(filepath.Join(tmp, "app"), app, IngestOptions{RefCandidates: []storepath.Path{lib, other}, Deriver: "drv:app", Move: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(tmp, "app")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("moved source still exists: %v", err)
	}
	if len(pi.References) != 2 {
		t.Fatalf("references %v, want lib and self", pi.References)
	}
	refs, _ := s.References(app)
	if len(refs) != 2 {
		t.Errorf("References = %v", refs)
	}
	rr, _ := s.Referrers(lib)
	if len(rr) != 1 || rr[0] != app {
		t.Errorf("Referrers(lib) = %v", rr)
	}
	if n, _ := s.Refcount(lib); n != 1 {
		t.Errorf("refcount(lib) = %d, want 1", n)
	}
	if n, _ := s.Refcount(app); n != 0 {
		t.Errorf("refcount(app) = %d, want 0 (self-references do not count)", n)
	}
	if err := s.AddRoot("r1", app); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGeneration(Generation{Profile: "system", Number: 1, Path: app, ConfigHash: "c"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Refcount(app); n != 2 {
		t.Errorf("refcount(app) = %d, want 2", n)
	}
	if err := s.AddRoot("out-link:/home/u/result", lib); err != nil {
		t.Fatal(err)
	}
	if rs, err := s.RootsWithPrefix("out-link:"); err != nil || len(rs) != 1 || rs[0].Name != "out-link:/home/u/result" || rs[0].Path != lib {
		t.Errorf("RootsWithPrefix(out-link:) = %v, %v; want the one out-link root", rs, err)
	}
	if rs, err := s.Roots(); err != nil || len(rs) != 3 {
		t.Errorf("Roots() = %v, %v; want r1, the generation's and the out-link", rs, err)
	}
	if err := s.RemoveRoot("out-link:/home/u/result"); err != nil {
		t.Fatal(err)
	}
	gens, _ := s.ListGenerations("system")
	if len(gens) != 1 || gens[0].Path != app || gens[0].ConfigHash != "c" {
		t.Errorf("generations %v", gens)
	}
	cl, _ := s.Closure([]storepath.Path{app})
	if len(cl) != 2 {
		t.Errorf("closure %v", cl)
	}
	mustVerify(t, s, true)
	if err := s.DeleteGeneration("system", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRoot("r1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Refcount(app); n != 0 {
		t.Errorf("refcount(app) = %d, want 0", n)
	}
	if err := s.RemoveRoot("r1"); err == nil {
		t.Errorf("removing a missing root succeeded")
	}
	// A reference that is not valid is refused, and nothing is left.
	bad := fakePath("bad")
	writeTree(t, filepath.Join(tmp, "bad"), map[string]string{"f": "x"})
	if _, err := s.Register([]Registration{{Path: bad, References: []storepath.Path{fakePath("missing")}}}); err == nil {
		t.Errorf("registering with a missing reference succeeded")
	}
	mustVerify(t, s, true)
}

func TestMaliciousTrees(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	tmp := t.TempDir()
	secret := filepath.Join(tmp, "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	src := filepath.Join(tmp, "evil")
	writeTree(t, src, map[string]string{
		"abs":          "->" + secret,
		"up":           "->../../../../etc/passwd",
		"dir/escape":   "->../..",
		"dir/file.txt": "ok",
	})
	pi, err := s.AddPath(src, "evil")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := s.Manifest(pi.Path)
	for _, f := range files {
		if f.Type == treehash.Regular && f.Path != "dir/file.txt" {
			t.Errorf("symlink %s was followed: stored as a file", f.Path)
		}
	}
	if tgt, _ := os.Readlink(filepath.Join(s.Physical(pi.Path), "abs")); tgt != secret {
		t.Errorf("absolute symlink not kept: %q", tgt)
	}
	// A FIFO, a socket and a device node are refused and nothing changes.
	for _, kind := range []string{"fifo", "socket", "device"} {
		d := filepath.Join(tmp, kind)
		writeTree(t, d, map[string]string{"ok": "ok"})
		p := filepath.Join(d, "special")
		var err error
		switch kind {
		case "fifo":
			err = syscall.Mkfifo(p, 0o644)
		case "socket":
			err = syscall.Mknod(p, syscall.S_IFSOCK|0o644, 0)
		case "device":
			err = syscall.Mknod(p, syscall.S_IFCHR|0o644, int(1<<8|3))
		}
		if err != nil {
			t.Logf("cannot create a %s here: %v", kind, err)
			continue
		}
		before, _ := s.Stats()
		if _, err := s.AddPath(d, kind); !errors.Is(err, treehash.ErrSpecialFile) {
			t.Errorf("%s: AddPath = %v, want ErrSpecialFile", kind, err)
		}
		if _, err := s.Ingest(d, fakePath(kind), IngestOptions{Move: true}); !errors.Is(err, treehash.ErrSpecialFile) {
			t.Errorf("%s: Ingest = %v, want ErrSpecialFile", kind, err)
		}
		after, _ := s.Stats()
		if before != after {
			t.Errorf("%s: refused ingest changed the store: %+v -> %+v", kind, before, after)
		}
	}
	mustVerify(t, s, true)
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	t2 := s.newTxn()
	t2.put(cfDefault, keySchema, appendUvarint(nil, SchemaVersion+1))
	if err := t2.commit(); err != nil {
		t.Fatal(err)
	}
	t2.destroy()
	s.Close()
	for _, ro := range []bool{false, true} {
		_, err := Open(dir, Options{ReadOnly: ro})
		if err == nil || !strings.Contains(err.Error(), "newer") {
			t.Errorf("ReadOnly=%v: Open = %v, want a newer-schema error", ro, err)
		}
	}
}

// TestNewerSchemaWithNewFamilyRefused: a store a newer nexis wrote with a
// column family this one does not know is refused for its schema, not
// for the family RocksDB would otherwise complain about.
func TestNewerSchemaWithNewFamilyRefused(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	s.Close()
	dbo := grocksdb.NewDefaultOptions()
	dbo.SetCreateIfMissingColumnFamilies(true)
	names := append(slices.Clone(cfNames), "from-the-future")
	var cfo []*grocksdb.Options
	for range names {
		cfo = append(cfo, grocksdb.NewDefaultOptions())
	}
	db, hs, err := grocksdb.OpenDbColumnFamilies(dbo, s.dbDir(), names, cfo)
	if err != nil {
		t.Fatal(err)
	}
	wo := grocksdb.NewDefaultWriteOptions()
	if err := db.Put(wo, keySchema, appendUvarint(nil, SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		h.Destroy()
	}
	db.Close()
	for _, ro := range []bool{false, true} {
		_, err := Open(dir, Options{ReadOnly: ro})
		if err == nil || !strings.Contains(err.Error(), "newer") {
			t.Errorf("ReadOnly=%v: Open = %v, want a newer-schema error", ro, err)
		}
	}
}

func TestReadOnlyMissingStore(t *testing.T) {
	_, err := Open(t.TempDir(), Options{ReadOnly: true})
	if !errors.Is(err, ErrNotInitialised) {
		t.Errorf("Open = %v, want ErrNotInitialised", err)
	}
}

func TestWhyDepends(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	tmp := t.TempDir()
	c, b, a := fakePath("c"), fakePath("b"), fakePath("a")
	for _, x := range []struct {
		p       storepath.Path
		content string
		cands   []storepath.Path
	}{{c, "leaf", nil}, {b, "needs " + s.Logical(c), []storepath.Path{c}}, {a, "needs " + s.Logical(b), []storepath.Path{b, c}}} {
		src := filepath.Join(tmp, x.p.Name)
		writeTree(t, src, map[string]string{"bin/x": x.content})
		if _, err := s.Ingest(src, x.p, IngestOptions{RefCandidates: x.cands}); err != nil {
			t.Fatal(err)
		}
	}
	chain, err := s.WhyDepends(a, c)
	if err != nil || len(chain) != 3 || chain[0] != a || chain[1] != b || chain[2] != c {
		t.Fatalf("WhyDepends = %v, %v", chain, err)
	}
	files, err := s.FilesReferring(b, c)
	if err != nil || len(files) != 1 || files[0] != "bin/x" {
		t.Errorf("FilesReferring = %v, %v", files, err)
	}
	if chain, _ := s.WhyDepends(c, a); chain != nil {
		t.Errorf("c does not depend on a, got %v", chain)
	}
}

// TestWALBoundedAcrossOpens: writable opens keep what they replay in
// memtables (avoid_flush_during_recovery), so each leaves a WAL file
// behind; Close must flush before they pile up, and every write must
// survive the reopenings, for readers too.
func TestWALBoundedAcrossOpens(t *testing.T) {
	dir := t.TempDir()
	var roots []string
	maxLogs := 0
	for i := range 3 * flushOnCloseFiles {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := fakePath("p" + string(rune('a'+i)))
		src := filepath.Join(t.TempDir(), "src")
		writeTree(t, src, map[string]string{"f": p.Name})
		if _, err := s.Ingest(src, p, IngestOptions{}); err != nil {
			t.Fatal(err)
		}
		name := "r" + string(rune('a'+i))
		if err := s.AddRoot(name, p); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, name)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		logs, _ := filepath.Glob(filepath.Join(dir, ".nexis", "db", "*.log"))
		if len(logs) > flushOnCloseFiles {
			t.Fatalf("after %d opens: %d WAL files", i+1, len(logs))
		}
		maxLogs = max(maxLogs, len(logs))
		r, err := Open(dir, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range roots {
			if _, ok, err := r.Root(name); err != nil || !ok {
				t.Fatalf("after %d opens, a reader lost root %s: %v", i+1, name, err)
			}
		}
		r.Close()
	}
	if maxLogs < 2 {
		t.Errorf("opens flushed what they replayed (at most %d WAL file), avoid_flush_during_recovery is not in effect", maxLogs)
	}
	s := openTest(t, dir, Options{})
	mustVerify(t, s, true)
}

// TestWALBoundedAfterKilledWriters: writers that never reach Close (here
// they exit without it, as a killed one would) leave their WAL files;
// the next writable open flushes them, and nothing is lost.
func TestWALBoundedAfterKilledWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	for i := range 2 * flushOnCloseFiles {
		if out, err := childCmd(t, "noclose", dir, fmt.Sprint(i)).CombinedOutput(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, out)
		}
		logs, _ := filepath.Glob(filepath.Join(dir, ".nexis", "db", "*.log"))
		if len(logs) > flushOnCloseFiles+1 {
			t.Fatalf("after %d writers: %d WAL files", i+1, len(logs))
		}
	}
	s := openTest(t, dir, Options{ReadOnly: true})
	for i := range 2 * flushOnCloseFiles {
		if _, ok, err := s.Root(fmt.Sprint("r", i)); err != nil || !ok {
			t.Errorf("root r%d lost: %v", i, err)
		}
	}
}

// Settle leaves nothing for the next open to replay or compact.
func TestSettle(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	for i := range 20 {
		p := fakePath(fmt.Sprintf("settle%d", i))
		src := filepath.Join(t.TempDir(), "src")
		writeTree(t, src, map[string]string{"f": p.Name})
		if _, err := s.Ingest(src, p, IngestOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	for n, h := range s.cfs {
		if v := s.db.GetPropertyCF("rocksdb.num-entries-active-mem-table", h); v != "0" {
			t.Errorf("%s: %s entries left in the memtable", n, v)
		}
		if v := s.db.GetPropertyCF("rocksdb.compaction-pending", h); v != "0" {
			t.Errorf("%s: a compaction is pending", n)
		}
	}
	mustVerify(t, s, true)
}

// Paths that leave the zero list (a referrer or a root arrives) leave
// tombstones there; a flush of the family is compacted at once, so that
// the collector, which reads the list from the start, does not step
// over them.
func TestZeroListCompactedAfterFlush(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	for i := range 50 {
		p := fakePath(fmt.Sprintf("zero%d", i))
		src := filepath.Join(t.TempDir(), "src")
		writeTree(t, src, map[string]string{"f": p.Name})
		if _, err := s.Ingest(src, p, IngestOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRoot(p.Name, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	h := s.cfs[cfZero]
	if v := s.db.GetPropertyCF("rocksdb.num-files-at-level0", h); v != "0" {
		t.Errorf("zero list: %s table files in L0 after a flush, want them compacted", v)
	}
	n := 0
	if err := s.ZeroHashes(func(string) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("zero list holds %d paths (%v), want none: every path is rooted", n, err)
	}
	mustVerify(t, s, true)
}
