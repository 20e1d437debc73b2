// Package store is the NexisOS store: a bucketed directory of immutable,
// content-hashed trees, deduplicated by file content as they arrive, with
// all metadata in RocksDB.
//
// # On disk
//
//	<store>/<h0h1>/<h2h3>/<hash>-<name>   registered paths (see storepath)
//	<store>/.nexis/db/                   RocksDB
//	<store>/.nexis/store-id              the database's identity (its IDENTITY): a database
//	                                     that is not the store's own is refused (metadata.go)
//	<store>/.nexis/db.lost-<time>/       an unusable database `store recover` kept aside
//	<store>/.nexis/lock                  flock of the one writer; holds "pid command"
//	<store>/.nexis/tmp/                  trees being ingested; emptied on every writable Open
//	<store>/.nexis/content/<hh>/<hex><t> content pool: one inode (hard link mode) or one
//	                                     clone (reflink mode) per distinct file content,
//	                                     <hex> its BLAKE3, <t> 'f' or 'x' (the exec bit:
//	                                     a shared inode has one mode)
//	<store>/.trash/                      paths and pool entries on their way out
//
// A path is valid exactly when it is in the "paths" column family. Ingest
// writes the tree under tmp, fsyncs it, renames it into its bucket, fsyncs
// the bucket, and only then commits one RocksDB write batch with the WAL
// synced. A crash before the commit leaves at worst an unregistered
// directory in a bucket, or a pool entry nobody counts: garbage that
// `verify` reports and `verify --repair` moves to the trash. It never leaves
// a registered path incomplete.
//
// # Dedup and the content pool
//
// Every regular file is hashed with BLAKE3 as it is copied in. With hard
// links, identical files (same BLAKE3, same exec bit) are one inode with
// the normalised mode (0444 or 0555) and mtime 1, so all links agree; with
// reflinks they are separate inodes sharing extents. The pool holds one
// entry per content so that later ingests find it without a scan. A
// content enters the pool only once its data is durable, so a crash never
// leaves a pool entry that a later ingest would link as that content.
// When the content count of a content reaches zero (CollectBatch records
// it), its pool entry may be deleted (FinishCollect re-checks). Empty
// files are neither pooled nor counted.
//
// # Key layout
//
// Hashes in keys are the 32-character base32 hash parts of store paths;
// names are looked up in "paths". Counts are uvarints.
//
//	default     "schema"                     uvarint schema version (a newer one refuses to open)
//	default     "stats"                      Stats: counts and sizes, kept exact by every batch
//	default     "genmax/" profile            uvarint highest generation number ever recorded,
//	                                         so a deleted generation's number is never reused
//	paths       hash                         PathInfo (name, tree hash, size, files, time, deriver, CA)
//	refs        hash                         forward references: packed sorted hashes (self included)
//	referrers   hash(target) hash(referrer)  empty; one key per edge, self-references excluded
//	refcount    hash                         referrers + roots naming the path
//	zero        hash                         empty; present exactly when refcount is 0 (GC's work list)
//	manifest    hash                         the path's files: relative path, type, size, BLAKE3 or target
//	content     blake3(32 bytes) type(1)     uvarint count of manifest entries with that content
//	                                         (non-empty regular files only), uvarint size
//	roots       root name                    "<hash>-<name>" of the rooted path
//	generations profile 0x00 uint64be(n)     Generation; every generation is also the root
//	                                         "generation/<profile>/<n>"
//
// Every lookup of a path, its references, its count or a content is a
// point query (bloom filters on all families; "referrers" is a 32-byte
// prefix seek with a prefix bloom). Only verify, optimise and listing
// commands iterate.
//
// # Counting rules
//
// refcount(p) = |referrers(p) \ {p}| + |roots naming p|; it is 0 exactly
// when "zero" holds p. content(c) = number of (path, file) pairs over all
// registered manifests whose content key is c. CollectBatch (for the
// garbage collector) removes paths and decrements both in the same batch,
// recording what reached zero.
package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linxGnu/grocksdb"
	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/storepath"
)

