package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Verification is planned, then executed, as restic prunes: Verify
// reads and returns a report whose Plan lists every repair; Repair does
// exactly that plan and nothing else. The store repairs what its own
// metadata and disk can: counters (recomputed from edges, roots and
// manifests), unregistered directories (to the trash), the content pool.
// A registered path that is missing or whose contents are not what was
// registered is Damaged: its bytes must come again from a rebuild or a
// cache (realise.Repair), never from a guess, and nothing is deleted to
// make the report clean.

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// CheckContents re-hashes every registered path and checks content
	// addresses against the bytes.
	CheckContents bool
	// Repair executes the plan (Repair) before Verify returns, under the
	// same lock. Damaged paths are left to realise.Repair.
	Repair bool
	// Progress, when set, is called after each registered path is checked.
	Progress func(done, total int)
}

// VerifyReport is what Verify found. Errors are broken invariants;
// Garbage is leftover of interrupted work, harmless but reclaimable;
// Damaged are the registered paths whose bytes must be restored.
type VerifyReport struct {
	Paths    int      `json:"paths"`
	Errors   []string `json:"errors"`
	Garbage  []string `json:"garbage"`
	Warnings []string `json:"warnings"`
	Damaged  []Damage `json:"damaged"`
	// Plan is what Repair does with this report.
	Plan *RepairPlan `json:"plan"`
	// Repaired says what Repair did (VerifyOptions.Repair).
	Repaired []string `json:"repaired"`
}

// Damage is a registered path that is missing, or whose contents on
// disk are not what was registered (or what its content address says).
type Damage struct {
	Path storepath.Path `json:"-"`
	// StorePath is the logical path.
	StorePath string `json:"path"`
	Problem   string `json:"problem"`
	// Missing: nothing is at the path.
	Missing bool `json:"missing,omitempty"`
}

// RepairPlan is the list of repairs Verify found. Everything but
// Restore is the store's to do (Repair); Restore needs new bytes.
type RepairPlan struct {
	// RewriteCounters: referrers, refcounts, the zero list, content
	// counts or stats differ from what edges, roots and manifests imply.
	RewriteCounters bool `json:"rewrite_counters"`
	// Trash lists unregistered directories in the buckets.
	Trash []string `json:"trash"`
	// RemovePool lists pool entries no registered file counts.
	RemovePool []string `json:"remove_pool"`
	// RestorePool is the number of counted contents without a pool
	// entry; Repair links them from a registered copy.
	RestorePool int `json:"restore_pool"`
	// Restore lists the damaged paths: realise.Repair rebuilds or
	// substitutes them.
	Restore []Damage `json:"restore"`

	seq      uint64 // the database's last sequence number when verified
	counters *counterFix
	missing  map[contentKey]string // content → a registered, shareable copy
}

// Empty says whether the plan has nothing to do.
func (p *RepairPlan) Empty() bool {
	return !p.RewriteCounters && len(p.Trash) == 0 && len(p.RemovePool) == 0 && p.RestorePool == 0 && len(p.Restore) == 0
}

// counterFix holds the counters as edges, roots and manifests imply
// them, and the keys present that should not be.
type counterFix struct {
	referrers    map[string]bool
	refcount     map[string]uint64
	content      map[contentKey]contentVal
	stats        Stats
	staleRefs    [][]byte
	staleCounts  []string
	staleZero    []string
	staleContent []contentKey
}

// Clean reports whether no invariant is broken.
func (r *VerifyReport) Clean() bool { return len(r.Errors) == 0 }

