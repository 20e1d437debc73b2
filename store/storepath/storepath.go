// Package storepath holds the layout of store paths, shared by evaluation
// (which computes output paths) and the store (which creates them). It is
// pure Go without cgo so that evaluation never links RocksDB.
//
// A store path is
//
//	<store>/<h0h1>/<h2h3>/<h>-<name>
//
// where <h> is HashLen characters of lowercase base32 of 160 bits of a
// BLAKE3 digest. The alphabet is Nix's ("0123456789abcdfghijklmnpqrsvwxyz",
// without e, o, u and t) so a hash never spells words, and the digits are
// taken from the digest's first 20 bytes, least significant 5-bit group
// last. The two bucket levels keep every directory small, and let the
// garbage collector partition work by bucket.
package storepath

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// DefaultDir is the logical store directory: the one written into paths
// and hashed into identities. A relocated physical store (--root) keeps it.
const DefaultDir = "/store"

// HashLen is the number of base32 characters in a path's hash part.
const HashLen = 32

// HashBytes is the number of digest bytes a hash part encodes (160 bits).
const HashBytes = 20

const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

var decodeTable = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// EncodeHash encodes the first HashBytes bytes of digest as HashLen
// base32 characters. It panics if digest is shorter: that is a programming
// error, never user input.
func EncodeHash(digest []byte) string {
	if len(digest) < HashBytes {
		panic("storepath: digest shorter than 160 bits")
	}
	b := digest[:HashBytes]
	out := make([]byte, HashLen)
	// 160 bits are exactly 32 groups of 5: read them big-endian.
	for i := 0; i < HashLen; i++ {
		bit := i * 5
		byteIdx, shift := bit/8, bit%8
		v := uint16(b[byteIdx]) << 8
		if byteIdx+1 < len(b) {
			v |= uint16(b[byteIdx+1])
		}
		out[i] = alphabet[(v>>(11-shift))&0x1f]
	}
	return string(out)
}

// IsHash reports whether s is a well-formed hash part.
func IsHash(s string) bool {
	if len(s) != HashLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if decodeTable[s[i]] < 0 {
			return false
		}
	}
	return true
}

// IsHashChar reports whether c may appear in a hash part.
func IsHashChar(c byte) bool { return decodeTable[c] >= 0 }

// IsBucket reports whether n names a bucket of the store's layout: two
// characters of the hash alphabet (<store>/<h0h1>/<h2h3>/<hash>-<name>,
// and the trash's buckets).
func IsBucket(n string) bool { return len(n) == 2 && IsHashChar(n[0]) && IsHashChar(n[1]) }

// ValidName checks the name part of a store path: what follows the hash.
// It is restricted to characters that need no quoting in a shell or a
// Makefile, and may not start with a dot.
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 200 {
		return fmt.Errorf("name %q is longer than 200 characters", name)
	}
	if name[0] == '.' {
		return fmt.Errorf("name %q starts with a dot", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("+-._?=", c) >= 0:
		default:
			return fmt.Errorf("name %q contains %q: use letters, digits and + - . _ ? =", name, c)
		}
	}
	return nil
}

// Base is the last element of a store path: "<hash>-<name>".
func Base(hash, name string) string { return hash + "-" + name }

// Rel is a store path relative to the store directory:
// "<h0h1>/<h2h3>/<hash>-<name>".
func Rel(hash, name string) string {
	return hash[0:2] + "/" + hash[2:4] + "/" + Base(hash, name)
}

// Join makes the full store path of hash and name under storeDir.
func Join(storeDir, hash, name string) string {
	return path.Join(storeDir, Rel(hash, name))
}

// Path is a parsed store path.
type Path struct {
	Hash string
	Name string
}

// Rel returns the path relative to the store directory.
func (p Path) Rel() string { return Rel(p.Hash, p.Name) }

// In returns the full path under storeDir.
func (p Path) In(storeDir string) string { return Join(storeDir, p.Hash, p.Name) }

// Base returns "<hash>-<name>".
func (p Path) Base() string { return Base(p.Hash, p.Name) }

// Parse splits a full store path (or a path inside one) under storeDir.
// It returns the store path and the remainder inside it ("" or "/sub/file").
func Parse(storeDir, p string) (Path, string, error) {
	clean := path.Clean(p)
	prefix := path.Clean(storeDir) + "/"
	if !strings.HasPrefix(clean, prefix) {
		return Path{}, "", fmt.Errorf("%s is not in the store %s", p, storeDir)
	}
	return ParseRel(strings.TrimPrefix(clean, prefix))
}

// ParseRel parses a path relative to the store directory.
func ParseRel(rel string) (Path, string, error) {
	parts := strings.SplitN(rel, "/", 4)
	if len(parts) < 3 {
		return Path{}, "", fmt.Errorf("%s is not a store path: want <h0h1>/<h2h3>/<hash>-<name>", rel)
	}
	base := parts[2]
	if len(base) < HashLen+2 || base[HashLen] != '-' {
		return Path{}, "", fmt.Errorf("%s is not a store path: no <hash>-<name> element", rel)
	}
	hash, name := base[:HashLen], base[HashLen+1:]
	if !IsHash(hash) || parts[0] != hash[0:2] || parts[1] != hash[2:4] {
		return Path{}, "", fmt.Errorf("%s is not a store path: bad hash or bucket", rel)
	}
	if err := ValidName(name); err != nil {
		return Path{}, "", fmt.Errorf("%s is not a store path: %w", rel, err)
	}
	rest := ""
	if len(parts) == 4 {
		rest = "/" + parts[3]
	}
	return Path{Hash: hash, Name: name}, rest, nil
}

// ScanHashes calls fn for every substring of data that looks like the hash
// part of a store path: HashLen hash characters followed by '-', preceded by
// a '/' (as in "<store>/ab/cd/<hash>-name"). Callers check candidates
// against a set of known hashes; this only finds them.
func ScanHashes(data []byte, fn func(hash string)) {
	for i := 0; i < len(data); {
		j := bytes.IndexByte(data[i:], '/')
		if j < 0 {
			return
		}
		s := i + j + 1
		i = s
		if s+HashLen >= len(data) || data[s+HashLen] != '-' {
			continue
		}
		ok := true
		for k := s; k < s+HashLen; k++ {
			if !IsHashChar(data[k]) {
				ok = false
				break
			}
		}
		if ok {
			fn(string(data[s : s+HashLen]))
			i = s + HashLen
		}
	}
}

// ReadList reads store paths of storeDir, one a line (blank lines
// skipped), and gives their hashes: what a receiver says it has.
func ReadList(r io.Reader, storeDir string) (map[string]bool, error) {
	has := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		p, rest, err := Parse(storeDir, l)
		if err != nil || rest != "" {
			return nil, fmt.Errorf("%q is not a store path of %s", l, storeDir)
		}
		has[p.Hash] = true
	}
	return has, sc.Err()
}
