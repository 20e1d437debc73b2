// Package contentaddr holds content addresses: what the name of a
// content-addressed store path promises about its contents, and the
// check of that promise. Evaluation computes such a path from the
// address (builtins), realise records the address with the path, and
// the store checks it wherever bytes arrive (ingest, import,
// substitution, copy, verify --check-contents): a signature says who
// vouches for a path, the address says what it is. Pure Go without cgo,
// like treehash and storepath.
//
// # Forms
//
//	source:blake3:<hex>        the tree hash (store/treehash) of the path: path() sources
//	                           and `nexis store add`; the path is treehash.ContentPath
//	fixed:<algo>:<hex>         the path is one plain file whose bytes hash to <hex>
//	                           (algo sha256 or blake3): fetch_url without unpack
//	fixed:tree:blake3:<hex>    the tree hash of the path: fetch_git checkouts
//	fixed:unpack:<algo>:<hex>  the hash of an archive whose unpacked tree the path
//	                           holds: fetch_url with unpack
//
// A fixed path's hash part is BLAKE3 of
// "nexis-fixed-1:<algo>:<hex>:<unpacked>:<store dir>:<name>", where
// <unpacked> is "false" for the flat form and "true" for the others:
// the contents are a tree.
//
// The unpack form is the one address that cannot be checked from the
// path: the archive it names is not in the store. Its name still
// derives from the address, so a record cannot claim it for another
// path, but its contents are vouched for by signatures alone, as those
// of a built path are (docs/security.md).
package contentaddr

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Method is what a content address hashes.
type Method int

const (
	// Source: the tree hash; the path is treehash.ContentPath.
	Source Method = iota + 1
	// Flat: the bytes of a single plain file.
	Flat
	// Tree: the tree hash of a fixed output.
	Tree
	// Unpack: an archive the path holds unpacked; not checkable.
	Unpack
)

// CA is a parsed content address.
type CA struct {
	Method Method
	// Algo is "sha256" or "blake3" (Source and Tree: "blake3").
	Algo string
	// Hash is 64 lowercase hex digits.
	Hash string
}

// ErrMalformed is wrapped by errors about addresses that do not parse.
var ErrMalformed = errors.New("malformed content address")

// Parse parses the forms above.
func Parse(s string) (CA, error) {
	bad := func(why string) (CA, error) {
		return CA{}, fmt.Errorf("%w %q: %s", ErrMalformed, abbreviate(s), why)
	}
	parts := strings.Split(s, ":")
	var c CA
	switch {
	case len(parts) == 3 && parts[0] == "source":
		c = CA{Method: Source, Algo: parts[1], Hash: parts[2]}
	case len(parts) == 3 && parts[0] == "fixed":
		c = CA{Method: Flat, Algo: parts[1], Hash: parts[2]}
	case len(parts) == 4 && parts[0] == "fixed" && parts[1] == "tree":
		c = CA{Method: Tree, Algo: parts[2], Hash: parts[3]}
	case len(parts) == 4 && parts[0] == "fixed" && parts[1] == "unpack":
		c = CA{Method: Unpack, Algo: parts[2], Hash: parts[3]}
	default:
		return bad("want source:blake3:<hex>, fixed:<algo>:<hex>, fixed:tree:blake3:<hex> or fixed:unpack:<algo>:<hex>")
	}
	switch {
	case c.Algo != "sha256" && c.Algo != "blake3":
		return bad("the algorithm is not sha256 or blake3")
	case (c.Method == Source || c.Method == Tree) && c.Algo != "blake3":
		return bad("a tree hash is blake3")
	case !isHex64(c.Hash):
		return bad("the digest is not 64 lowercase hex digits")
	}
	return c, nil
}

func isHex64(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// String is the form Parse reads.
func (c CA) String() string {
	switch c.Method {
	case Source:
		return "source:" + c.Algo + ":" + c.Hash
	case Flat:
		return "fixed:" + c.Algo + ":" + c.Hash
	case Tree:
		return "fixed:tree:" + c.Algo + ":" + c.Hash
	case Unpack:
		return "fixed:unpack:" + c.Algo + ":" + c.Hash
	}
	return ""
}

// Digest is "<algo>:<hex>", as error messages show hashes.
func (c CA) Digest() string { return c.Algo + ":" + c.Hash }

// Checkable says whether the contents of a path can be checked against
// the address: all but Unpack.
func (c CA) Checkable() bool { return c.Method != Unpack }

// Path is the store path the address gives a path named name in the
// logical store storeDir.
func (c CA) Path(storeDir, name string) (storepath.Path, error) {
	if err := storepath.ValidName(name); err != nil {
		return storepath.Path{}, err
	}
	if c.Method == Source {
		d, err := treehash.ParseDigest(c.Hash)
		if err != nil {
			return storepath.Path{}, err
		}
		return treehash.ContentPath(storeDir, name, d)
	}
	return storepath.Path{Hash: FixedHash(c.Algo, c.Hash, c.Method != Flat, storeDir, name), Name: name}, nil
}

// FixedHash is the hash part of a fixed output's path. Evaluation uses
// it too, through CA.Path: the one place the rule is written.
func FixedHash(algo, digest string, unpacked bool, storeDir, name string) string {
	// Built by hand: fmt costs as much as the hash, once per fetched
	// source of every evaluation.
	b := make([]byte, 0, 64+len(algo)+len(digest)+len(storeDir)+len(name))
	b = append(append(append(b, "nexis-fixed-1:"...), algo...), ':')
	b = append(append(b, digest...), ':')
	b = append(strconv.AppendBool(b, unpacked), ':')
	b = append(append(append(b, storeDir...), ':'), name...)
	sum := treehash.Sum(b)
	return storepath.EncodeHash(sum[:])
}

// MismatchError is a path whose contents are not what its address says.
type MismatchError struct {
	// Want is the address's hash, Got what the contents hash to, both
	// as "<algo>:<hex>"; Got may instead describe the wrong shape.
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("its contents hash to %s, but its content address says %s", e.Got, e.Want)
}

// Check checks the tree at root, whose sorted entries with digests are
// files and whose tree hash is tree, against c. An Unpack address is
// not checked (nil). The error is a *MismatchError when the contents
// differ.
func (c CA) Check(root string, files []treehash.File, tree treehash.Digest) error {
	switch c.Method {
	case Source, Tree:
		if got := tree.Hex(); got != c.Hash {
			return &MismatchError{Want: c.Digest(), Got: "blake3:" + got}
		}
		return nil
	case Flat:
		if len(files) != 1 || files[0].Type != treehash.Regular {
			shape := "a tree"
			if len(files) == 1 {
				shape = "a " + files[0].Type.String()
			}
			return &MismatchError{Want: c.Digest() + " (a plain file)", Got: shape}
		}
		got := files[0].Digest.Hex()
		if c.Algo == "sha256" {
			var err error
			if got, err = sha256File(root); err != nil {
				return err
			}
		}
		if got != c.Hash {
			return &MismatchError{Want: c.Digest(), Got: c.Algo + ":" + got}
		}
		return nil
	case Unpack:
		return nil
	}
	return fmt.Errorf("%w: no method", ErrMalformed)
}

func sha256File(p string) (string, error) {
	fd, err := treehash.OpenRegular(p)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func abbreviate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
