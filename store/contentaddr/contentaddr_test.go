package contentaddr

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

func TestParse(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, s := range []string{"source:blake3:" + h, "fixed:sha256:" + h, "fixed:blake3:" + h, "fixed:tree:blake3:" + h, "fixed:unpack:sha256:" + h} {
		c, err := Parse(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if c.String() != s {
			t.Errorf("%s round-trips to %s", s, c)
		}
	}
	for _, s := range []string{"", "source:sha256:" + h, "fixed:tree:sha256:" + h, "fixed:md5:" + h, "fixed:sha256:" + strings.ToUpper(h),
		"fixed:sha256:" + h[:62], "fixed:other:sha256:" + h, "nar:sha256:" + h} {
		if _, err := Parse(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", s, err)
		}
	}
}

// The path an address gives does not depend on the method's spelling
// only: flat and unpacked addresses of one hash are different paths, so
// a record cannot move bytes from one to the other.
func TestPathsDiffer(t *testing.T) {
	h := strings.Repeat("cd", 32)
	seen := map[string]string{}
	for _, c := range []CA{{Flat, "sha256", h}, {Unpack, "sha256", h}, {Flat, "blake3", h}, {Source, "blake3", h}} {
		p, err := c.Path("/store", "x")
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[p.Hash]; ok {
			t.Errorf("%s and %s give the same path", prev, c)
		}
		seen[p.Hash] = c.String()
	}
	if _, err := (CA{Flat, "sha256", h}).Path("/store", "bad/name"); err == nil {
		t.Error("a name with a slash was accepted")
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("bytes"), 0o644)
	tree, err := treehash.Scan(file, treehash.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("bytes"))
	good := []CA{
		{Flat, "sha256", hex.EncodeToString(sum[:])},
		{Flat, "blake3", tree.Files[0].Digest.Hex()},
		{Source, "blake3", tree.Hash.Hex()},
		{Tree, "blake3", tree.Hash.Hex()},
		{Unpack, "sha256", strings.Repeat("0", 64)}, // not checkable: nil
	}
	for _, c := range good {
		if err := c.Check(file, tree.Files, tree.Hash); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	other := strings.Repeat("0", 64)
	for _, c := range []CA{{Flat, "sha256", other}, {Flat, "blake3", other}, {Source, "blake3", other}, {Tree, "blake3", other}} {
		err := c.Check(file, tree.Files, tree.Hash)
		var m *MismatchError
		if !errors.As(err, &m) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), c.Algo+":") {
			t.Errorf("%s: %v, want a mismatch naming both hashes", c, err)
		}
	}
	// A flat address names a plain file: not a tree, not an executable.
	d := filepath.Join(dir, "d")
	os.Mkdir(d, 0o755)
	os.WriteFile(filepath.Join(d, "f"), []byte("bytes"), 0o755)
	dt, _ := treehash.Scan(d, treehash.ScanOptions{})
	if err := good[1].Check(d, dt.Files, dt.Hash); err == nil {
		t.Error("a tree passed a flat address")
	}
	x := filepath.Join(d, "f")
	xt, _ := treehash.Scan(x, treehash.ScanOptions{})
	if err := good[1].Check(x, xt.Files, xt.Hash); err == nil {
		t.Error("an executable passed a flat address")
	}
}

// TestFixedHashIsTheFormattedOne: FixedHash hashes what its format
// always said, byte for byte: every fixed-output store path depends on
// it.
func TestFixedHashIsTheFormattedOne(t *testing.T) {
	for _, c := range []struct {
		algo, digest, store, name string
		unpacked                  bool
	}{
		{"sha256", strings.Repeat("ab", 32), "/nexis/store", "hello-2.12.tar.gz", true},
		{"blake3", strings.Repeat("0f", 32), "/store", "x", false},
		{"tree:blake3", "", "", "", false},
		{"sha256", "é:ü", "/a:b", "na:me", true},
	} {
		want := storepath.EncodeHash(func() []byte {
			s := treehash.Sum(fmt.Appendf(nil, "nexis-fixed-1:%s:%s:%t:%s:%s", c.algo, c.digest, c.unpacked, c.store, c.name))
			return s[:]
		}())
		if got := FixedHash(c.algo, c.digest, c.unpacked, c.store, c.name); got != want {
			t.Errorf("FixedHash(%q, %q, %t, %q, %q) = %s, want %s", c.algo, c.digest, c.unpacked, c.store, c.name, got, want)
		}
	}
}
