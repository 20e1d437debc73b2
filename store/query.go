package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/linxGnu/grocksdb"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// ErrNotValid is wrapped by errors about paths that are not registered.
var ErrNotValid = errors.New("not a valid store path")

func (s *Store) queryInfoHash(hash string) (*PathInfo, error) {
	b, err := s.get(cfPaths, []byte(hash))
	if err != nil || b == nil {
		return nil, err
	}
	return decodeInfo(hash, b)
}

// nameOf returns the name registered for hash, or "" when none is.
func (s *Store) nameOf(hash string) (string, error) {
	pi, err := s.queryInfoHash(hash)
	if err != nil || pi == nil {
		return "", err
	}
	return pi.Path.Name, nil
}

// PathByHash finds the registered path with the given hash part.
func (s *Store) PathByHash(hash string) (storepath.Path, bool, error) {
	name, err := s.nameOf(hash)
	if err != nil || name == "" {
		return storepath.Path{}, false, err
	}
	return storepath.Path{Hash: hash, Name: name}, true, nil
}

// IsValid reports whether p is registered.
func (s *Store) IsValid(p storepath.Path) (bool, error) {
	name, err := s.nameOf(p.Hash)
	return err == nil && name != "" && name == p.Name, err
}

// QueryPathInfo returns what is known of p, references included. An
// unregistered p gives an error wrapping ErrNotValid.
func (s *Store) QueryPathInfo(p storepath.Path) (*PathInfo, error) {
	pi, err := s.queryInfoHash(p.Hash)
	if err != nil {
		return nil, err
	}
	if pi == nil || pi.Path.Name != p.Name {
		return nil, fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
	}
	refs, err := s.References(p)
	if err != nil {
		return nil, err
	}
	pi.References = refs
	return pi, nil
}

func (s *Store) refHashes(hash string) ([]string, error) {
	b, err := s.get(cfRefs, []byte(hash))
	if err != nil {
		return nil, err
	}
	hs, err := unpackHashes(b)
	if err != nil {
		return nil, fmt.Errorf("references of %s: %w", hash, err)
	}
	return hs, nil
}

func (s *Store) pathsOf(hashes []string) ([]storepath.Path, error) {
	out := make([]storepath.Path, 0, len(hashes))
	for _, h := range hashes {
		p, ok, err := s.PathByHash(h)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("reference %s is not registered: run `%s`", h, hint.Command("store verify"))
		}
		out = append(out, p)
	}
	return out, nil
}

// References returns the paths p refers to (itself included when it
// mentions itself).
func (s *Store) References(p storepath.Path) ([]storepath.Path, error) {
	if ok, err := s.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
		}
		return nil, err
	}
	hs, err := s.refHashes(p.Hash)
	if err != nil {
		return nil, err
	}
	return s.pathsOf(hs)
}

// Referrers returns the registered paths that refer to p, p excluded.
func (s *Store) Referrers(p storepath.Path) ([]storepath.Path, error) {
	if ok, err := s.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
		}
		return nil, err
	}
	hs, err := s.referrerHashes(p.Hash)
	if err != nil {
		return nil, err
	}
	return s.pathsOf(hs)
}

func (s *Store) referrerHashes(hash string) ([]string, error) {
	ro := s.newPrefixReadOptions()
	defer ro.Destroy()
	it := s.db.NewIteratorCF(ro, s.cfs[cfReferrers])
	defer it.Close()
	prefix := []byte(hash)
	var out []string
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		k := it.Key()
		if len(k.Data()) == 2*storepath.HashLen {
			out = append(out, string(k.Data()[storepath.HashLen:]))
		}
		k.Free()
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading referrers of %s: %w", hash, err)
	}
	return out, nil
}

// Refcount returns referrers + roots of p.
func (s *Store) Refcount(p storepath.Path) (uint64, error) {
	if ok, err := s.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
		}
		return 0, err
	}
	return s.getUint(cfRefcount, []byte(p.Hash))
}

// Manifest returns p's files as registered.
func (s *Store) Manifest(p storepath.Path) ([]treehash.File, error) {
	if ok, err := s.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
		}
		return nil, err
	}
	b, err := s.get(cfManifest, []byte(p.Hash))
	if err != nil {
		return nil, err
	}
	files, err := decodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", s.Logical(p), err)
	}
	return files, nil
}

