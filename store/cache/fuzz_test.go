package cache

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// fuzzKey is a fixed key, so that the committed seeds stay signed by a
// key the fuzz target trusts.
func fuzzKey(t testing.TB) *sign.SecretKey {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	k, err := sign.ParseSecretKey("fuzz-1:" + base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzImport feeds `nexis store import` hostile export files from a
// compromised signer: every record that parses is signed again with a
// trusted key before the import sees it, so mutated records and
// archives get past the signature check to unpacking and to the checks
// against the record and the content address. No input may panic;
// whatever an import accepts leaves a store that verifies with its
// contents checked, and a refused one registers nothing. One store per
// fuzzing process takes every input. The seeds in
// testdata/fuzz/FuzzImport are written by TestFuzzCorpus;
// scripts/fuzz-store runs this for a bounded time.
func FuzzImport(f *testing.F) {
	dir := f.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	key := fuzzKey(f)
	trusted, err := sign.NewTrusted(key.Public().String())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before, err := st.Stats()
		if err != nil {
			t.Fatal(err)
		}
		stats, err := Import(st, bytes.NewReader(resign(data, key)), trusted)
		after, serr := st.Stats()
		if serr != nil {
			t.Fatal(serr)
		}
		if err != nil {
			if after.Paths != before.Paths {
				t.Fatalf("a refused import registered %d paths: %v", after.Paths-before.Paths, err)
			}
			return
		}
		if stats.Registered > 0 {
			rep, err := st.Verify(store.VerifyOptions{CheckContents: true})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Clean() {
				t.Fatalf("an accepted import left a store that does not verify: %v", rep.Errors)
			}
		}
	})
}

// resign signs every record of the export file data that parses with
// key, and leaves the rest as it is.
func resign(data []byte, key *sign.SecretKey) []byte {
	if !bytes.HasPrefix(data, []byte(ExportMagic)) {
		return data
	}
	out := []byte(ExportMagic)
	rest := data[len(ExportMagic):]
	for {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		n, err := strconv.Atoi(strings.TrimPrefix(string(line), "path "))
		if !ok || !bytes.HasPrefix(line, []byte("path ")) || err != nil || n <= 0 || n > len(after) {
			return append(out, rest...)
		}
		in, err := ParseInfo(after[:n], "/store")
		if err != nil || in.FileSize < 0 || in.FileSize > int64(len(after)-n) {
			return append(out, rest...)
		}
		in.Sigs = nil
		in.Sign(key)
		rec := in.Marshal()
		out = fmt.Appendf(out, "path %d\n", len(rec))
		out = append(out, rec...)
		out = append(out, after[n:n+int(in.FileSize)]...)
		rest = after[n+int(in.FileSize):]
	}
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed seed corpora of the fuzz targets")

// TestFuzzCorpus checks that testdata/fuzz/FuzzImport holds the seeds
// seedExports makes (-update-corpus writes them).
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzImport")
	for name, data := range seedExports(t) {
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
			t.Errorf("%s is not the seed the export format gives now (%v): go test ./store/cache -run TestFuzzCorpus -update-corpus", p, err)
		}
	}
}

// seedExports are export files signed by fuzzKey: a closure of two
// paths (files, executables, a symlink, a reference), compressed and
// not, a content-addressed path, one whose bytes are not what
// its address says, and an empty export. Exports are deterministic, so
// the seeds are too.
func seedExports(t *testing.T) map[string][]byte {
	t.Helper()
	key := fuzzKey(t)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lib, app := fakePath("lib-1"), fakePath("app-1")
	for _, c := range []struct {
		p     storepath.Path
		files map[string]string
		refs  []storepath.Path
	}{
		{lib, map[string]string{"lib/libx": "object code", "bin/x": "#!/bin/sh\n"}, nil},
		{app, map[string]string{"bin/app": "#!/bin/sh\nexec " + st.Logical(lib) + "/bin/x\n", "link": "->bin/app"}, []storepath.Path{lib}},
	} {
		src := filepath.Join(dir, c.p.Name)
		for rel, content := range c.files {
			f := filepath.Join(src, rel)
			os.MkdirAll(filepath.Dir(f), 0o755)
			if target, ok := strings.CutPrefix(content, "->"); ok {
				os.Symlink(target, f)
			} else {
				os.WriteFile(f, []byte(content), map[bool]os.FileMode{true: 0o755, false: 0o644}[strings.HasPrefix(rel, "bin/")])
			}
		}
		if _, err := st.Ingest(src, c.p, store.IngestOptions{RefCandidates: c.refs}); err != nil {
			t.Fatal(err)
		}
	}
	all := []storepath.Path{lib, app}
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("a source file\n"), 0o644)
	added, err := st.AddPath(src, "source")
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("the release\n")
	p, ca := fixedFetch(t, good)
	registerRaw(t, st, p, []byte("not the release\n"), ca.String())
	export := func(ps []storepath.Path, compression string) []byte {
		var b bytes.Buffer
		if err := Export(context.Background(), st, ps, &b, ExportOptions{Key: key, Compression: compression, TempDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	return map[string][]byte{
		"closure":      export(all, ""),
		"closure-none": export(all, "none"),
		"source":       export([]storepath.Path{added.Path}, "none"),
		"wrong-bytes":  export([]storepath.Path{p}, "none"),
		"empty":        []byte(ExportMagic + "end\n"),
	}
}