func (r *VerifyReport) errf(format string, args ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

// verifyState is what the stages of Verify share.
type verifyState struct {
	s         *Store
	rep       *VerifyReport
	infos     map[string]*PathInfo
	manifests map[string][]treehash.File
	want      *counterFix
}

// Verify checks the store's invariants: every registered path exists
// (with the recorded tree hash, normalised, and matching its content
// address under CheckContents); references point to registered paths;
// referrers, refcounts and the zero list equal what the edges and roots
// imply; content counts equal the manifests; stats are exact; every
// directory in the buckets is registered; the pool holds exactly the
// counted contents. The report's Plan lists the repairs.
func (s *Store) Verify(opts VerifyOptions) (*VerifyReport, error) {
	if opts.Repair {
		if err := s.writable(); err != nil {
			return nil, err
		}
		// The plan rewrites counters: no commit may come between.
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	v := &verifyState{
		s:    s,
		rep:  &VerifyReport{Plan: &RepairPlan{seq: s.db.GetLatestSequenceNumber()}},
		want: &counterFix{referrers: map[string]bool{}, refcount: map[string]uint64{}, content: map[contentKey]contentVal{}},
	}
	for _, stage := range []func(VerifyOptions) error{
		v.loadPaths, v.checkEdges, v.checkRoots, v.checkManifests, v.checkDisk,
		v.checkCounters, v.findGarbage, v.checkPool,
	} {
		if err := stage(opts); err != nil {
			return nil, err
		}
	}
	if opts.Repair {
		done, err := s.repairLocked(v.rep.Plan)
		v.rep.Repaired = append(v.rep.Repaired, done...)
		if err != nil {
			return v.rep, err
		}
	}
	return v.rep, nil
}

func (v *verifyState) loadPaths(VerifyOptions) error {
	v.infos = map[string]*PathInfo{}
	err := v.s.iterate(cfPaths, nil, func(k, val []byte) error {
		pi, err := decodeInfo(string(k), val)
		if err != nil {
			v.rep.errf("%v", err)
			return nil
		}
		v.infos[string(k)] = pi
		return nil
	})
	v.rep.Paths = len(v.infos)
	for h := range v.infos {
		v.want.refcount[h] = 0
	}
	return err
}

// checkEdges reads every path's references and derives the referrer
// edges and counts they imply.
func (v *verifyState) checkEdges(VerifyOptions) error {
	return v.s.iterate(cfRefs, nil, func(k, val []byte) error {
		h := string(k)
		if v.infos[h] == nil {
			v.rep.errf("references recorded for unregistered %s", h)
			return nil
		}
		refs, err := unpackHashes(val)
		if err != nil {
			v.rep.errf("references of %s: %v", h, err)
			return nil
		}
		for _, r := range refs {
			if v.infos[r] == nil {
				v.rep.errf("%s refers to %s, which is not registered", v.s.Logical(v.infos[h].Path), r)
				continue
			}
			if r != h {
				v.want.referrers[r+h] = true
				v.want.refcount[r]++
			}
		}
		return nil
	})
}

func (v *verifyState) checkRoots(VerifyOptions) error {
	err := v.s.iterate(cfRoots, nil, func(k, val []byte) error {
		v.want.stats.Roots++
		p, err := parseBase(string(val))
		if err != nil || v.infos[p.Hash] == nil || v.infos[p.Hash].Path.Name != p.Name {
			v.rep.errf("root %q names %q, which is not a registered path", k, val)
			return nil
		}
		v.want.refcount[p.Hash]++
		return nil
	})
	if err != nil {
		return err
	}
	return v.s.iterate(cfGenerations, nil, func(k, val []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) != i+9 {
			v.rep.errf("malformed generation key %q", k)
			return nil
		}
		g, err := decodeGen(string(k[:i]), beUint64(k[i+1:]), val)
		if err != nil {
			v.rep.errf("%v", err)
			return nil
		}
		if rp, ok, _ := v.s.Root(g.RootName()); !ok || rp != g.Path {
			v.rep.errf("generation %d of %s is not rooted (root %q)", g.Number, g.Profile, g.RootName())
		}
		return nil
	})
}

// checkManifests reads every manifest, checks it against the path's
// record and content address, and derives content counts and stats.
func (v *verifyState) checkManifests(VerifyOptions) error {
	v.manifests = map[string][]treehash.File{}
	for h, pi := range v.infos {
		b, err := v.s.get(cfManifest, []byte(h))
		if err != nil {
			return err
		}
		files, err := decodeManifest(b)
		if b == nil || err != nil || len(files) == 0 {
			v.rep.errf("%s has no readable manifest", v.s.Logical(pi.Path))
			continue
		}
		v.manifests[h] = files
		if treehash.Hash(files) != pi.TreeHash {
			v.rep.errf("%s: manifest does not match the recorded tree hash", v.s.Logical(pi.Path))
		} else if err := v.s.checkContentAddress(pi.Path, pi.ContentAddress, "", files, pi.TreeHash, true); err != nil {
			v.damage(pi.Path, false, "its registration: %v", err)
		}
		var size int64
		for i := range files {
			f := &files[i]
			if f.Type.IsRegular() {
				size += f.Size
				if f.Size > 0 {
					k := keyOf(f)
					c := v.want.content[k]
					c.count++
					c.size = f.Size
					v.want.content[k] = c
				}
			}
		}
		if size != pi.Size || len(files) != pi.Files {
			v.rep.errf("%s: recorded size/files %d/%d, manifest says %d/%d", v.s.Logical(pi.Path), pi.Size, pi.Files, size, len(files))
		}
		v.want.stats.Paths++
		v.want.stats.Files += int64(len(files))
		v.want.stats.Bytes += size
	}
	for _, c := range v.want.content {
		v.want.stats.Contents++
		v.want.stats.ContentBytes += c.size
	}
	return nil
}

// damage records a damaged path: an error, and a restore in the plan.
func (v *verifyState) damage(p storepath.Path, missing bool, format string, args ...any) {
	msg := fmt.Sprintf("%s: %s", v.s.Logical(p), fmt.Sprintf(format, args...))
	v.rep.Errors = append(v.rep.Errors, msg)
	for i := range v.rep.Damaged {
		if v.rep.Damaged[i].Path == p {
			return
		}
	}
	d := Damage{Path: p, StorePath: v.s.Logical(p), Problem: fmt.Sprintf(format, args...), Missing: missing}
	v.rep.Damaged = append(v.rep.Damaged, d)
}

// checkDisk looks at every registered path on disk: present, of the
// registered type, and under CheckContents hashing to its registration
// and content address, normalised.
func (v *verifyState) checkDisk(opts VerifyOptions) error {
	hashes := make([]string, 0, len(v.infos))
	for h := range v.infos {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	results := make([]diskFinding, len(hashes))
	var mu sync.Mutex
	done := 0
	// Small paths dominate: hash them in parallel, one path per worker.
	parallelDo(len(hashes), func(i int) error {
		pi := v.infos[hashes[i]]
		results[i] = v.checkOnDisk(pi, v.manifests[hashes[i]], opts.CheckContents)
		if opts.Progress != nil {
			mu.Lock()
			done++
			opts.Progress(done, len(hashes))
			mu.Unlock()
		}
		return nil
	})
	for i, r := range results {
		if r.msg != "" {
			v.damage(v.infos[hashes[i]].Path, r.missing, "%s", r.msg)
		}
	}
	sort.Slice(v.rep.Damaged, func(i, j int) bool { return v.rep.Damaged[i].StorePath < v.rep.Damaged[j].StorePath })
	v.rep.Plan.Restore = v.rep.Damaged
	return nil
}

// diskFinding is what checkOnDisk found wrong with one path ("" msg:
// nothing).
type diskFinding struct {
	missing bool
	msg     string
}

func (v *verifyState) checkOnDisk(pi *PathInfo, manifest []treehash.File, contents bool) (r diskFinding) {
	phys := v.s.Physical(pi.Path)
	fi, err := os.Lstat(phys)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.missing, r.msg = true, "is registered but missing"
	case err != nil:
		r.msg = fmt.Sprintf("is registered but unreadable: %v", err)
	case contents:
		tree, err := treehash.Scan(phys, treehash.ScanOptions{Workers: 1})
		switch {
		case err != nil:
			r.msg = err.Error()
		case tree.Hash != pi.TreeHash:
			r.msg = fmt.Sprintf("contents hash to %s, registered %s", tree.Hash, pi.TreeHash)
		default:
			if err := v.s.checkContentAddress(pi.Path, pi.ContentAddress, phys, tree.Files, tree.Hash, false); err != nil {
				r.msg = err.Error()
			} else if bad := unnormalised(phys); bad != "" {
				r.msg = fmt.Sprintf("%s (something changed a store path, which stays read-only with mtime 1)", bad)
			}
		}
	default:
		if len(manifest) > 0 && typeOf(fi.Mode()) != manifest[0].Type {
			r.msg = fmt.Sprintf("is a %s on disk, registered as a %s", typeOf(fi.Mode()), manifest[0].Type)
		}
	}
	return r
}

// checkCounters compares the stored counters with the wanted ones.
func (v *verifyState) checkCounters(VerifyOptions) error {
	s, w, rep := v.s, v.want, v.rep
	fix := false
	got := map[string]bool{}
	if err := s.iterate(cfReferrers, nil, func(k, val []byte) error {
		got[string(k)] = true
		if !w.referrers[string(k)] {
			rep.errf("stale referrer edge %s <- %s", k[:min(len(k), storepath.HashLen)], k[min(len(k), storepath.HashLen):])
			w.staleRefs = append(w.staleRefs, bytes.Clone(k))
			fix = true
		}
		return nil
	}); err != nil {
		return err
	}
	for k := range w.referrers {
		if !got[k] {
			rep.errf("missing referrer edge %s <- %s", k[:storepath.HashLen], k[storepath.HashLen:])
			fix = true
		}
	}
	gotCount := map[string]bool{}
	if err := s.iterate(cfRefcount, nil, func(k, val []byte) error {
		h := string(k)
		gotCount[h] = true
		want, ok := w.refcount[h]
		d := decoder{b: val}
		n := d.uvarint()
		if !ok {
			w.staleCounts = append(w.staleCounts, h)
		}
		if !ok || d.err != nil || n != want {
			rep.errf("refcount of %s is %d, edges and roots say %d", h, n, want)
			fix = true
		}
		return nil
	}); err != nil {
		return err
	}
	for h := range w.refcount {
		if !gotCount[h] {
			rep.errf("refcount of %s is missing", h)
			fix = true
		}
	}
	gotZero := map[string]bool{}
	if err := s.iterate(cfZero, nil, func(k, val []byte) error {
		gotZero[string(k)] = true
		if n, ok := w.refcount[string(k)]; !ok || n != 0 {
			rep.errf("%s is listed as unreferenced but has refcount %d", k, n)
			w.staleZero = append(w.staleZero, string(k))
			fix = true
		}
		return nil
	}); err != nil {
		return err
	}
	for h, n := range w.refcount {
		if n == 0 && !gotZero[h] {
			rep.errf("%s has refcount 0 but is not listed as unreferenced", h)
			fix = true
		}
	}
	gotContent := map[contentKey]bool{}
	if err := s.iterate(cfContent, nil, func(k, val []byte) error {
		var ck contentKey
		copy(ck[:], k)
		gotContent[ck] = true
		cv, err := decodeContent(val)
		want := w.content[ck]
		if want.count == 0 {
			w.staleContent = append(w.staleContent, ck)
		}
		if len(k) != len(ck) || err != nil || cv.count != want.count {
			rep.errf("content %s%c has count %d, manifests say %d", ck.Digest().Hex(), ck[32], cv.count, want.count)
			fix = true
		}
		return nil
	}); err != nil {
		return err
	}
	for k, c := range w.content {
		if !gotContent[k] {
			rep.errf("content %s%c (count %d) is not counted", k.Digest().Hex(), k[32], c.count)
			fix = true
		}
	}
	st, err := s.readStats()
	if err != nil {
		return err
	}
	if st != w.stats {
		rep.errf("stats are %+v, recomputed %+v", st, w.stats)
		fix = true
	}
	if fix {
		rep.Plan.RewriteCounters = true
		rep.Plan.counters = w
	}
	return nil
}

// findGarbage lists directories in the buckets that nothing registered.
func (v *verifyState) findGarbage(VerifyOptions) error {
	var mu sync.Mutex
	var garbage []string
	add := func(phys string) {
		mu.Lock()
		garbage = append(garbage, phys)
		mu.Unlock()
	}
	err := SweepBuckets(v.s.dir, runtime.NumCPU(), func(rel, phys string) {
		p, _, err := storepath.ParseRel(rel)
		if err != nil || v.infos[p.Hash] == nil || v.infos[p.Hash].Path.Name != p.Name {
			add(phys)
		}
	}, add)
	if err != nil {
		return err
	}
	sort.Strings(garbage)
	v.rep.Garbage = append(v.rep.Garbage, garbage...)
	v.rep.Plan.Trash = garbage
	return nil
}

// checkPool compares the pool with the counted contents: entries
// nothing counts are garbage; counted contents without an entry are
// restored from a registered copy that may be shared (a private file,
// mode 0400, never is: its content may have no entry).
func (v *verifyState) checkPool(VerifyOptions) error {
	s := v.s
	// The entries a collection listed for the trash's worker are on
	// their way out, not garbage. The lists are read before the pool:
	// an entry the worker releases meanwhile is gone when the pool is.
	releasing, err := s.releasing()
	if err != nil {
		return err
	}
	var orphans []string
	present := map[contentKey]bool{}
	pdirs, err := os.ReadDir(s.contentDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading the content pool: %w", err)
	}
	for _, pd := range pdirs {
		if !pd.IsDir() {
			orphans = append(orphans, filepath.Join(s.contentDir(), pd.Name()))
			continue
		}
		ents, err := os.ReadDir(filepath.Join(s.contentDir(), pd.Name()))
		if err != nil {
			return fmt.Errorf("reading the content pool: %w", err)
		}
		for _, e := range ents {
			k, ok := parsePoolName(e.Name())
			p := filepath.Join(s.contentDir(), pd.Name(), e.Name())
			if !ok || v.want.content[k].count == 0 {
				if !releasing[p] {
					orphans = append(orphans, p)
				}
				continue
			}
			present[k] = true
		}
	}
	v.rep.Garbage = append(v.rep.Garbage, orphans...)
	v.rep.Plan.RemovePool = orphans
	if !s.dedup.Pools() {
		return nil
	}
	need := map[contentKey]bool{}
	for k := range v.want.content {
		if !present[k] {
			need[k] = true
		}
	}
	if len(need) == 0 {
		return nil
	}
	damaged := map[string]bool{}
	for _, d := range v.rep.Damaged {
		damaged[d.Path.Hash] = true
	}
	missing := map[contentKey]string{}
	for h, files := range v.manifests {
		if damaged[h] {
			continue
		}
		for i := range files {
			f := &files[i]
			if !f.Type.IsRegular() || f.Size == 0 || !need[keyOf(f)] {
				continue
			}
			p := filepath.Join(s.Physical(v.infos[h].Path), filepath.FromSlash(f.Path))
			if _, done := missing[keyOf(f)]; !done && poolable(p) {
				missing[keyOf(f)] = p
			}
		}
	}
	if len(missing) > 0 {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("%d contents have no pool entry: new copies of them will not be shared (repair restores them)", len(missing)))
		v.rep.Plan.RestorePool = len(missing)
		v.rep.Plan.missing = missing
	}
	return nil
}

