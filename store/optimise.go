package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// OptimiseReport says what Optimise shared.
type OptimiseReport struct {
	Paths      int   `json:"paths"`
	Files      int   `json:"files"`
	Shared     int   `json:"shared"`
	BytesSaved int64 `json:"bytes_saved"`
	PoolAdded  int   `json:"pool_added"`
	// DryRun: the counts are what Optimise would do; nothing changed.
	DryRun bool `json:"dry_run"`
}

// Optimise dedupes registered paths that predate dedup or came in with
// it off: each file whose content has a pool entry becomes a link (or a
// clone) of it; a content without one gets one. Each replacement is an
// atomic rename of an identical file, so a crash leaves every path
// complete. With dryRun it only counts: nothing is pooled, replaced or
// dropped, and a read-only store will do.
func (s *Store) Optimise(dryRun bool, progress func(done, total int)) (*OptimiseReport, error) {
	if !dryRun {
		if err := s.writable(); err != nil {
			return nil, err
		}
	}
	if !s.dedup.Pools() {
		return nil, fmt.Errorf("optimise needs hard links or reflinks; the store uses %s", s.dedup)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var paths []storepath.Path
	if err := s.iterate(cfPaths, nil, func(k, v []byte) error {
		pi, err := decodeInfo(string(k), v)
		if err != nil {
			return err
		}
		paths = append(paths, pi.Path)
		return nil
	}); err != nil {
		return nil, err
	}
	rep := &OptimiseReport{Paths: len(paths), DryRun: dryRun}
	pools := &poolDirs{}
	for i, p := range paths {
		files, err := s.Manifest(p)
		if err != nil {
			return rep, err
		}
		root := s.Physical(p)
		touched := map[string]bool{}
		for j := range files {
			f := &files[j]
			if !f.Type.IsRegular() || f.Size == 0 {
				continue
			}
			fp := filepath.Join(root, filepath.FromSlash(f.Path))
			if !poolable(fp) {
				// A secret (0400) keeps its own inode.
				continue
			}
			rep.Files++
			k := keyOf(f)
			if _, err := os.Lstat(s.poolPath(k)); errors.Is(err, fs.ErrNotExist) {
				if dryRun {
					rep.PoolAdded++
					continue
				}
				if err := s.toPool(k, fp, pools); err != nil {
					return rep, err
				}
				rep.PoolAdded++
				continue
			}
			shared, err := s.sharesPool(k, fp)
			if err != nil {
				return rep, err
			}
			if shared {
				continue
			}
			if dryRun {
				rep.Shared++
				rep.BytesSaved += f.Size
				continue
			}
			if !s.checkPoolEntry(k, f.Size) {
				// Damaged and dropped; fp was not hashed here, so it does
				// not take the entry's place: the next ingest of the
				// content, or verify --repair after a check, does.
				continue
			}
			tmp := filepath.Join(s.tmpDir(), randomName("opt-"))
			if err := s.fromPool(k, tmp, fileMode(f)); err != nil {
				os.Remove(tmp)
				if errors.Is(err, unix.EMLINK) {
					continue
				}
				return rep, fmt.Errorf("optimising %s: %w", fp, err)
			}
			dir := filepath.Dir(fp)
			if !touched[dir] {
				// Writable while we replace entries (needed when not root).
				os.Chmod(dir, 0o755)
				touched[dir] = true
			}
			if err := os.Rename(tmp, fp); err != nil {
				os.Remove(tmp)
				return rep, fmt.Errorf("optimising %s: %w", fp, err)
			}
			rep.Shared++
			rep.BytesSaved += f.Size
		}
		// Replacing entries bumped the directories' mtimes and modes.
		for dir := range touched {
			if err := os.Chmod(dir, modeDir); err != nil {
				return rep, err
			}
			if err := setMtime(dir); err != nil {
				return rep, err
			}
			if err := fsyncPath(dir); err != nil {
				return rep, err
			}
		}
		if progress != nil {
			progress(i+1, len(paths))
		}
	}
	if err := pools.sync(); err != nil {
		return rep, err
	}
	return rep, nil
}

// sharesPool reports whether the file at p already shares the pool's
// copy of k.
func (s *Store) sharesPool(k contentKey, p string) (bool, error) {
	if s.dedup == DedupHardlink {
		a, err := os.Lstat(p)
		if err != nil {
			return false, err
		}
		b, err := os.Lstat(s.poolPath(k))
		if err != nil {
			return false, err
		}
		return os.SameFile(a, b), nil
	}
	return ExtentsShared(p)
}

// WhyDepends returns a shortest chain of references from a to b (both
// included), or nil when b is not in a's closure.
func (s *Store) WhyDepends(a, b storepath.Path) ([]storepath.Path, error) {
	for _, p := range []storepath.Path{a, b} {
		if ok, err := s.IsValid(p); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
			}
			return nil, err
		}
	}
	prev := map[string]string{a.Hash: ""}
	queue := []string{a.Hash}
	for len(queue) > 0 && prev[b.Hash] == "" && a.Hash != b.Hash {
		h := queue[0]
		queue = queue[1:]
		refs, err := s.refHashes(h)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if _, ok := prev[r]; !ok {
				prev[r] = h
				queue = append(queue, r)
			}
		}
	}
	if _, ok := prev[b.Hash]; !ok {
		return nil, nil
	}
	var chain []string
	for h := b.Hash; h != ""; h = prev[h] {
		chain = append([]string{h}, chain...)
		if h == a.Hash {
			break
		}
	}
	return s.pathsOf(chain)
}

// FilesReferring lists the files of p whose contents or symlink targets
// mention the hash part of ref: the evidence of a reference.
func (s *Store) FilesReferring(p, ref storepath.Path) ([]string, error) {
	files, err := s.Manifest(p)
	if err != nil {
		return nil, err
	}
	needle := []byte(ref.Hash)
	var out []string
	root := s.Physical(p)
	for i := range files {
		f := &files[i]
		switch {
		case f.Type == treehash.Symlink:
			if bytes.Contains([]byte(f.Target), needle) {
				out = append(out, f.Path)
			}
		case f.Type.IsRegular() && f.Size > 0:
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.Path)))
			if err != nil {
				return nil, err
			}
			if bytes.Contains(data, needle) {
				out = append(out, f.Path)
			}
		}
	}
	return out, nil
}
