package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/contentaddr"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Recovery of lost metadata (`nexis store recover`), for a store Open
// refuses with ErrMetadataLost. It never deletes anything:
//
//  1. An unusable database directory is renamed aside, to
//     .nexis/db.lost-<time>, and kept.
//  2. When only its CURRENT file was lost, a copy of it with CURRENT
//     rewritten (naming the newest MANIFEST) is the database again: every
//     registration, root and generation comes back as it was.
//  3. Otherwise a new database is made and filled from the disk: every
//     directory in the buckets that is as ingestion leaves it (read-only,
//     mtime 1) is hashed and registered; its references are the other
//     present paths its files and links mention, as Nix finds references
//     by scanning for hash parts; a path whose name its content derives
//     (a source, a fetch) gets its content address back, which its bytes
//     were just checked against. Generations are re-rooted from the
//     state directory's profile links, and every path nothing refers to
//     is kept by a root "recovered/<hash>-<name>", since the lost database
//     may have rooted it: no collection takes anything until someone
//     looks (`nexis store remove-root --prefix recovered/`).
//
// What it cannot explain (a name that is no store path, a changed or
// unreadable tree, a mention of a path that is not there, a generation
// whose path is gone) is reported and left where it is.

// RecoverOptions tune Recover.
type RecoverOptions struct {
	// LogicalDir is the store directory written into paths (default
	// storepath.DefaultDir).
	LogicalDir string
	// Generations are those the state directory's profile links name;
	// the ones whose paths are present are recorded and rooted again.
	Generations []Generation
	// Progress, when set, is told how many paths were scanned.
	Progress func(done, total int)
}

// RecoverReport says what Recover did.
type RecoverReport struct {
	// Intact: the metadata could be used as it was; nothing was done.
	Intact bool `json:"intact"`
	// KeptDatabase is where the unusable database went ("" if none).
	KeptDatabase string `json:"kept_database,omitempty"`
	// Salvaged: that database itself was restored.
	Salvaged bool `json:"salvaged"`
	// Registered paths found on disk, ContentAddressed of them with
	// their content address checked and recorded.
	Registered       int `json:"registered"`
	ContentAddressed int `json:"content_addressed"`
	// Generations re-rooted from the profile links.
	Generations []uint64 `json:"generations"`
	// RecoveredRoots is the number of "recovered/" roots added.
	RecoveredRoots int `json:"recovered_roots"`
	// Unexplained is what was left as it was, and why.
	Unexplained []Unexplained `json:"unexplained"`
}

// Unexplained is one thing Recover could not account for.
type Unexplained struct {
	Path string `json:"path"`
	Why  string `json:"why"`
}

// RecoveredRootPrefix starts the names of the roots Recover adds.
const RecoveredRootPrefix = "recovered/"