// ContentRefcount returns how many registered files hold the content
// with digest d and the given type (Regular or Executable).
func (s *Store) ContentRefcount(d treehash.Digest, typ treehash.Type) (uint64, error) {
	var k contentKey
	copy(k[:], d[:])
	k[32] = byte(typ)
	b, err := s.get(cfContent, k[:])
	if err != nil || b == nil {
		return 0, err
	}
	v, err := decodeContent(b)
	return v.count, err
}

// Closure returns every path reachable from ps through references, ps
// included, sorted by hash.
func (s *Store) Closure(ps []storepath.Path) ([]storepath.Path, error) {
	seen := map[string]storepath.Path{}
	var stack []string
	for _, p := range ps {
		if ok, err := s.IsValid(p); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
			}
			return nil, err
		}
		if _, ok := seen[p.Hash]; !ok {
			seen[p.Hash] = p
			stack = append(stack, p.Hash)
		}
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		refs, err := s.refHashes(h)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if _, ok := seen[r]; ok {
				continue
			}
			p, ok, err := s.PathByHash(r)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("reference %s of %s is not registered: run `%s`", r, h, hint.Command("store verify"))
			}
			seen[r] = p
			stack = append(stack, r)
		}
	}
	out := make([]storepath.Path, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b storepath.Path) int { return strings.Compare(a.Hash, b.Hash) })
	return out, nil
}

// ParsePath parses a store path given on a command line: a full logical
// path, a path inside the physical store, "<hash>-<name>", or a link to
// one (an out-link, /run/current-system). A remainder inside the path
// ("/bin/sh") is returned too.
func (s *Store) ParsePath(arg string) (storepath.Path, string, error) {
	return s.parsePath(arg, maxLinks)
}

// maxLinks is how many symbolic links ParsePath follows, as Linux's
// MAXSYMLINKS: a loop of links ends there.
const maxLinks = 40

func (s *Store) parsePath(arg string, links int) (storepath.Path, string, error) {
	if p, rest, err := storepath.Parse(s.logical, arg); err == nil {
		return p, rest, nil
	}
	if p, rest, err := storepath.Parse(s.dir, arg); err == nil {
		return p, rest, nil
	}
	if len(arg) > storepath.HashLen && arg[storepath.HashLen] == '-' {
		h := arg[:storepath.HashLen]
		if p, r, err := storepath.ParseRel(h[0:2] + "/" + h[2:4] + "/" + arg); err == nil {
			return p, r, nil
		}
	}
	if resolved, ok := followLink(arg); ok && links > 0 {
		if p, rest, err := s.parsePath(resolved, links-1); err == nil {
			return p, rest, nil
		}
	}
	return storepath.Path{}, "", fmt.Errorf("%s is not a path in the store %s, nor a link to one", arg, s.logical)
}

// followLink replaces the first symbolic link of arg (an out-link,
// result/bin/app) with its target; ok is false when arg has none.
func followLink(arg string) (string, bool) {
	parts := strings.Split(filepath.Clean(arg), string(filepath.Separator))
	prefix := ""
	for i, part := range parts {
		switch {
		case i == 0 && part == "":
			prefix = "/"
			continue
		case prefix == "":
			prefix = part
		default:
			prefix = filepath.Join(prefix, part)
		}
		fi, err := os.Lstat(prefix)
		if err != nil {
			return "", false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(prefix)
		if err != nil {
			return "", false
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(prefix), target)
		}
		return filepath.Join(append([]string{target}, parts[i+1:]...)...), true
	}
	return "", false
}

// Roots.

// Root is a named root.
type Root struct {
	Name string
	Path storepath.Path
}

// GenerationRootPrefix starts the names of the roots that generations hold.
const GenerationRootPrefix = "generation/"

func validRootName(name string) error {
	if name == "" || len(name) > 1024 || strings.ContainsRune(name, 0) {
		return fmt.Errorf("root name %q: want 1 to 1024 bytes without NUL", name)
	}
	return nil
}

// AddRoot names p as a root, replacing what name pointed to before. p must
// be valid.
func (s *Store) AddRoot(name string, p storepath.Path) error {
	if err := s.writable(); err != nil {
		return err
	}
	if err := validRootName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTxn()
	defer t.destroy()
	if err := s.addRootTxn(t, name, p); err != nil {
		return err
	}
	return t.commit()
}