// ErrStoreChanged is returned by Repair when the store was written to
// after the plan was made.
var ErrStoreChanged = errors.New("the store changed since it was verified: verify again")

// Repair executes the store's part of plan, exactly: counters rewritten
// from the values Verify computed, unregistered directories moved to the
// trash, unused pool entries removed, missing ones linked from a
// registered copy. plan.Restore is left to realise.Repair. It refuses a
// plan older than the last write to the store.
func (s *Store) Repair(plan *RepairPlan) ([]string, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repairLocked(plan)
}

func (s *Store) repairLocked(plan *RepairPlan) ([]string, error) {
	if s.db.GetLatestSequenceNumber() != plan.seq {
		return nil, ErrStoreChanged
	}
	var done []string
	if plan.RewriteCounters {
		if err := s.rewriteCounters(plan.counters); err != nil {
			return done, err
		}
		done = append(done, "rewrote counters from edges, roots and manifests")
	}
	for _, g := range plan.Trash {
		if err := s.moveToTrash(g); err != nil {
			return done, err
		}
		done = append(done, "moved "+g+" to the trash")
	}
	for _, o := range plan.RemovePool {
		if err := os.Remove(o); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return done, fmt.Errorf("removing unused pool entry: %w", err)
		}
	}
	if len(plan.RemovePool) > 0 {
		done = append(done, fmt.Sprintf("removed %d unused pool entries", len(plan.RemovePool)))
	}
	if len(plan.missing) > 0 {
		pools := &poolDirs{}
		n := 0
		for k, p := range plan.missing {
			if s.toPool(k, p, pools) == nil {
				n++
			}
		}
		if err := pools.sync(); err != nil {
			return done, err
		}
		done = append(done, fmt.Sprintf("restored %d pool entries", n))
	}
	return done, nil
}