// Recover rebuilds the metadata of the store at physicalDir (see
// above). A store whose metadata can be used is left alone (Intact).
func Recover(physicalDir string, opts RecoverOptions) (*RecoverReport, error) {
	dir, err := filepath.Abs(physicalDir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, logical: opts.LogicalDir}
	if s.logical == "" {
		s.logical = storepath.DefaultDir
	}
	s.logical = filepath.Clean(s.logical)
	state, derr := diagnose(dir)
	switch {
	case derr != nil && !errors.Is(derr, ErrMetadataLost):
		return nil, derr
	case derr == nil && state == stateFresh:
		return &RecoverReport{Intact: true}, nil
	}
	if err := os.MkdirAll(s.metaDir(), 0o755); err != nil {
		return nil, err
	}
	if err := s.acquireLock(nil); err != nil {
		return nil, err
	}
	defer s.releaseLock()
	if derr == nil {
		var err error
		if state == stateUnrecorded {
			err = checkUnrecorded(dir)
		} else if err = s.openDB(false); err == nil {
			s.closeDB()
		}
		if err == nil {
			return &RecoverReport{Intact: true}, nil
		}
		if !errors.Is(err, ErrMetadataLost) {
			return nil, err
		}
	}
	recorded, err := recordedIdentity(dir)
	if err != nil {
		return nil, err
	}
	rep := &RecoverReport{Generations: []uint64{}, Unexplained: []Unexplained{}}
	if nonEmptyDir(s.dbDir()) {
		rep.KeptDatabase = s.dbDir() + ".lost-" + time.Now().UTC().Format("20060102T150405")
		for i := 2; ; i++ {
			if _, err := os.Lstat(rep.KeptDatabase); errors.Is(err, fs.ErrNotExist) {
				break
			}
			rep.KeptDatabase = fmt.Sprintf("%s.lost-%s-%d", s.dbDir(), time.Now().UTC().Format("20060102T150405"), i)
		}
		if err := os.Rename(s.dbDir(), rep.KeptDatabase); err != nil {
			return nil, fmt.Errorf("keeping the unusable database: %w", err)
		}
		if err := fsyncPath(s.metaDir()); err != nil {
			return nil, err
		}
		rep.Salvaged = s.salvage(rep.KeptDatabase, recorded)
	}
	if !rep.Salvaged {
		// The recorded identity names the lost database, which stays
		// in the kept directory; the new one is recorded instead.
		if err := os.Remove(idFile(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err := os.RemoveAll(s.dbDir()); err != nil {
			return nil, err
		}
		if err := s.openDB(true); err != nil {
			return nil, err
		}
	}
	defer s.closeDB()
	if err := s.recordIdentity(); err != nil {
		return rep, err
	}
	for _, d := range []string{s.tmpDir(), s.contentDir(), s.TrashDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s.dedup = s.probeDedup()
	if !rep.Salvaged {
		if err := s.registerFromDisk(rep, opts.Progress); err != nil {
			return rep, err
		}
	}
	if err := s.rerootGenerations(opts.Generations, rep); err != nil {
		return rep, err
	}
	if !rep.Salvaged {
		if err := s.rootUnreferenced(rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// closeDB closes what openDB opened, flushing the memtables (Recover
// holds the lock; Close would release it).
func (s *Store) closeDB() {
	if s.db == nil || s.closed {
		return
	}
	s.flushAll()
	s.closeAfterFailedOpen()
}

// salvage makes .nexis/db a copy of the kept database with what
// RocksDB needs to find it again restored: CURRENT naming its newest
// manifest, IDENTITY as the store recorded it. It reports whether that
// opens as this store's database; the kept one is not touched.
func (s *Store) salvage(kept, recorded string) bool {
	_, cerr := os.Stat(filepath.Join(kept, "CURRENT"))
	ident, _ := dbIdentity(kept)
	if cerr == nil && ident != "" {
		return false // both there: the damage is elsewhere
	}
	if ident != "" && recorded != "" && ident != recorded {
		return false // another store's
	}
	ents, err := os.ReadDir(kept)
	if err != nil {
		return false
	}
	newest, num := "", -1
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "MANIFEST-"); ok {
			if v, err := strconv.Atoi(n); err == nil && v > num {
				newest, num = e.Name(), v
			}
		}
	}
	if newest == "" {
		return false
	}
	tmp := s.dbDir() + ".salvage"
	if err := os.RemoveAll(tmp); err != nil {
		return false
	}
	err = copyDir(kept, tmp)
	if err == nil && cerr != nil {
		err = os.WriteFile(filepath.Join(tmp, "CURRENT"), []byte(newest+"\n"), 0o644)
	}
	if err == nil && ident == "" && recorded != "" {
		err = os.WriteFile(filepath.Join(tmp, "IDENTITY"), []byte(recorded+"\n"), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, s.dbDir())
	}
	if err != nil {
		os.RemoveAll(tmp)
		return false
	}
	if recorded == "" {
		// No identity to compare with: a database an older nexis made
		// must at least know the paths the buckets hold.
		err = checkUnrecorded(s.dir)
	}
	if err == nil {
		err = s.openDB(false)
	}
	if err != nil {
		// Our own copy, not the kept original: it may go.
		os.RemoveAll(s.dbDir())
		return false
	}
	return true
}

// copyDir copies the regular files of src (a RocksDB directory: flat)
// into a new directory dst, synced.
func copyDir(src, dst string) error {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, err = io.Copy(out, in)
			if err == nil {
				err = out.Sync()
			}
			out.Close()
		}
		in.Close()
		if err != nil {
			return err
		}
	}
	return fsyncPath(dst)
}

// found is one path of the buckets as Recover reads it.
type found struct {
	p        storepath.Path
	phys     string
	tree     *treehash.Tree
	mentions map[string]struct{}
	why      string // not registrable: why
}

// registerFromDisk registers every registrable path of the buckets in
// one batch.
func (s *Store) registerFromDisk(rep *RecoverReport, progress func(done, total int)) error {
	var paths []*found
	var strays []Unexplained
	var mu sync.Mutex
	unexplained := func(p, why string) { rep.Unexplained = append(rep.Unexplained, Unexplained{Path: p, Why: why}) }
	stray := func(p, why string) {
		mu.Lock()
		strays = append(strays, Unexplained{Path: p, Why: why})
		mu.Unlock()
	}
	err := SweepBuckets(s.dir, runtime.NumCPU(), func(rel, phys string) {
		p, _, err := storepath.ParseRel(rel)
		if err != nil {
			stray(phys, "not a store path: "+err.Error())
			return
		}
		mu.Lock()
		paths = append(paths, &found{p: p, phys: phys})
		mu.Unlock()
	}, func(phys string) { stray(phys, "not a bucket of the store") })
	if err != nil {
		return err
	}
	// In the order of the buckets, as a walk of them would give.
	sort.Slice(paths, func(i, j int) bool { return paths[i].phys < paths[j].phys })
	sort.Slice(strays, func(i, j int) bool { return strays[i].Path < strays[j].Path })
	rep.Unexplained = append(rep.Unexplained, strays...)
	// Only paths as ingestion leaves them are candidates; the others
	// changed after they were stored and cannot be vouched for.
	done := 0
	parallelDo(len(paths), func(i int) error {
		f := paths[i]
		if bad := unnormalised(f.phys); bad != "" {
			f.why = bad + ": it changed after it was stored"
		} else if tree, mentions, err := scanMentions(f.phys); err != nil {
			f.why = err.Error()
		} else {
			f.tree, f.mentions = tree, mentions
		}
		if progress != nil {
			mu.Lock()
			done++
			progress(done, len(paths))
			mu.Unlock()
		}
		return nil
	})
	present := map[string]storepath.Path{}
	for _, f := range paths {
		if f.why == "" {
			present[f.p.Hash] = f.p
		}
	}
	var regs []Registration
	for _, f := range paths {
		if f.why != "" {
			unexplained(s.Logical(f.p), f.why+"; not registered")
			continue
		}
		var refs []storepath.Path
		var missing []string
		for h := range f.mentions {
			if p, ok := present[h]; ok {
				refs = append(refs, p)
			} else {
				missing = append(missing, h)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			unexplained(s.Logical(f.p), fmt.Sprintf("registered, but it mentions %s, which %s not in the store: its closure may be incomplete", strings.Join(missing, ", "), map[bool]string{true: "is", false: "are"}[len(missing) == 1]))
		}
		ca := s.recoverContentAddress(f)
		if ca != "" {
			rep.ContentAddressed++
		}
		regs = append(regs, Registration{Path: f.p, TreeHash: f.tree.Hash, Files: f.tree.Files, References: refs, ContentAddress: ca})
	}
	if len(regs) == 0 {
		return nil
	}
	if _, err := s.Register(regs); err != nil {
		return fmt.Errorf("registering the recovered paths: %w", err)
	}
	rep.Registered = len(regs)
	return nil
}

// scanMentions hashes the tree at root and collects every store path
// hash its files and symlink targets mention.
func scanMentions(root string) (*treehash.Tree, map[string]struct{}, error) {
	files, err := treehash.List(root)
	if err != nil {
		return nil, nil, err
	}
	mentions := map[string]struct{}{}
	t := &treehash.Tree{Files: files}
	for i := range files {
		f := &files[i]
		switch {
		case f.Type == treehash.Symlink:
			storepath.ScanHashes([]byte(f.Target), func(h string) { mentions[h] = struct{}{} })
		case f.Type.IsRegular():
			p := filepath.Join(root, filepath.FromSlash(f.Path))
			fd, err := treehash.OpenRegular(p)
			if err != nil {
				return nil, nil, err
			}
			d, n, err := treehash.HashFDMentions(fd, p, mentions)
			unix.Close(fd)
			if err != nil {
				return nil, nil, err
			}
			if n != f.Size {
				return nil, nil, fmt.Errorf("%s changed while it was read", p)
			}
			f.Digest = d
			t.Size += n
		}
	}
	t.Hash = treehash.Hash(files)
	return t, mentions, nil
}

// recoverContentAddress finds the content address whose path is f's
// name, among those its contents could have: a source's tree hash, a
// checkout's, a downloaded file's blake3 or sha256. The address of an
// unpacked archive names bytes the store does not have: such a path
// comes back without one, like a built path.
func (s *Store) recoverContentAddress(f *found) string {
	tree := f.tree.Hash.Hex()
	cands := []contentaddr.CA{
		{Method: contentaddr.Source, Algo: "blake3", Hash: tree},
		{Method: contentaddr.Tree, Algo: "blake3", Hash: tree},
	}
	if files := f.tree.Files; len(files) == 1 && files[0].Type == treehash.Regular {
		cands = append(cands, contentaddr.CA{Method: contentaddr.Flat, Algo: "blake3", Hash: files[0].Digest.Hex()})
		if sum, err := sha256Of(f.phys); err == nil {
			cands = append(cands, contentaddr.CA{Method: contentaddr.Flat, Algo: "sha256", Hash: sum})
		}
	}
	for _, c := range cands {
		if p, err := c.Path(s.logical, f.p.Name); err == nil && p == f.p {
			return c.String()
		}
	}
	return ""
}

func sha256Of(p string) (string, error) {
	fd, err := treehash.OpenRegular(p)
	if err != nil {
		return "", err
	}
	file := os.NewFile(uintptr(fd), p)
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rerootGenerations records the generations the profile links name whose
// paths are registered and which the database does not have.
func (s *Store) rerootGenerations(gens []Generation, rep *RecoverReport) error {
	gens = slices.Clone(gens)
	sort.Slice(gens, func(i, j int) bool { return gens[i].Number < gens[j].Number })
	for _, g := range gens {
		if _, ok, err := s.GetGeneration(g.Profile, g.Number); err != nil {
			return err
		} else if ok {
			continue
		}
		if ok, err := s.IsValid(g.Path); err != nil {
			return err
		} else if !ok {
			rep.Unexplained = append(rep.Unexplained, Unexplained{Path: s.Logical(g.Path),
				Why: fmt.Sprintf("generation %d of %s names it, but it is not in the store: that generation is not recorded", g.Number, g.Profile)})
			continue
		}
		if err := s.PutGeneration(g); err != nil {
			return err
		}
		rep.Generations = append(rep.Generations, g.Number)
	}
	return nil
}

// rootUnreferenced roots every path nothing refers to (refcount 0) as
// "recovered/<hash>-<name>", in one batch.
func (s *Store) rootUnreferenced(rep *RecoverReport) error {
	var zero []string
	if err := s.ZeroHashes(func(h string) error { zero = append(zero, h); return nil }); err != nil {
		return err
	}
	if len(zero) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTxn()
	defer t.destroy()
	for _, h := range zero {
		p, ok, err := s.PathByHash(h)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := s.addRootTxn(t, RecoveredRootPrefix+p.Base(), p); err != nil {
			return err
		}
		rep.RecoveredRoots++
	}
	return t.commit()
}

// RemoveRootsWithPrefix drops every root whose name starts with prefix
// (not empty), in one batch, and returns how many it dropped.
func (s *Store) RemoveRootsWithPrefix(prefix string) (int, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	if prefix == "" {
		return 0, errors.New("an empty prefix would name every root")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	if err := s.iterate(cfRoots, []byte(prefix), func(k, v []byte) error {
		names = append(names, string(k))
		return nil
	}); err != nil {
		return 0, err
	}
	t := s.newTxn()
	defer t.destroy()
	for _, n := range names {
		if err := s.removeRootTxn(t, n); err != nil {
			return 0, err
		}
	}
	return len(names), t.commit()
}