// SchemaVersion is the layout this code reads and writes.
//
//  1. the first layout.
//  2. path-info records of impure paths are version 2 (PathInfo.Impure);
//     an older nexis, which would fail on such a record (or, worse,
//     skip the refusal to share it), refuses the whole store instead.
const SchemaVersion = 2

// migrations[v] turns a store of schema v into one of schema v+1, in
// the batch that records the new version: a crash leaves the old schema
// or the new one, never a mix.
var migrations = map[uint64]func(s *Store, b *grocksdb.WriteBatch) error{
	// Version 1 records are valid version 2 records: nothing to rewrite.
	1: func(*Store, *grocksdb.WriteBatch) error { return nil },
}

// DedupMode selects how identical file contents are shared.
type DedupMode int

const (
	// DedupAuto picks reflink where the store's filesystem supports it,
	// else hard links, else copies.
	DedupAuto DedupMode = iota
	// DedupReflink clones extents (FICLONE): separate inodes, shared data.
	DedupReflink
	// DedupHardlink links every copy of a content to one inode.
	DedupHardlink
	// DedupCopy gives every path private copies: what Auto falls back to
	// on a filesystem without hard links.
	DedupCopy
	// DedupNone also stores private copies, chosen explicitly; `optimise`
	// can dedupe such paths later. Neither Copy nor None touches the pool;
	// content counts are kept in every mode.
	DedupNone
)

func (m DedupMode) String() string {
	switch m {
	case DedupAuto:
		return "auto"
	case DedupReflink:
		return "reflink"
	case DedupHardlink:
		return "hardlink"
	case DedupCopy:
		return "copy"
	case DedupNone:
		return "none"
	}
	return "dedup(" + strconv.Itoa(int(m)) + ")"
}

// Pools reports whether the mode shares contents through the content
// pool: hard links or reflinks. Copy and None keep private copies.
func (m DedupMode) Pools() bool { return m == DedupHardlink || m == DedupReflink }

// ParseDedupMode parses the names String gives.
func ParseDedupMode(s string) (DedupMode, error) {
	for m := DedupAuto; m <= DedupNone; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown dedup mode %q: want auto, reflink, hardlink, copy or none", s)
}

// Options configure Open.
type Options struct {
	// LogicalDir is the store directory written into paths (default
	// storepath.DefaultDir).
	LogicalDir string
	// ReadOnly opens without the writer lock; queries only.
	ReadOnly bool
	// Dedup selects how identical contents are shared.
	Dedup DedupMode
	// OnWait is called once when another process holds the writer lock,
	// with that process's "pid command". Nil prints to stderr.
	OnWait func(holder string)
	// OnDamage is told about damage found on the way (a content pool
	// entry whose bytes changed), which the store worked around. Nil
	// prints to stderr.
	OnDamage func(msg string)
}

// ErrNotInitialised is returned by a read-only Open of a store that was
// never written.
var ErrNotInitialised = errors.New("no store database (nothing was ever added)")

// ErrReadOnly is returned by writes on a store opened read-only.
var ErrReadOnly = errors.New("store is open read-only")

// Store is an open store. Its methods are safe for concurrent use; writes
// are serialised inside the process and, through the lock file, across
// processes.
type Store struct {
	dir     string // physical
	logical string
	ro      bool
	dedup   DedupMode // resolved: never DedupAuto

	lock *os.File

	db   *grocksdb.DB
	cfs  map[string]*grocksdb.ColumnFamilyHandle
	opts []*grocksdb.Options
	ro_  *grocksdb.ReadOptions
	wo   *grocksdb.WriteOptions

	// mu serialises commits: counters are read-modify-write.
	mu     sync.Mutex
	closed bool

	hot hotCache // writable stores only

	onDamage func(string)
}

