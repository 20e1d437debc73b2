package store

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Registration describes a tree that is already complete, normalised and
// synced at its final place in the store. Ingest builds these; a caller
// that places trees itself (a substituter unpacking an archive) may too.
type Registration struct {
	Path     storepath.Path
	TreeHash treehash.Digest
	// Files is the manifest, sorted as treehash.Sort does.
	Files []treehash.File
	// References may name paths registered earlier or in the same call.
	References     []storepath.Path
	Deriver        string
	ContentAddress string
	// Impure is PathInfo.Impure. A path that refers to an impure one is
	// impure too, whatever this says: its bytes were made from bytes
	// that depend on another machine's host.
	Impure string
}

// Register registers regs in one atomic, synced batch: all or none. A
// registration of a path that is already valid is skipped; its info is
// returned as it is. Each path's directory must exist in its bucket, and
// every reference must be valid or registered in the same call.
func (s *Store) Register(regs []Registration) ([]*PathInfo, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	if err := s.checkInPlace(regs); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("registering: store is closed")
	}
	return s.registerLocked(regs)
}

// RegisterBatches registers batches in order, each as Register registers
// its argument: one atomic, synced commit per batch. A reference may name
// a path of the same or an earlier batch. It is how a bulk registration
// (a closure arriving in dependency order) uses both cores: RocksDB
// inserts one batch into its memtables on one thread, which is about half
// the cost of a registration, while the next batch is checked and
// prepared on another. On an error the batches before the failing one
// stay registered; their infos are returned with the error.
func (s *Store) RegisterBatches(batches [][]Registration) ([][]*PathInfo, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("registering: store is closed")
	}
	out := make([][]*PathInfo, 0, len(batches))
	type inflight struct {
		t      *txn
		infos  []*PathInfo
		landed chan error
	}
	// done takes in a batch that landed: the hot cache learns its writes.
	done := func(f *inflight) {
		s.hot.committed(f.t.ops)
		out = append(out, f.infos)
		f.t.destroy()
	}
	var cur *inflight // being written
	for _, regs := range batches {
		var prev *txn
		if cur != nil {
			prev = cur.t
		}
		err := s.checkInPlace(regs)
		var next *txn
		var infos []*PathInfo
		if err == nil {
			next, infos, err = s.prepareRegistration(regs, prev)
		}
		if err == nil {
			next.build()
		}
		var werr error
		if cur != nil {
			werr = <-cur.landed
		}
		if werr != nil || err != nil {
			switch {
			case cur != nil && werr == nil:
				done(cur)
			case cur != nil:
				cur.t.destroy()
			}
			if next != nil {
				next.destroy()
			}
			return out, errors.Join(werr, err)
		}
		next.prev = nil
		f := &inflight{next, infos, make(chan error, 1)}
		go func() { f.landed <- f.t.write() }()
		// The cache takes in the landed batch while the next one is
		// written: the write does not read it, and the next preparation
		// starts after this.
		if cur != nil {
			done(cur)
		}
		cur = f
	}
	if cur == nil {
		return out, nil
	}
	if err := <-cur.landed; err != nil {
		cur.t.destroy()
		return out, err
	}
	done(cur)
	return out, nil
}

// checkInPlace checks what Register needs of each registration before
// taking the lock: a well-formed path whose directory is in its bucket.
func (s *Store) checkInPlace(regs []Registration) error {
	for i := range regs {
		p := regs[i].Path
		if !storepath.IsHash(p.Hash) {
			return fmt.Errorf("registering %q: malformed hash part", p.Hash)
		}
		if err := storepath.ValidName(p.Name); err != nil {
			return fmt.Errorf("registering %s: %w", p.Base(), err)
		}
		if _, err := os.Lstat(s.Physical(p)); err != nil {
			return fmt.Errorf("registering %s: contents are not in place: %w", s.Logical(p), err)
		}
	}
	return nil
}

func (s *Store) registerLocked(regs []Registration) ([]*PathInfo, error) {
	t, out, err := s.prepareRegistration(regs, nil)
	if err != nil {
		return nil, err
	}
	defer t.destroy()
	if err := t.commit(); err != nil {
		return nil, err
	}
	return out, nil
}

