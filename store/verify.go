package store

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// CheckContents re-hashes every registered path.
	CheckContents bool
	// Repair rewrites counters from the edges and manifests, moves
	// unregistered directories to the trash, removes pool entries nothing
	// counts and restores missing ones. A registered path whose contents
	// are wrong cannot be repaired: it stays an error.
	Repair bool
	// Progress, when set, is called after each registered path is checked.
	Progress func(done, total int)
}

// VerifyReport is what Verify found. Errors are broken invariants;
// Garbage is leftover of interrupted work, harmless but reclaimable.
type VerifyReport struct {
	Paths    int      `json:"paths"`
	Errors   []string `json:"errors"`
	Garbage  []string `json:"garbage"`
	Warnings []string `json:"warnings"`
	Repaired []string `json:"repaired"`
}

// Clean reports whether no invariant is broken.
func (r *VerifyReport) Clean() bool { return len(r.Errors) == 0 }

// Verify checks the store's invariants: every registered path exists
// (with the recorded tree hash under CheckContents); references point to
// registered paths; referrers, refcounts and the zero list equal what the
// edges and roots imply; content counts equal the manifests; stats are
// exact; every directory in the buckets is registered.
func (s *Store) Verify(opts VerifyOptions) (*VerifyReport, error) {
	if opts.Repair {
		if err := s.writable(); err != nil {
			return nil, err
		}
		// Repair rewrites counters: no commit may interleave.
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	rep := &VerifyReport{}
	errf := func(format string, args ...any) { rep.Errors = append(rep.Errors, fmt.Sprintf(format, args...)) }

	infos := map[string]*PathInfo{}
	err := s.iterate(cfPaths, nil, func(k, v []byte) error {
		pi, err := decodeInfo(string(k), v)
		if err != nil {
			errf("%v", err)
			return nil
		}
		infos[string(k)] = pi
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Paths = len(infos)

	wantRefcount := map[string]uint64{}
	for h := range infos {
		wantRefcount[h] = 0
	}
	wantReferrers := map[string]bool{}
	err = s.iterate(cfRefs, nil, func(k, v []byte) error {
		h := string(k)
		if infos[h] == nil {
			errf("references recorded for unregistered %s", h)
			return nil
		}
		refs, err := unpackHashes(v)
		if err != nil {
			errf("references of %s: %v", h, err)
			return nil
		}
		for _, r := range refs {
			if infos[r] == nil {
				errf("%s refers to %s, which is not registered", s.Logical(infos[h].Path), r)
				continue
			}
			if r != h {
				wantReferrers[r+h] = true
				wantRefcount[r]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var wantStats Stats
	err = s.iterate(cfRoots, nil, func(k, v []byte) error {
		wantStats.Roots++
		p, err := parseBase(string(v))
		if err != nil || infos[p.Hash] == nil || infos[p.Hash].Path.Name != p.Name {
			errf("root %q names %q, which is not a registered path", k, v)
			return nil
		}
		wantRefcount[p.Hash]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.iterate(cfGenerations, nil, func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) != i+9 {
			errf("malformed generation key %q", k)
			return nil
		}
		g, err := decodeGen(string(k[:i]), beUint64(k[i+1:]), v)
		if err != nil {
			errf("%v", err)
			return nil
		}
		if rp, ok, _ := s.Root(g.RootName()); !ok || rp != g.Path {
			errf("generation %d of %s is not rooted (root %q)", g.Number, g.Profile, g.RootName())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Manifests and contents.
	wantContent := map[contentKey]contentVal{}
	manifests := map[string][]treehash.File{}
	for h, pi := range infos {
		b, err := s.get(cfManifest, []byte(h))
		if err != nil {
			return nil, err
		}
		files, err := decodeManifest(b)
		if b == nil || err != nil || len(files) == 0 {
			errf("%s has no readable manifest", s.Logical(pi.Path))
			continue
		}
		manifests[h] = files
		if treehash.Hash(files) != pi.TreeHash {
			errf("%s: manifest does not match the recorded tree hash", s.Logical(pi.Path))
		}
		var size int64
		for i := range files {
			f := &files[i]
			if f.Type.IsRegular() {
				size += f.Size
				if f.Size > 0 {
					k := keyOf(f)
					v := wantContent[k]
					v.count++
					v.size = f.Size
					wantContent[k] = v
				}
			}
		}
		if size != pi.Size || len(files) != pi.Files {
			errf("%s: recorded size/files %d/%d, manifest says %d/%d", s.Logical(pi.Path), pi.Size, pi.Files, size, len(files))
		}
		wantStats.Paths++
		wantStats.Files += int64(len(files))
		wantStats.Bytes += size
	}
	for _, v := range wantContent {
		wantStats.Contents++
		wantStats.ContentBytes += v.size
	}

	// Contents on disk.
	done := 0
	hashes := make([]string, 0, len(infos))
	for h := range infos {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	// Small paths dominate: hash them in parallel, one path per worker.
	var mu sync.Mutex
	parallelDo(len(hashes), func(i int) error {
		h := hashes[i]
		pi := infos[h]
		phys := s.Physical(pi.Path)
		fi, err := os.Lstat(phys)
		var msg string
		switch {
		case err != nil:
			msg = fmt.Sprintf("%s is registered but missing: %v", s.Logical(pi.Path), err)
		case opts.CheckContents:
			tree, err := treehash.Scan(phys, treehash.ScanOptions{Workers: 1})
			if err != nil {
				msg = fmt.Sprintf("%s: %v", s.Logical(pi.Path), err)
			} else if tree.Hash != pi.TreeHash {
				msg = fmt.Sprintf("%s: contents hash to %s, registered %s", s.Logical(pi.Path), tree.Hash, pi.TreeHash)
			} else if bad := unnormalised(phys); bad != "" {
				msg = fmt.Sprintf("%s: %s (something changed a store path, which stays read-only with mtime 1: find out what, then re-add or rebuild it)", s.Logical(pi.Path), bad)
			}
		default:
			if m := manifests[h]; len(m) > 0 && typeOf(fi.Mode()) != m[0].Type {
				msg = fmt.Sprintf("%s is a %s on disk, registered as a %s", s.Logical(pi.Path), typeOf(fi.Mode()), m[0].Type)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if msg != "" {
			errf("%s", msg)
		}
		done++
		if opts.Progress != nil {
			opts.Progress(done, len(infos))
		}
		return nil
	})

	// Counters.
	var fixRefcount, fixReferrers, fixZero, fixContent bool
	gotReferrers := map[string]bool{}
	if err := s.iterate(cfReferrers, nil, func(k, v []byte) error {
		gotReferrers[string(k)] = true
		if !wantReferrers[string(k)] {
			errf("stale referrer edge %s <- %s", k[:min(len(k), storepath.HashLen)], k[min(len(k), storepath.HashLen):])
			fixReferrers = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for k := range wantReferrers {
		if !gotReferrers[k] {
			errf("missing referrer edge %s <- %s", k[:storepath.HashLen], k[storepath.HashLen:])
			fixReferrers = true
		}
	}
	gotRefcount := map[string]bool{}
	if err := s.iterate(cfRefcount, nil, func(k, v []byte) error {
		h := string(k)
		gotRefcount[h] = true
		want, ok := wantRefcount[h]
		d := decoder{b: v}
		got := d.uvarint()
		if !ok || d.err != nil || got != want {
			errf("refcount of %s is %d, edges and roots say %d", h, got, want)
			fixRefcount = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for h := range wantRefcount {
		if !gotRefcount[h] {
			errf("refcount of %s is missing", h)
			fixRefcount = true
		}
	}
	gotZero := map[string]bool{}
	if err := s.iterate(cfZero, nil, func(k, v []byte) error {
		gotZero[string(k)] = true
		if n, ok := wantRefcount[string(k)]; !ok || n != 0 {
			errf("%s is listed as unreferenced but has refcount %d", k, n)
			fixZero = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for h, n := range wantRefcount {
		if n == 0 && !gotZero[h] {
			errf("%s has refcount 0 but is not listed as unreferenced", h)
			fixZero = true
		}
	}
	gotContent := map[contentKey]bool{}
	if err := s.iterate(cfContent, nil, func(k, v []byte) error {
		var ck contentKey
		copy(ck[:], k)
		gotContent[ck] = true
		cv, err := decodeContent(v)
		want := wantContent[ck]
		if len(k) != len(ck) || err != nil || cv.count != want.count {
			errf("content %s%c has count %d, manifests say %d", ck.Digest().Hex(), ck[32], cv.count, want.count)
			fixContent = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for k, v := range wantContent {
		if !gotContent[k] {
			errf("content %s%c (count %d) is not counted", k.Digest().Hex(), k[32], v.count)
			fixContent = true
		}
	}
	gotStats, err := s.readStats()
	if err != nil {
		return nil, err
	}
	fixStats := gotStats != wantStats
	if fixStats {
		errf("stats are %+v, recomputed %+v", gotStats, wantStats)
	}

	// Directories in the buckets that nothing registered.
	var garbage []string
	top, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("reading store directory: %w", err)
	}
	for _, b1 := range top {
		n1 := b1.Name()
		if !isBucket(n1) {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(s.dir, n1))
		if err != nil {
			return nil, fmt.Errorf("reading store bucket: %w", err)
		}
		for _, b2 := range sub {
			n2 := b2.Name()
			d2 := filepath.Join(s.dir, n1, n2)
			if !isBucket(n2) {
				garbage = append(garbage, d2)
				continue
			}
			ents, err := os.ReadDir(d2)
			if err != nil {
				return nil, fmt.Errorf("reading store bucket: %w", err)
			}
			for _, e := range ents {
				p, _, err := storepath.ParseRel(n1 + "/" + n2 + "/" + e.Name())
				if err != nil || infos[p.Hash] == nil || infos[p.Hash].Path.Name != p.Name {
					garbage = append(garbage, filepath.Join(d2, e.Name()))
				}
			}
		}
	}
	rep.Garbage = append(rep.Garbage, garbage...)

	// The pool.
	var orphans []string
	var missing []contentKey
	share := s.dedup == DedupHardlink || s.dedup == DedupReflink
	present := map[contentKey]bool{}
	pdirs, _ := os.ReadDir(s.contentDir())
	for _, pd := range pdirs {
		ents, _ := os.ReadDir(filepath.Join(s.contentDir(), pd.Name()))
		for _, e := range ents {
			k, ok := parsePoolName(e.Name())
			p := filepath.Join(s.contentDir(), pd.Name(), e.Name())
			if !ok || wantContent[k].count == 0 {
				orphans = append(orphans, p)
				continue
			}
			present[k] = true
		}
	}
	rep.Garbage = append(rep.Garbage, orphans...)
	if share {
		for k := range wantContent {
			if !present[k] {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d contents have no pool entry: new copies of them will not be shared (repair restores them)", len(missing)))
		}
	}

	if !opts.Repair {
		return rep, nil
	}
	if fixReferrers || fixRefcount || fixZero || fixContent || fixStats {
		t := s.newTxn()
		defer t.destroy()
		if fixReferrers {
			for k := range gotReferrers {
				if !wantReferrers[k] {
					t.del(cfReferrers, []byte(k))
				}
			}
			for k := range wantReferrers {
				t.put(cfReferrers, []byte(k), nil)
			}
		}
		if fixRefcount || fixZero {
			for h := range gotRefcount {
				if _, ok := wantRefcount[h]; !ok {
					t.del(cfRefcount, []byte(h))
				}
			}
			for h := range gotZero {
				if n, ok := wantRefcount[h]; !ok || n != 0 {
					t.del(cfZero, []byte(h))
				}
			}
			for h, n := range wantRefcount {
				t.refcount[h] = refcountVal{n: n, exists: true, dirty: true}
			}
		}
		if fixContent {
			for k := range gotContent {
				if wantContent[k].count == 0 {
					t.del(cfContent, k[:])
				}
			}
			for k, v := range wantContent {
				t.put(cfContent, k[:], encodeContent(v))
			}
		}
		st := wantStats
		t.stats = &st
		if err := t.commit(); err != nil {
			return rep, err
		}
		rep.Repaired = append(rep.Repaired, "rewrote counters from edges, roots and manifests")
	}
	for _, g := range garbage {
		if err := s.moveToTrash(g); err != nil {
			return rep, err
		}
		rep.Repaired = append(rep.Repaired, "moved "+g+" to the trash")
	}
	for _, o := range orphans {
		if err := os.Remove(o); err != nil {
			return rep, fmt.Errorf("removing unused pool entry: %w", err)
		}
	}
	if len(orphans) > 0 {
		rep.Repaired = append(rep.Repaired, fmt.Sprintf("removed %d unused pool entries", len(orphans)))
	}
	if len(missing) > 0 {
		need := map[contentKey]bool{}
		for _, k := range missing {
			need[k] = true
		}
		pools := &poolDirs{}
		for h, files := range manifests {
			for i := range files {
				f := &files[i]
				if f.Type.IsRegular() && f.Size > 0 && need[keyOf(f)] {
					if err := s.toPool(keyOf(f), filepath.Join(s.Physical(infos[h].Path), filepath.FromSlash(f.Path)), pools); err == nil {
						delete(need, keyOf(f))
					}
				}
			}
		}
		rep.Repaired = append(rep.Repaired, fmt.Sprintf("restored %d pool entries", len(missing)-len(need)))
	}
	return rep, nil
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

func isBucket(n string) bool {
	return len(n) == 2 && storepath.IsHashChar(n[0]) && storepath.IsHashChar(n[1])
}

func parsePoolName(n string) (contentKey, bool) {
	var k contentKey
	if len(n) != 65 || (n[64] != 'f' && n[64] != 'x') {
		return k, false
	}
	d, err := treehash.ParseDigest(n[:64])
	if err != nil || strings.ToLower(n[:64]) != n[:64] {
		return k, false
	}
	copy(k[:], d[:])
	k[32] = n[64]
	return k, true
}

func typeOf(m os.FileMode) treehash.Type {
	switch {
	case m.IsDir():
		return treehash.Directory
	case m&os.ModeSymlink != 0:
		return treehash.Symlink
	case m.IsRegular() && m&0o111 != 0:
		return treehash.Executable
	case m.IsRegular():
		return treehash.Regular
	}
	return 0
}

// unnormalised describes the first entry of the tree at root that is not
// as ingestion (or MakePrivate) leaves it: directories 0555, files 0444
// or 0555 (the tree hash already covers which) or 0400, nothing writable,
// setuid, setgid or sticky, mtime 1 everywhere; "" when all are.
func unnormalised(root string) string {
	var bad string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			bad = err.Error()
			return filepath.SkipAll
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			bad = err.Error()
			return filepath.SkipAll
		}
		rel, _ := filepath.Rel(root, p)
		mode := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if mode != modeDir {
				bad = fmt.Sprintf("directory %s has mode %04o", rel, mode)
			}
		case unix.S_IFREG:
			// 0400: made private (MakePrivate), which only narrows.
			if mode != modeFile && mode != modeExec && mode != 0o400 {
				bad = fmt.Sprintf("file %s has mode %04o", rel, mode)
			}
		}
		if bad == "" && st.Mtim.Sec != 1 {
			bad = fmt.Sprintf("%s has mtime %d", rel, st.Mtim.Sec)
		}
		if bad != "" {
			return filepath.SkipAll
		}
		return nil
	})
	return bad
}
