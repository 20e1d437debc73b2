package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store/archive"
	"github.com/nexisos/nexis/store/storepath"
)

// unpackInto archives src and unpacks it into a TempDir of s, as a
// substituter does with a download.
func unpackInto(t *testing.T, s *Store, src string) (string, *archive.Summary) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := archive.Write(&buf, src); err != nil {
		t.Fatal(err)
	}
	dir, err := s.TempPath()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := archive.Unpack(&buf, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum
}

func TestImport(t *testing.T) {
	base := t.TempDir()
	s := openTest(t, filepath.Join(base, "store"), Options{})
	lib, app := fakePath("lib-1"), fakePath("app-1")
	writeTree(t, filepath.Join(base, "lib"), map[string]string{"lib/libx.so": "shared object", "*bin/x": "#!/bin/sh\n"})
	writeTree(t, filepath.Join(base, "app"), map[string]string{"*bin/app": "uses " + s.Logical(lib) + "/lib/libx.so", "share/": "", "link": "->bin/app"})

	// The application alone: its reference is missing, nothing registers.
	dir, sum := unpackInto(t, s, filepath.Join(base, "app"))
	_, err := s.Import([]ImportRequest{{Dir: dir, Target: app, Files: sum.Files, TreeHash: sum.TreeHash, References: []storepath.Path{lib}}})
	if !errors.Is(err, ErrMissingReference) || !strings.Contains(err.Error(), lib.Base()) {
		t.Fatalf("import without its reference: %v", err)
	}
	if ok, _ := s.IsValid(app); ok {
		t.Fatal("registered with a missing reference")
	}
	if _, err := os.Lstat(dir); err == nil {
		t.Fatal("refused tree left behind")
	}

	// A manifest that does not match the promised tree hash.
	dir, sum = unpackInto(t, s, filepath.Join(base, "lib"))
	bad := sum.TreeHash
	bad[0] ^= 1
	if _, err := s.Import([]ImportRequest{{Dir: dir, Target: lib, Files: sum.Files, TreeHash: bad}}); err == nil || !strings.Contains(err.Error(), "hash to") {
		t.Fatalf("wrong tree hash: %v", err)
	}

	// Both in one batch, referrer first: order within a batch is free.
	dirA, sumA := unpackInto(t, s, filepath.Join(base, "app"))
	dirL, sumL := unpackInto(t, s, filepath.Join(base, "lib"))
	infos, err := s.Import([]ImportRequest{
		{Dir: dirA, Target: app, Files: sumA.Files, TreeHash: sumA.TreeHash, References: []storepath.Path{lib}, Deriver: "d1"},
		{Dir: dirL, Target: lib, Files: sumL.Files, TreeHash: sumL.TreeHash},
	})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Path != app || len(infos[0].References) != 1 || infos[0].References[0] != lib || infos[0].Deriver != "d1" {
		t.Fatalf("info %+v", infos[0])
	}
	if n, _ := s.Refcount(lib); n != 1 {
		t.Fatalf("refcount of lib %d", n)
	}
	mustVerify(t, s, true)

	// Again: already valid is success, and the tree is cleaned up.
	dir, sum = unpackInto(t, s, filepath.Join(base, "lib"))
	if _, err := s.Import([]ImportRequest{{Dir: dir, Target: lib, Files: sum.Files, TreeHash: sum.TreeHash}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); err == nil {
		t.Fatal("tree of a valid path left behind")
	}
	// Outside the temporary area: refused.
	if _, err := s.Import([]ImportRequest{{Dir: filepath.Join(base, "lib"), Target: fakePath("x"), Files: sum.Files, TreeHash: sum.TreeHash}}); err == nil {
		t.Fatal("imported from outside tmp")
	}
	mustVerify(t, s, true)
}