func (s *Store) addRootTxn(t *txn, name string, p storepath.Path) error {
	if ok, err := s.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("adding root %s: %s: %w", name, s.Logical(p), ErrNotValid)
		}
		return err
	}
	old, err := s.get(cfRoots, []byte(name))
	if err != nil {
		return err
	}
	if string(old) == p.Base() {
		return nil
	}
	st, err := t.loadStats()
	if err != nil {
		return err
	}
	if old != nil {
		if _, err := t.addRefcount(string(old[:min(len(old), storepath.HashLen)]), -1); err != nil {
			return err
		}
	} else {
		st.Roots++
	}
	if _, err := t.addRefcount(p.Hash, 1); err != nil {
		return err
	}
	t.put(cfRoots, []byte(name), []byte(p.Base()))
	return nil
}

// RemoveRoot drops a root. Removing a missing root is an error naming it.
func (s *Store) RemoveRoot(name string) error {
	if err := s.writable(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTxn()
	defer t.destroy()
	if err := s.removeRootTxn(t, name); err != nil {
		return err
	}
	return t.commit()
}

func (s *Store) removeRootTxn(t *txn, name string) error {
	old, err := s.get(cfRoots, []byte(name))
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("no root named %q", name)
	}
	st, err := t.loadStats()
	if err != nil {
		return err
	}
	st.Roots--
	if _, err := t.addRefcount(string(old[:min(len(old), storepath.HashLen)]), -1); err != nil {
		return err
	}
	t.del(cfRoots, []byte(name))
	return nil
}

// Root returns the path a root names.
func (s *Store) Root(name string) (storepath.Path, bool, error) {
	b, err := s.get(cfRoots, []byte(name))
	if err != nil || b == nil {
		return storepath.Path{}, false, err
	}
	p, err := parseBase(string(b))
	return p, err == nil, err
}

func parseBase(base string) (storepath.Path, error) {
	if len(base) < storepath.HashLen+2 {
		return storepath.Path{}, fmt.Errorf("malformed root target %q", base)
	}
	h := base[:storepath.HashLen]
	p, _, err := storepath.ParseRel(h[0:2] + "/" + h[2:4] + "/" + base)
	return p, err
}

// Roots lists every root, sorted by name.
func (s *Store) Roots() ([]Root, error) { return s.RootsWithPrefix("") }

// RootsWithPrefix lists the roots whose names start with prefix, sorted
// by name: one seek and the matching keys, where a caller that wants
// only one kind of root (the collector, out-links) would otherwise read
// every root the store has.
func (s *Store) RootsWithPrefix(prefix string) ([]Root, error) {
	var out []Root
	var p []byte
	if prefix != "" {
		p = []byte(prefix)
	}
	err := s.iterate(cfRoots, p, func(k, v []byte) error {
		p, err := parseBase(string(v))
		if err != nil {
			return fmt.Errorf("root %q: %w", k, err)
		}
		out = append(out, Root{Name: string(k), Path: p})
		return nil
	})
	return out, err
}

// iterate calls fn for every key with prefix in cf, in key order. The
// slices are only valid during the call.
func (s *Store) iterate(cf string, prefix []byte, fn func(k, v []byte) error) error {
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	if prefix == nil {
		ro.SetTotalOrderSeek(true)
	} else {
		ro.SetPrefixSameAsStart(true)
	}
	it := s.db.NewIteratorCF(ro, s.cfs[cf])
	defer it.Close()
	if prefix == nil {
		it.SeekToFirst()
	} else {
		it.Seek(prefix)
	}
	for ; it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		kd := k.Data()
		if prefix != nil && !bytes.HasPrefix(kd, prefix) {
			k.Free()
			v.Free()
			break
		}
		err := fn(kd, v.Data())
		k.Free()
		v.Free()
		if err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading store database (%s): %w", cf, err)
	}
	return nil
}

func (s *Store) newPrefixReadOptions() *grocksdb.ReadOptions {
	ro := grocksdb.NewDefaultReadOptions()
	ro.SetPrefixSameAsStart(true)
	return ro
}

// ClosureSize is the size of p's closure: p and every path it refers
// to, directly or not.
func (s *Store) ClosureSize(p storepath.Path) (int64, error) {
	cl, err := s.Closure([]storepath.Path{p})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, q := range cl {
		pi, err := s.QueryPathInfo(q)
		if err != nil {
			return 0, err
		}
		n += pi.Size
	}
	return n, nil
}