// rewriteCounters writes the counters w in one batch.
func (s *Store) rewriteCounters(w *counterFix) error {
	t := s.newTxn()
	defer t.destroy()
	for _, k := range w.staleRefs {
		t.del(cfReferrers, k)
	}
	for k := range w.referrers {
		t.put(cfReferrers, []byte(k), nil)
	}
	for _, h := range w.staleCounts {
		t.del(cfRefcount, []byte(h))
	}
	for _, h := range w.staleZero {
		t.del(cfZero, []byte(h))
	}
	for h, n := range w.refcount {
		t.refcount[h] = refcountVal{n: n, exists: true, dirty: true}
	}
	for _, k := range w.staleContent {
		t.del(cfContent, k[:])
	}
	for k, c := range w.content {
		t.put(cfContent, k[:], encodeContent(c))
	}
	st := w.stats
	t.stats = &st
	return t.commit()
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
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
// or 0555 (the tree hash already covers which), a single-file path 0400
// when private, and then on an inode of its own; nothing writable,
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
		if p == root {
			rel = filepath.Base(root)
		}
		mode := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if mode != modeDir {
				bad = fmt.Sprintf("directory %s has mode %04o", rel, mode)
			}
		case unix.S_IFREG:
			switch {
			case mode == modePrivate && p != root:
				bad = fmt.Sprintf("file %s is private (mode 0400) inside a tree; only a single-file path is made private", rel)
			case mode == modePrivate && st.Nlink > 1:
				// A shared inode has one mode: a public copy of the
				// same bytes would be private too, or the secret public.
				bad = fmt.Sprintf("private file %s shares its inode with %d other links", rel, st.Nlink-1)
			case mode != modeFile && mode != modeExec && mode != modePrivate:
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