// prepareRegistration checks regs against the store (as prev will leave
// it, when prev is being committed) and builds, uncommitted, the batch
// that registers them.
func (s *Store) prepareRegistration(regs []Registration, prev *txn) (t *txn, out []*PathInfo, err error) {
	t = s.newTxn()
	t.prev = prev
	t.added = make(map[string]*PathInfo, len(regs))
	tx := t
	defer func() {
		if err != nil {
			tx.destroy()
		}
	}()
	// Room for every operation up front: growing the list copies it, a
	// twentieth of registering thousands of paths. Per path: info, refs,
	// manifest, its count and zero mark, a referrer, count and zero mark
	// per reference, a count per content.
	n := 0
	for i := range regs {
		n += 5 + 3*len(regs[i].References) + len(regs[i].Files)
	}
	t.ops = make([]op, 0, n)
	st, err := t.loadStats()
	if err != nil {
		return nil, nil, err
	}
	out = make([]*PathInfo, len(regs))
	batch := map[string]*Registration{}
	now := time.Now()
	// Batched reads of everything the loops below look up: the paths
	// (for validity and names), the references' counts and the contents.
	var keys [][]byte
	seen := map[string]bool{}
	known := map[string]*PathInfo{}
	var refHashes []string
	var ckeys []contentKey
	for i := range regs {
		r := &regs[i]
		for _, h := range append([]string{r.Path.Hash}, hashesOf(r.References)...) {
			if seen[h] {
				continue
			}
			seen[h] = true
			if pi := prev.addedPath(h); pi != nil {
				known[h] = pi
			} else {
				keys = append(keys, []byte(h))
			}
		}
		refHashes = append(refHashes, hashesOf(r.References)...)
		for j := range r.Files {
			if f := &r.Files[j]; f.Type.IsRegular() && f.Size > 0 {
				ckeys = append(ckeys, keyOf(f))
			}
		}
	}
	vals, err := s.multiGet(cfPaths, keys)
	if err != nil {
		return nil, nil, err
	}
	for i, b := range vals {
		if b != nil {
			pi, err := decodeInfo(string(keys[i]), b)
			if err != nil {
				return nil, nil, err
			}
			known[pi.Path.Hash] = pi
		}
	}
	// Counts of paths about to be registered start at zero below; only
	// existing ones are read.
	var existing []string
	for _, h := range refHashes {
		if known[h] != nil {
			existing = append(existing, h)
		}
	}
	if err := t.prefetch(existing, ckeys); err != nil {
		return nil, nil, err
	}
	// First pass: which paths are new, so that references among them
	// resolve regardless of order.
	for i := range regs {
		r := &regs[i]
		if prev, ok := batch[r.Path.Hash]; ok {
			if prev.Path.Name != r.Path.Name {
				return nil, nil, fmt.Errorf("registering %s and %s: same hash part, different names", prev.Path.Base(), r.Path.Base())
			}
			continue
		}
		if pi := known[r.Path.Hash]; pi != nil {
			if pi.Path.Name != r.Path.Name {
				return nil, nil, fmt.Errorf("registering %s: its hash part is already registered as %s", r.Path.Base(), pi.Path.Base())
			}
			out[i] = pi
			continue
		}
		batch[r.Path.Hash] = r
		t.newPath(r.Path.Hash)
	}
	for i := range regs {
		r := &regs[i]
		if out[i] != nil || batch[r.Path.Hash] != r {
			continue
		}
		self := r.Path.Hash
		refs := make([]string, 0, len(r.References))
		names := make(map[string]string, len(r.References)+1)
		for _, ref := range r.References {
			if _, done := names[ref.Hash]; done {
				continue
			}
			names[ref.Hash] = ref.Name
			refs = append(refs, ref.Hash)
			if ref.Hash == self {
				if ref.Name != r.Path.Name {
					return nil, nil, fmt.Errorf("registering %s: self-reference names %s", r.Path.Base(), ref.Base())
				}
				continue
			}
			if b, ok := batch[ref.Hash]; ok {
				if b.Path.Name != ref.Name {
					return nil, nil, fmt.Errorf("registering %s: reference %s does not match %s", r.Path.Base(), ref.Base(), b.Path.Base())
				}
			} else {
				if pi := known[ref.Hash]; pi == nil || pi.Path.Name != ref.Name {
					return nil, nil, fmt.Errorf("registering %s: its reference %s is not valid in the store", s.Logical(r.Path), s.Logical(ref))
				}
			}
		}
		slices.Sort(refs)
		refs = slices.Compact(refs)
		var size int64
		for j := range r.Files {
			f := &r.Files[j]
			if !f.Type.IsRegular() {
				continue
			}
			size += f.Size
			if f.Size > 0 {
				if _, err := t.addContent(keyOf(f), f.Size, 1); err != nil {
					return nil, nil, err
				}
			}
		}
		pi := &PathInfo{
			Path:           r.Path,
			TreeHash:       r.TreeHash,
			Size:           size,
			Files:          len(r.Files),
			Registered:     now,
			Deriver:        r.Deriver,
			ContentAddress: r.ContentAddress,
			Impure:         s.impurity(r, batch, known, map[string]bool{}),
		}
		hk := []byte(self)
		t.put(cfPaths, hk, encodeInfo(pi))
		t.put(cfRefs, hk, packHashes(refs))
		t.put(cfManifest, hk, encodeManifest(r.Files))
		for _, ref := range refs {
			if ref == self {
				continue
			}
			t.put(cfReferrers, []byte(ref+self), nil)
			if _, err := t.addRefcount(ref, 1); err != nil {
				return nil, nil, err
			}
		}
		st.Paths++
		st.Files += int64(len(r.Files))
		st.Bytes += size
		pi.References = make([]storepath.Path, 0, len(refs))
		for _, h := range refs {
			pi.References = append(pi.References, storepath.Path{Hash: h, Name: names[h]})
		}
		t.added[self] = pi
		out[i] = pi
	}
	for i := range regs {
		if out[i] == nil { // a duplicate within the call
			out[i] = out[indexOfHash(regs, regs[i].Path.Hash)]
		}
	}
	return t, out, nil
}