// Column family names.
const (
	cfDefault     = "default"
	cfPaths       = "paths"
	cfRefs        = "refs"
	cfReferrers   = "referrers"
	cfRefcount    = "refcount"
	cfZero        = "zero"
	cfManifest    = "manifest"
	cfContent     = "content"
	cfRoots       = "roots"
	cfGenerations = "generations"
)

var cfNames = []string{cfDefault, cfPaths, cfRefs, cfReferrers, cfRefcount, cfZero, cfManifest, cfContent, cfRoots, cfGenerations}

var (
	keySchema = []byte("schema")
	keyStats  = []byte("stats")
)

// Dir is the physical store directory.
func (s *Store) Dir() string { return s.dir }

// LogicalDir is the store directory written into paths.
func (s *Store) LogicalDir() string { return s.logical }

// Dedup is the dedup mode in effect (Auto resolved).
func (s *Store) Dedup() DedupMode { return s.dedup }

// Physical is where p lives on this machine.
func (s *Store) Physical(p storepath.Path) string {
	return filepath.Join(s.dir, filepath.FromSlash(p.Rel()))
}

// Logical is p's full path as written into files.
func (s *Store) Logical(p storepath.Path) string { return p.In(s.logical) }

func (s *Store) metaDir() string    { return filepath.Join(s.dir, ".nexis") }
func (s *Store) dbDir() string      { return filepath.Join(s.dir, ".nexis", "db") }
func (s *Store) tmpDir() string     { return filepath.Join(s.dir, ".nexis", "tmp") }
func (s *Store) contentDir() string { return filepath.Join(s.dir, ".nexis", "content") }

// TrashDir is where collected paths wait for deletion.
func (s *Store) TrashDir() string { return filepath.Join(s.dir, ".trash") }

// Open opens (creating it when writable) the store at physicalDir.
func Open(physicalDir string, opts Options) (*Store, error) {
	dir, err := filepath.Abs(physicalDir)
	if err != nil {
		return nil, fmt.Errorf("store directory %s: %w", physicalDir, err)
	}
	s := &Store{dir: dir, logical: opts.LogicalDir, ro: opts.ReadOnly, dedup: opts.Dedup, onDamage: opts.OnDamage}
	if s.logical == "" {
		s.logical = storepath.DefaultDir
	}
	s.logical = filepath.Clean(s.logical)
	if !filepath.IsAbs(s.logical) {
		return nil, fmt.Errorf("logical store directory %q is not absolute", s.logical)
	}
	// Look before creating anything: a directory that is not a store,
	// or a store whose metadata is lost, is refused unchanged.
	state, err := diagnose(dir)
	if err != nil {
		return nil, err
	}
	if s.ro {
		if state == stateUnrecorded {
			if err := checkUnrecorded(dir); err != nil {
				return nil, err
			}
		}
		if state == stateFresh {
			return nil, fmt.Errorf("store %s: %w", dir, ErrNotInitialised)
		}
		if err := s.openDB(false); err != nil {
			return nil, err
		}
		s.dedup = s.resolveDedupReadOnly()
		return s, nil
	}
	for _, d := range []string{dir, s.metaDir(), s.tmpDir(), s.contentDir(), s.TrashDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating store directory: %w", err)
		}
	}
	if err := s.acquireLock(opts.OnWait); err != nil {
		return nil, err
	}
	// Another writer may have made the store while we waited.
	if state, err = diagnose(dir); err != nil {
		s.releaseLock()
		return nil, err
	}
	if state == stateUnrecorded {
		if err := checkUnrecorded(dir); err != nil {
			s.releaseLock()
			return nil, err
		}
	}
	spreadSubdirs(s.tmpDir())
	if err := s.recoverTmp(); err != nil {
		s.releaseLock()
		return nil, err
	}
	if err := s.openDB(state == stateFresh); err != nil {
		s.releaseLock()
		return nil, err
	}
	if state != stateDB {
		// Made just now, or adopted: from here on the store knows its
		// database.
		if err := s.recordIdentity(); err != nil {
			s.Close()
			return nil, err
		}
	}
	// Writers that never reached Close (killed, crashed, out of power)
	// leave their WAL files behind; the first open after them flushes.
	if s.walNeedsFlush() {
		if err := s.flushAll(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.dedup == DedupAuto {
		s.dedup = s.probeDedup()
	}
	return s, nil
}

// Close flushes and closes the database and releases the writer lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if !s.ro && s.walNeedsFlush() {
		// Opens keep what they recover from the WAL in memtables (see
		// openDB), so WAL files pile up, one per writable open, until a
		// memtable fills. Flushing here bounds what every later open,
		// reader or writer, replays.
		err = s.flushAll()
	}
	for _, h := range s.cfs {
		h.Destroy()
	}
	s.db.Close()
	for _, o := range s.opts {
		o.Destroy()
	}
	s.ro_.Destroy()
	s.wo.Destroy()
	s.releaseLock()
	return err
}

