package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// The test binary doubles as the remote nexis of the serve tests.
const envServe = "NEXIS_CACHE_TEST_SERVE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envServe); dir != "" {
		os.Exit(serveChild(dir))
	}
	os.Exit(m.Run())
}

func serveChild(dir string) int {
	st, err := store.Open(dir, store.Options{LogicalDir: "/store"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	trusted, _ := sign.NewTrusted()
	if err := trusted.AddFile(filepath.Join(dir, "trusted-keys")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := Serve(st, os.Stdin, os.Stdout, trusted); err != nil {
		fmt.Fprintln(os.Stderr, "nexis:", err)
		return 1
	}
	return 0
}

func fakePath(name string) storepath.Path {
	d := blake3.Sum256([]byte(name))
	return storepath.Path{Hash: storepath.EncodeHash(d[:]), Name: name}
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{LogicalDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func verify(t testing.TB, st *store.Store) {
	t.Helper()
	rep, err := st.Verify(store.VerifyOptions{CheckContents: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("store does not verify: %v", rep.Errors)
	}
}

// closure makes lib ← tool ← app in st (app refers to both).
func makeClosure(t testing.TB, st *store.Store, scratch string) (app storepath.Path, all []storepath.Path) {
	t.Helper()
	lib, tool := fakePath("lib-1.0"), fakePath("tool-2.0")
	app = fakePath("app-3.0")
	mk := func(p storepath.Path, files map[string]string, refs ...storepath.Path) {
		src := filepath.Join(scratch, p.Name)
		for rel, content := range files {
			f := filepath.Join(src, rel)
			os.MkdirAll(filepath.Dir(f), 0o755)
			mode := os.FileMode(0o644)
			if strings.HasPrefix(rel, "bin/") {
				mode = 0o755
			}
			if target, ok := strings.CutPrefix(content, "->"); ok {
				os.Symlink(target, f)
				continue
			}
			os.WriteFile(f, []byte(content), mode)
		}
		if _, err := st.Ingest(src, p, store.IngestOptions{RefCandidates: refs, Deriver: "drv-" + p.Name}); err != nil {
			t.Fatal(err)
		}
	}
	mk(lib, map[string]string{"lib/libx.so": strings.Repeat("object code ", 5000), "share/doc/README": "lib"})
	mk(tool, map[string]string{"bin/tool": "#!/bin/sh\nexec " + st.Logical(lib) + "/lib/libx.so\n"}, lib)
	mk(app, map[string]string{
		"bin/app":  "#!/bin/sh\n" + st.Logical(tool) + "/bin/tool; echo " + st.Logical(app) + "\n",
		"etc/conf": "uses " + st.Logical(lib),
		"link":     "->bin/app",
	}, lib, tool)
	return app, []storepath.Path{lib, tool, app}
}

type world struct {
	src     *store.Store
	key     *sign.SecretKey
	trusted *sign.Trusted
	app     storepath.Path
	all     []storepath.Path
	dir     string
}

func newWorld(t testing.TB) *world {
	dir := t.TempDir()
	w := &world{dir: dir, src: openStore(t, filepath.Join(dir, "src"))}
	w.app, w.all = makeClosure(t, w.src, filepath.Join(dir, "scratch"))
	var err error
	if w.key, err = sign.Generate("test-cache-1"); err != nil {
		t.Fatal(err)
	}
	w.trusted, _ = sign.NewTrusted(w.key.Public().String())
	return w
}

func (w *world) copyTo(t testing.TB, dest Dest) *CopyStats {
	t.Helper()
	stats, err := Copy(context.Background(), w.src, dest, []storepath.Path{w.app}, ExportOptions{Key: w.key, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return stats
}

func TestFileCacheRoundTrip(t *testing.T) {
	w := newWorld(t)
	cacheDir := filepath.Join(w.dir, "cache")
	dest, err := OpenDest(context.Background(), "file://"+cacheDir, SSHOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := w.copyTo(t, dest); s.Closure != 3 || s.Sent != 3 {
		t.Fatalf("first copy %+v", s)
	}
	// Everything is there now: nothing is sent again.
	if s := w.copyTo(t, dest); s.Sent != 0 {
		t.Fatalf("second copy sent %d", s.Sent)
	}

	dst := openStore(t, filepath.Join(w.dir, "dst"))
	sub, err := NewSubstituter([]string{"file://" + cacheDir}, w.trusted)
	if err != nil {
		t.Fatal(err)
	}
	var last SubstituteProgress
	sub.Progress = func(p SubstituteProgress) { last = p }
	stats, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Paths != 3 || last.Paths != 3 || last.Bytes != last.TotalBytes {
		t.Fatalf("stats %+v, progress %+v", stats, last)
	}
	for _, p := range w.all {
		a, _ := w.src.QueryPathInfo(p)
		b, err := dst.QueryPathInfo(p)
		if err != nil {
			t.Fatal(err)
		}
		if a.TreeHash != b.TreeHash || a.Deriver != b.Deriver || fmt.Sprint(a.References) != fmt.Sprint(b.References) {
			t.Fatalf("%s: %+v vs %+v", p.Name, a, b)
		}
	}
	verify(t, dst)
	// Valid already: nothing to do.
	if stats, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app}); err != nil || stats.Paths != 0 {
		t.Fatalf("again: %+v %v", stats, err)
	}
	// A path no cache has.
	_, err = sub.Substitute(context.Background(), dst, []storepath.Path{fakePath("nowhere-1")})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing path: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	w := newWorld(t)
	cacheDir := filepath.Join(w.dir, "cache")
	dest, _ := OpenDest(context.Background(), "file://"+cacheDir, SSHOptions{})
	w.copyTo(t, dest)

	try := func(t *testing.T, trusted *sign.Trusted, want string) {
		t.Helper()
		dst := openStore(t, filepath.Join(t.TempDir(), "dst"))
		sub, _ := NewSubstituter([]string{"file://" + cacheDir}, trusted)
		_, err := sub.Substitute(context.Background(), dst, []storepath.Path{w.app})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want %q", err, want)
		}
		for _, p := range w.all {
			if ok, _ := dst.IsValid(p); ok {
				t.Fatalf("%s registered", p.Name)
			}
		}
		verify(t, dst)
		ents, _ := os.ReadDir(filepath.Join(dst.Dir(), ".nexis", "tmp"))
		if len(ents) != 0 {
			t.Fatalf("left in tmp: %v", ents)
		}
	}
	t.Run("untrusted key", func(t *testing.T) {
		other, _ := sign.Generate("someone-else-1")
		tr, _ := sign.NewTrusted(other.Public().String())
		try(t, tr, "test-cache-1 is not in trusted_keys")
	})
	t.Run("no trusted keys", func(t *testing.T) {
		tr, _ := sign.NewTrusted()
		try(t, tr, "no key is trusted")
	})
	t.Run("tampered record", func(t *testing.T) {
		p := filepath.Join(cacheDir, infoName(w.all[0]))
		orig, _ := os.ReadFile(p)
		defer os.WriteFile(p, orig, 0o644)
		os.WriteFile(p, bytes.Replace(orig, []byte("ArchiveSize: "), []byte("ArchiveSize: 1"), 1), 0o644)
		try(t, w.trusted, "does not verify")
	})
	t.Run("tampered archive", func(t *testing.T) {
		// Recompress a modified archive: the stored file is well-formed
		// zstd, its record is genuine, only the contents differ.
		// The attacker also fixes the unsigned FileSize and FileHash, so
		// only the signed archive hash can tell.
		in := w.readInfo(t, cacheDir, w.all[0])
		p := filepath.Join(cacheDir, filepath.FromSlash(in.URL))
		orig, _ := os.ReadFile(p)
		defer os.WriteFile(p, orig, 0o644)
		evil := recompressed(t, orig, func(b []byte) []byte {
			return bytes.Replace(b, []byte("object code"), []byte("evil  code!"), 1)
		})
		os.WriteFile(p, evil, 0o644)
		ip := filepath.Join(cacheDir, infoName(w.all[0]))
		rec, _ := os.ReadFile(ip)
		defer os.WriteFile(ip, rec, 0o644)
		in.FileSize, in.FileHash = int64(len(evil)), blake3.Sum256(evil)
		fixed := in.Marshal()
		os.WriteFile(ip, fixed, 0o644)
		try(t, w.trusted, "does not match its signed record: it hashes to")
	})
	t.Run("truncated archive", func(t *testing.T) {
		in := w.readInfo(t, cacheDir, w.all[1])
		p := filepath.Join(cacheDir, filepath.FromSlash(in.URL))
		orig, _ := os.ReadFile(p)
		defer os.WriteFile(p, orig, 0o644)
		os.WriteFile(p, orig[:len(orig)/2], 0o644)
		try(t, w.trusted, w.all[1].Name)
	})
	t.Run("record of another path", func(t *testing.T) {
		p := filepath.Join(cacheDir, infoName(w.all[0]))
		orig, _ := os.ReadFile(p)
		defer os.WriteFile(p, orig, 0o644)
		other, _ := os.ReadFile(filepath.Join(cacheDir, infoName(w.all[1])))
		os.WriteFile(p, other, 0o644)
		try(t, w.trusted, "describes")
	})
}

func (w *world) readInfo(t *testing.T, cacheDir string, p storepath.Path) *Info {
	b, err := os.ReadFile(filepath.Join(cacheDir, infoName(p)))
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInfo(b, "/store")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func recompressed(t *testing.T, stored []byte, edit func([]byte) []byte) []byte {
	dec, err := archiveDecompress(stored)
	if err != nil {
		t.Fatal(err)
	}
	return archiveCompress(edit(dec))
}

func TestExportImport(t *testing.T) {
	w := newWorld(t)
	var buf bytes.Buffer
	if err := Export(context.Background(), w.src, w.all, &buf, ExportOptions{Key: w.key}); err != nil {
		t.Fatal(err)
	}
	export := buf.Bytes()

	// References missing: the application alone is refused.
	var one bytes.Buffer
	if err := Export(context.Background(), w.src, []storepath.Path{w.app}, &one, ExportOptions{Key: w.key}); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t, filepath.Join(w.dir, "dst"))
	if _, err := Import(dst, bytes.NewReader(one.Bytes()), w.trusted); !errors.Is(err, store.ErrMissingReference) {
		t.Fatalf("import without references: %v", err)
	}
	// Unsigned, or signed by a stranger: refused before anything lands.
	var unsigned bytes.Buffer
	Export(context.Background(), w.src, w.all, &unsigned, ExportOptions{})
	if _, err := Import(dst, &unsigned, w.trusted); !errors.Is(err, sign.ErrUntrusted) {
		t.Fatalf("unsigned import: %v", err)
	}
	// Truncated anywhere: nothing registers.
	for _, cut := range []int{10, len(export) / 3, len(export) - 5} {
		if _, err := Import(dst, bytes.NewReader(export[:cut]), w.trusted); err == nil {
			t.Fatalf("truncated at %d: accepted", cut)
		}
	}
	for _, p := range w.all {
		if ok, _ := dst.IsValid(p); ok {
			t.Fatalf("%s registered by a refused import", p.Name)
		}
	}
	stats, err := Import(dst, bytes.NewReader(export), w.trusted)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Registered != 3 {
		t.Fatalf("%+v", stats)
	}
	verify(t, dst)
	// Exports are deterministic.
	var again bytes.Buffer
	Export(context.Background(), w.src, w.all, &again, ExportOptions{Key: w.key})
	if !bytes.Equal(again.Bytes(), export) {
		t.Fatal("two exports of the same paths differ")
	}
}

// TestServe runs the serve protocol through a fake ssh that starts this
// test binary as the remote nexis.
func TestServe(t *testing.T) {
	w := newWorld(t)
	remote := filepath.Join(w.dir, "remote")
	os.MkdirAll(remote, 0o755)
	fakeSSH := filepath.Join(w.dir, "fake-ssh")
	// Drop options up to "--" and the host; the rest is the command.
	os.WriteFile(fakeSSH, []byte("#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift 2\nexec sh -c \"$1\"\n"), 0o755)
	self, _ := os.Executable()
	opts := SSHOptions{SSH: fakeSSH, RemoteProgram: "env " + envServe + "=" + remote + " " + self}

	copyTo := func() (*CopyStats, error) {
		dest, err := OpenDest(context.Background(), "ssh://user@remote.example", opts)
		if err != nil {
			return nil, err
		}
		stats, err := Copy(context.Background(), w.src, dest, []storepath.Path{w.app}, ExportOptions{Key: w.key, TempDir: t.TempDir()})
		if cerr := dest.Close(); err == nil && cerr != nil {
			err = cerr
		}
		return stats, err
	}
	// The remote trusts nobody yet.
	if _, err := copyTo(); err == nil || !strings.Contains(err.Error(), "not in trusted_keys") {
		t.Fatalf("copy to a remote that does not trust us: %v", err)
	}
	os.WriteFile(filepath.Join(remote, "trusted-keys"), []byte(w.key.Public().String()+"\n"), 0o644)
	stats, err := copyTo()
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent != 3 {
		t.Fatalf("%+v", stats)
	}
	stats, err = copyTo()
	if err != nil || stats.Sent != 0 {
		t.Fatalf("second copy: %+v %v", stats, err)
	}
	rs := openStore(t, remote)
	verify(t, rs)
	if ok, _ := rs.IsValid(w.app); !ok {
		t.Fatal("app not on the remote")
	}
}

func TestParseInfoHostile(t *testing.T) {
	good := "StorePath: /store/" + fakePath("x").Rel() + "\nURL: archive/a.nxar.zst\nCompression: zstd\nFileHash: blake3:" + strings.Repeat("0", 64) +
		"\nFileSize: 1\nArchiveHash: blake3:" + strings.Repeat("0", 64) + "\nArchiveSize: 2\nTreeHash: blake3:" + strings.Repeat("0", 64) + "\nReferences:\n"
	if _, err := ParseInfo([]byte(good), "/store"); err != nil {
		t.Fatalf("good record: %v", err)
	}
	cases := map[string]string{
		"other store":   strings.Replace(good, "/store/", "/nix/store/", 1),
		"url escapes":   strings.Replace(good, "archive/a.nxar.zst", "../../etc/passwd", 1),
		"absolute url":  strings.Replace(good, "archive/a.nxar.zst", "/etc/passwd", 1),
		"url with host": strings.Replace(good, "archive/a.nxar.zst", "http://evil/x", 1),
		"negative size": strings.Replace(good, "ArchiveSize: 2", "ArchiveSize: -2", 1),
		"duplicate key": good + "ArchiveSize: 3\n",
		"bad digest":    strings.Replace(good, "TreeHash: blake3:", "TreeHash: sha256:", 1),
		"bad reference": strings.Replace(good, "References:", "References: ../../x", 1),
		"unsorted refs": strings.Replace(good, "References:", "References: "+descending(fakePath("a"), fakePath("b")), 1),
		"no tree hash":  strings.Replace(good, "TreeHash", "Treehash", 1),
		"no colon":      good + "garbage\n",
		"compression":   strings.Replace(good, "zstd", "lzma", 1),
		"semicolon":     good + "Deriver: a;b\n",
		"store subpath": strings.Replace(good, "-x\n", "-x/bin\n", 1),
		"huge":          good + "X: " + strings.Repeat("a", MaxInfoSize) + "\n",
	}
	for name, rec := range cases {
		if _, err := ParseInfo([]byte(rec), "/store"); !errors.Is(err, ErrBadInfo) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func descending(a, b storepath.Path) string {
	if a.Hash < b.Hash {
		a, b = b, a
	}
	return a.Base() + " " + b.Base()
}

func archiveDecompress(b []byte) ([]byte, error) {
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

func archiveCompress(b []byte) []byte {
	zw, _ := zstd.NewWriter(nil)
	return zw.EncodeAll(b, nil)
}