// impurity is the Impure of registration r: its own reason, else the
// first impure path among its references (in the store, or registered
// in the same batch, followed through the batch), named with that
// path's own reason so that the message leads to where the host came
// in. visiting stops a cycle among the batch's paths.
func (s *Store) impurity(r *Registration, batch map[string]*Registration, known map[string]*PathInfo, visiting map[string]bool) string {
	if r.Impure != "" {
		return r.Impure
	}
	visiting[r.Path.Hash] = true
	for _, ref := range r.References {
		if ref.Hash == r.Path.Hash || visiting[ref.Hash] {
			continue
		}
		why := ""
		if b, ok := batch[ref.Hash]; ok {
			why = s.impurity(b, batch, known, visiting)
		} else if pi := known[ref.Hash]; pi != nil {
			why = pi.Impure
		}
		if why != "" {
			return InheritedImpurity(s.Logical(ref), why)
		}
	}
	return ""
}

// InheritedImpurity is the Impure of a path made from (or referring to)
// the impure path from, whose reason is why: it names the path where
// the host came in, not every step on the way.
func InheritedImpurity(from, why string) string {
	if strings.HasPrefix(why, inheritedPrefix) {
		return why
	}
	return inheritedPrefix + from + ", which was " + why
}

const inheritedPrefix = "it depends on "

// addedPath is the info of a path t registers; t may be nil.
func (t *txn) addedPath(hash string) *PathInfo {
	if t == nil {
		return nil
	}
	return t.added[hash]
}

func hashesOf(ps []storepath.Path) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Hash
	}
	return out
}

func indexOfHash(regs []Registration, h string) int {
	for i := range regs {
		if regs[i].Path.Hash == h {
			return i
		}
	}
	return -1
}