// A writable Close (or open) flushes the memtables once the live WAL
// files hold more than flushOnCloseBytes or are more than
// flushOnCloseFiles. Below that, replaying them costs an open less than
// the flush would: a flush writes and syncs one table file per family
// with data, and the manifest.
const (
	flushOnCloseBytes = 4 << 20
	flushOnCloseFiles = 8
)

// flushAll flushes every family's memtable (DB.Flush flushes only the
// default family).
func (s *Store) flushAll() error {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	for _, h := range s.cfs {
		if err := s.db.FlushCF(h, fo); err != nil {
			return fmt.Errorf("flushing store database: %w", err)
		}
	}
	return nil
}

// Settle flushes every family and waits until no compaction is pending
// or running: the database as a writer that stays open long enough
// leaves it. A short-lived command closes before the compactions its
// flushes started are done (Close cancels them), and the next one that
// opens the store starts them again; a benchmark settles the store it
// prepared, so that what it times does not pay for the preparation.
func (s *Store) Settle() error {
	if err := s.writable(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flushAll(); err != nil {
		return err
	}
	for {
		busy := s.db.GetProperty("rocksdb.num-running-compactions") != "0"
		for _, h := range s.cfs {
			busy = busy || s.db.GetPropertyCF("rocksdb.compaction-pending", h) != "0"
		}
		if !busy {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// walNeedsFlush says whether the live WAL files are past the limits.
// (The memtable size properties count arena blocks, about 1 MB per
// touched family, whatever their content.)
func (s *Store) walNeedsFlush() bool {
	ents, err := os.ReadDir(s.dbDir())
	if err != nil {
		return true
	}
	var n int64
	files := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			files++
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n > flushOnCloseBytes || files > flushOnCloseFiles
}

func cfOptions(name string, cache *grocksdb.Cache, readOnly bool) *grocksdb.Options {
	o := grocksdb.NewDefaultOptions()
	bb := grocksdb.NewDefaultBlockBasedTableOptions()
	bb.SetFilterPolicy(grocksdb.NewBloomFilterFull(10))
	bb.SetBlockCache(cache)
	bb.SetCacheIndexAndFilterBlocks(true)
	bb.SetPinL0FilterAndIndexBlocksInCache(true)
	if name == cfReferrers {
		o.SetPrefixExtractor(grocksdb.NewFixedPrefixTransform(storepath.HashLen))
	}
	if name == cfZero {
		// The zero list is a work queue: nearly every path enters it
		// when it is registered and leaves when its referrer is, and
		// the collector reads it from the start. A flush keeps each
		// departure as a tombstone until a compaction meets the entry
		// it deletes, and the iterator steps over every one: 40,000
		// of them cost a collection 15 ms at 300,000 paths. Compacted
		// after every flush, the family holds little more than the
		// garbage, and its compaction rewrites only that.
		o.SetLevel0FileNumCompactionTrigger(1)
	}
	if !readOnly && (name == cfPaths || name == cfContent) {
		// Registration asks about many keys that do not exist yet (a new
		// path, a new content): a memtable bloom answers without a
		// skiplist search. Only these two families get one: each bloom
		// is allocated and zeroed whenever a memtable is created, on
		// every writable open too, and page faults are dear (ten blooms
		// cost a one-file `nexis switch` 80 ms; two cost 10). A full
		// memtable holds about 25,000 entries per 4 MB, so 1% of it is
		// 13 bits per key.
		o.SetMemtableWholeKeyFiltering(true)
		o.SetMemTablePrefixBloomSizeRatio(0.01)
	}
	o.SetBlockBasedTableFactory(bb)
	// Small memtables: a registration's cost is mostly skiplist inserts
	// (about 13 per path), and each is a search through the memtable,
	// with a cache miss per step. 100,000 registrations run 20% faster
	// with 4 MB than with 16 MB; the flushes that come more often run
	// in the background, on another core.
	o.SetWriteBufferSize(4 << 20)
	if readOnly {
		// A reader's memtables only hold a replayed WAL tail; their
		// arenas are zeroed on open, so small ones open faster.
		o.SetWriteBufferSize(1 << 20)
	}
	o.SetCompression(grocksdb.LZ4Compression)
	return o
}

// openDB opens the database, creating it only when create (a fresh
// store: diagnose found nothing). A database opened without create may
// still lack column families a newer layout added; those are created.
func (s *Store) openDB(create bool) error {
	// One shard: RocksDB splits a cache of this size into 64 shards of
	// 512 KB, and a block larger than its shard is dropped as soon as
	// the read that loaded it is done. A table file's filter block is
	// 10 bits per key: the content family's at 300,000 paths is 900 KB,
	// so every lookup there read and checksummed it again (2.4 GB for
	// the 2,400 contents of a collection of 1,000 paths: 0.3 s). Its
	// index block grows the same way. The store is read by one thread
	// at a time, a few at most: one lock is not contended.
	co := grocksdb.NewLRUCacheOptions()
	co.SetCapacity(32 << 20)
	co.SetNumShardBits(0)
	cache := grocksdb.NewLRUCacheWithOptions(co)
	co.Destroy()
	dbo := grocksdb.NewDefaultOptions()
	dbo.SetCreateIfMissing(create && !s.ro)
	dbo.SetCreateIfMissingColumnFamilies(!s.ro)
	dbo.SetSkipStatsUpdateOnDBOpen(true)
	// The default of 16 threads per column family to open table files
	// costs 160 thread starts on every open: most of a one-shot query.
	dbo.SetMaxFileOpeningThreads(1)
	if s.ro {
		// With the default (-1) every table file is opened at open and its
		// index and filter blocks read: 100 ms for a store of 100,000
		// paths. A one-shot query needs only the files whose key ranges
		// hold its keys, so readers keep a small table cache and open
		// files on demand (10 ms).
		dbo.SetMaxOpenFiles(16)
	}
	dbo.SetMaxBackgroundJobs(2)
	setWarnInfoLog(dbo, filepath.Join(s.dbDir(), "LOG"))
	// For RocksDB's own logger: it still trims the LOG.old files earlier
	// nexis versions left, and it is the one that logs should
	// setWarnInfoLog not apply.
	dbo.SetInfoLogLevel(grocksdb.WarnInfoLogLevel)
	dbo.SetKeepLogFileNum(3)
	dbo.SetMaxLogFileSize(1 << 20)
	// Point-in-time recovery stops at the first corrupt WAL record: a torn
	// tail from a crash is dropped, committed batches are kept.
	dbo.SetWALRecoveryMode(grocksdb.PointInTimeRecovery)
	if !s.ro {
		// By default a writable open writes what it replays from the WAL
		// into a new table file per family and syncs each, then the
		// manifest: a fifth of the open of a store that the last
		// command wrote to (8 of 45 ms in a one-file `nexis switch`).
		// Kept in memtables instead, the old WAL files stay until a
		// flush; Close and the next writable open bound them
		// (walNeedsFlush).
		o, err := grocksdb.GetOptionsFromString(dbo, "avoid_flush_during_recovery=true")
		dbo.Destroy()
		if err != nil {
			return fmt.Errorf("store database options: %w", err)
		}
		dbo = o
	}
	s.opts = append(s.opts, dbo)

	var (
		db      *grocksdb.DB
		handles []*grocksdb.ColumnFamilyHandle
		err     error
	)
	openNames := func(names []string) {
		var cfo []*grocksdb.Options
		for _, n := range names {
			o := cfOptions(n, cache, s.ro)
			cfo = append(cfo, o)
			// grocksdb v1.7.15 frees a native prefix extractor in Destroy
			// although RocksDB's options already own it: destroying these
			// options would double-free, so they are left to the process.
			if n != cfReferrers {
				s.opts = append(s.opts, o)
			}
		}
		if !s.ro {
			db, handles, err = grocksdb.OpenDbColumnFamilies(dbo, s.dbDir(), names, cfo)
			return
		}
		// A concurrent writer may delete a file between our reading the
		// manifest and opening it; a retry sees the new manifest.
		for attempt := 0; attempt < 5; attempt++ {
			db, handles, err = grocksdb.OpenDbForReadOnlyColumnFamilies(dbo, s.dbDir(), names, cfo, false)
			if err == nil || !strings.Contains(err.Error(), "No such file") {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
		}
	}
	names := cfNames
	openNames(names)
	if err != nil && !s.ro && strings.Contains(err.Error(), "Column families not opened") {
		// A writable open must name every existing family, including ones
		// a newer nexis added, so it can reach the schema check below.
		// Listing them first on every open would read the manifest twice.
		if existing, lerr := grocksdb.ListColumnFamilies(dbo, s.dbDir()); lerr == nil {
			names = mergeNames(cfNames, existing)
			openNames(names)
		}
	}
	if err != nil {
		for _, o := range s.opts {
			o.Destroy()
		}
		s.opts = nil
		return unreadable(s.dir, fmt.Errorf("opening store database %s: %w", s.dbDir(), err))
	}
	s.db, s.closed = db, false
	s.cfs = map[string]*grocksdb.ColumnFamilyHandle{}
	for i, n := range names {
		s.cfs[n] = handles[i]
	}
	s.ro_ = grocksdb.NewDefaultReadOptions()
	s.wo = grocksdb.NewDefaultWriteOptions()
	s.wo.SetSync(true)

	v, err := s.getUint(cfDefault, keySchema)
	switch {
	case err != nil:
		s.closeAfterFailedOpen()
		return err
	case v > SchemaVersion:
		s.closeAfterFailedOpen()
		return fmt.Errorf("store %s has schema version %d, newer than this nexis understands (%d): use a newer nexis", s.dir, v, SchemaVersion)
	case v == 0 && s.ro:
		s.closeAfterFailedOpen()
		return fmt.Errorf("store %s: %w", s.dir, ErrNotInitialised)
	case v == 0 && !create && !s.initialisable():
		// A database that was never initialised where a store was
		// expected: made by something else, or emptied.
		s.closeAfterFailedOpen()
		return &MetadataError{Dir: s.dir, Why: "its database is empty (no schema version)"}
	case v == 0:
		b := grocksdb.NewWriteBatch()
		b.PutCF(s.cfs[cfDefault], keySchema, appendUvarint(nil, SchemaVersion))
		err := s.db.Write(s.wo, b)
		b.Destroy()
		if err != nil {
			s.closeAfterFailedOpen()
			return fmt.Errorf("initialising store database: %w", err)
		}
	case v < SchemaVersion && !s.ro:
		if err := s.migrate(v); err != nil {
			s.closeAfterFailedOpen()
			return err
		}
	}
	return nil
}

// migrate brings a store of schema v to SchemaVersion, one numbered
// step (one synced batch) at a time. A read-only open reads an older
// schema as it is: every step so far keeps old records readable.
func (s *Store) migrate(v uint64) error {
	for ; v < SchemaVersion; v++ {
		step := migrations[v]
		if step == nil {
			return fmt.Errorf("store %s has schema version %d, which this nexis cannot migrate", s.dir, v)
		}
		b := grocksdb.NewWriteBatch()
		err := step(s, b)
		if err == nil {
			b.PutCF(s.cfs[cfDefault], keySchema, appendUvarint(nil, v+1))
			err = s.db.Write(s.wo, b)
		}
		b.Destroy()
		if err != nil {
			return fmt.Errorf("store %s: migrating schema %d to %d: %w", s.dir, v, v+1, err)
		}
	}
	return nil
}

// initialisable says whether a writable open may initialise a database
// without a schema version: one a crash interrupted right after RocksDB
// made it, in a store that holds nothing.
func (s *Store) initialisable() bool {
	held, err := holdsPaths(s.dir)
	return err == nil && held == ""
}

// closeAfterFailedOpen releases the database without flushing, keeping
// the lock for the caller to release.
func (s *Store) closeAfterFailedOpen() {
	for _, h := range s.cfs {
		h.Destroy()
	}
	s.db.Close()
	for _, o := range s.opts {
		o.Destroy()
	}
	s.opts = nil
	s.ro_.Destroy()
	s.wo.Destroy()
	s.closed = true
}

func mergeNames(want, existing []string) []string {
	seen := map[string]bool{}
	out := append([]string(nil), want...)
	for _, n := range want {
		seen[n] = true
	}
	for _, n := range existing {
		if !seen[n] {
			out = append(out, n)
		}
	}
	return out
}

// acquireLock takes the writer flock, waiting (and saying once who holds
// it) when another process has it.
func (s *Store) acquireLock(onWait func(string)) error {
	p := filepath.Join(s.metaDir(), "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening store lock: %w", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		holder, _ := io.ReadAll(io.LimitReader(f, 4096))
		h := strings.TrimSpace(string(holder))
		if h == "" {
			h = "another process"
		}
		if onWait != nil {
			onWait(h)
		} else {
			fmt.Fprintf(os.Stderr, "nexis: waiting for the store lock %s, held by %s\n", p, h)
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if err != unix.EINTR {
				break
			}
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("locking store %s: %w", p, err)
	}
	// Who holds the lock is advisory text for the next waiter; failing to
	// write it does not matter.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(fmt.Sprintf("pid %d (%s)\n", os.Getpid(), strings.Join(os.Args, " "))), 0)
	}
	s.lock = f
	return nil
}

func (s *Store) releaseLock() {
	if s.lock != nil {
		s.lock.Truncate(0)
		unix.Flock(int(s.lock.Fd()), unix.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
}

// recoverTmp removes what an interrupted ingest left under tmp. Only the
// lock holder ingests, so nothing there belongs to a live process.
func (s *Store) recoverTmp() error {
	ents, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return fmt.Errorf("recovering store: %w", err)
	}
	for _, e := range ents {
		if err := removeTree(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return fmt.Errorf("recovering store: removing interrupted ingest: %w", err)
		}
	}
	return nil
}

// damaged reports damage the store worked around.
func (s *Store) damaged(msg string) {
	if s.onDamage != nil {
		s.onDamage(msg)
		return
	}
	fmt.Fprintf(os.Stderr, "nexis: warning: %s\n", msg)
}

func (s *Store) writable() error {
	if s.ro {
		return ErrReadOnly
	}
	if s.closed {
		return errors.New("store is closed")
	}
	return nil
}
