package lang

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/store/treehash"
)

// Evaluating a package is a function of what it was given and what it
// read: its TOML entry (with its key path and file, for the stdlib's
// package()), its lock entry, its dependencies (their identities and
// passthru), the modules it loaded and the files it read or hashed, the
// stdlib and the options. So each package's derivation is kept, beside
// the evaluation cache and under the same rules (openCacheFile), keyed
// by a digest of what it was given, with the list of what it read as it
// was. A later evaluation of the config takes a package from the cache
// when its key is the same and every file it read is as it was: after
// one package of 10,000 is edited, that package and those that depend
// on it (whose key holds its identity) are evaluated, and nothing else.
//
// What a package printed cannot be replayed, so a package that printed,
// or loaded a module that printed, is not kept. Errors are not kept.
//
// The cache is one file per config and options: the base of its keys,
// then sources, derivations (each once, however many packages reach it)
// and one entry per package. A file whose digest does not
// match its contents, that does not decode, or of another base is
// ignored; so is an entry one of whose reads no longer matches.

// pkgCacheVersion changes when the format or what a key holds changes.
const pkgCacheVersion = "nexis package cache 6"

var pkgCacheMagic = []byte(pkgCacheVersion + "\n")

// pkgCache is the package cache of one evaluation: the entries read
// from disk, and those made or confirmed by this evaluation, to write.
type pkgCache struct {
	file string
	ev   *evaluator
	base treehash.Digest // digest of the options, the stdlib and nexis
	old  map[treehash.Digest]*cacheEntry
	// known are the keys of old, by what their packages were given (see
	// packageKey).
	known map[string]treehash.Digest
	mu    sync.Mutex
	now   map[[2]string]Input // reads checked in this evaluation
	keep  []keptEntry         // entries to write, not written ahead
	fresh atomic.Int64        // packages evaluated (and kept)
	hits  atomic.Int64        // packages taken from the cache

	// ahead, when there is no file to keep entries of, takes each entry
	// kept to enc as its package ends: the file will be written whatever
	// the packages give, and encoding and writing it while they run
	// leaves nothing to hold for it. entries then takes the entries
	// left to write (keep), or is closed when there is no file to write.
	ahead     chan keptEntry
	entries   chan []keptEntry
	aheadDone chan struct{}
	stopAhead sync.Once
	enc       *cacheEncoder
}

// keptEntry is an entry to write, and its key.
type keptEntry struct {
	key treehash.Digest
	e   *cacheEntry
}

// cacheEntry is one package's result and what it read.
type cacheEntry struct {
	drv   *builtins.Derivation
	given string // what its key is the digest of, but the base
	steps uint64
	reads []Input
	keys  map[string]string // declared_in answers
	// while decoded: the derivation's index in the file
	drvIndex int
}

func openPkgCache(ev *evaluator, configPath string, data *pkgCacheFileData) *pkgCache {
	file := pkgCacheFile(configPath, ev.opts)
	if file == "" {
		return nil
	}
	c := &pkgCache{file: file, ev: ev, now: map[[2]string]Input{}}
	settings, _ := builtins.ToGo(ev.pre["build_settings"])
	settingsJSON, _ := builtins.CanonicalJSON(settings)
	stdenv, _ := builtins.CanonicalJSON(ev.opts.Stdenv)
	c.base = treehash.Sum([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%d\x00", pkgCacheVersion, buildIdentity(),
		ev.opts.StoreDir, ev.opts.System, ev.opts.MaxSteps, ev.opts.MaxDepth, ev.opts.MaxMemory)), settingsJSON, []byte{0}, stdenv)
	// A file of another base (another nexis, other settings) holds no
	// key of this evaluation.
	if data != nil && data.base == c.base {
		c.old, c.known = data.entries, data.known
	}
	// Each package is kept once, or not at all.
	raw, _ := ev.cfg.data["packages"].([]any)
	n := len(raw)
	if len(c.old) > 0 {
		c.keep = make([]keptEntry, 0, n)
	} else {
		enc := newCacheEncoder(n)
		c.enc = enc
		c.ahead = make(chan keptEntry, min(n, aheadQueue))
		c.entries = make(chan []keptEntry, 1)
		c.aheadDone = make(chan struct{})
		go func() {
			defer close(c.aheadDone)
			c.writeStreamed(func(w io.Writer) error {
				for x := range c.ahead {
					enc.entry(x)
					if err := enc.flush(w, flushAt); err != nil {
						return err
					}
				}
				keep, ok := <-c.entries
				if !ok {
					return errNotWritten
				}
				return c.body(w, enc, keep)
			})
		}()
	}
	return c
}

// pkgCacheFileData is a package cache file as read.
type pkgCacheFileData struct {
	base    treehash.Digest
	entries map[treehash.Digest]*cacheEntry
	known   map[string]treehash.Digest // keys by what was given
}

// readPkgCache loads file, if it can be believed and is whole (nil
// otherwise), derivations made. It runs while the config is read and
// decoded, and also computes the identity of this nexis, which keys
// need. Every derivation is made here rather than when an entry is
// first used: when the cache is warm nearly all are used, and making
// them here takes them off the evaluation's path (a fifth of the
// packages' time at 10,000). An evaluation that uses few of them (the
// options that key every package changed) wastes at most what a warm
// one spends.
func readPkgCache(file string) *pkgCacheFileData {
	buildIdentity()
	if file == "" {
		return nil
	}
	f, size, ok := openCacheFile(file)
	if !ok {
		return nil
	}
	b := make([]byte, size)
	_, err := io.ReadFull(f, b)
	f.Close()
	if err != nil || !bytes.HasPrefix(b, pkgCacheMagic) || len(b) < len(pkgCacheMagic)+32 {
		return nil
	}
	body := b[len(pkgCacheMagic)+32:]
	if sum := treehash.Sum(body); !bytes.Equal(sum[:], b[len(pkgCacheMagic):len(pkgCacheMagic)+32]) {
		return nil
	}
	d := &cacheDecoder{b: body}
	data, err := d.decode()
	if err != nil {
		return nil
	}
	return data
}

// packageKey is the digest of what a package is given: its entry (the
// digest of its encoding, which the TOML cache keeps for the entries of
// a large config), key path, file and lock entry, and its dependencies
// (names and identities), after the base. The file keeps what each
// package was given: when a package is given the same, its key is the
// one kept, and nothing is hashed. given is what the key was hashed
// from, for the file to keep ("" for a key it kept).
func (c *pkgCache) packageKey(e map[string]any, key, file string, locked *LockedPackage, depNames []string, deps []treehash.Digest) (k treehash.Digest, given string, ok bool) {
	var lock []byte
	if locked != nil {
		lock = fmt.Appendf(nil, "%q %q %q %q %q %q", locked.Version, locked.Tag, locked.Rev, locked.SourceHash, locked.PrebuiltURL, locked.PrebuiltHash)
	}
	buf := keyBufs.Get().(*[]byte)
	defer keyBufs.Put(buf)
	entry, ok := c.ev.cfg.tc.entryDigest(e)
	if !ok {
		enc, ok := encodeValue((*buf)[:0], e)
		*buf = enc
		if !ok {
			return treehash.Digest{}, "", false
		}
		entry = treehash.Sum(enc)
	}
	b := append((*buf)[:0], entry[:]...)
	b = appendField(b, []byte(key))
	b = appendField(b, []byte(file))
	b = appendField(b, lock)
	for k, d := range deps {
		b = appendField(b, []byte(depNames[k]))
		b = append(b, d[:]...)
	}
	*buf = b
	if k, ok := c.known[string(b)]; ok {
		return k, "", true
	}
	return treehash.Sum(c.base[:], b), string(b), true
}

// keyBufs hold the bytes a package key is the digest of, while it is
// made: one buffer per goroutine at a time rather than one per package.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func appendField(b, f []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(f))), f...)
}

// lookup returns the kept result for key if everything it read is as it
// was, recording those reads as the evaluation's.
func (c *pkgCache) lookup(key treehash.Digest) (*cacheEntry, bool) {
	e, ok := c.old[key]
	if !ok {
		return nil, false
	}
	for _, r := range e.reads {
		if c.current(r) != r {
			return nil, false
		}
	}
	for k, file := range e.keys {
		if c.ev.cfg.FileOf(k) != file {
			return nil, false
		}
	}
	if in := c.ev.opts.Inputs; in != nil {
		for _, r := range e.reads {
			in.add(r)
		}
	}
	return e, true
}

// current is what r would record now, each path checked once per
// evaluation.
func (c *pkgCache) current(r Input) Input {
	k := [2]string{r.Kind, r.Path}
	c.mu.Lock()
	now, ok := c.now[k]
	c.mu.Unlock()
	if !ok {
		now = r.now(c.ev.cfg.dir)
		c.mu.Lock()
		c.now[k] = now
		c.mu.Unlock()
	}
	return now
}

// put keeps a package's result for the file written after evaluation.
// Every package ends with it, on one goroutine or another: only an
// entry that finds the queue ahead full, or none, waits for the lock.
func (c *pkgCache) put(key treehash.Digest, e *cacheEntry, fresh bool) {
	if fresh {
		c.fresh.Add(1)
	} else {
		c.hits.Add(1)
	}
	if c.ahead != nil {
		select {
		case c.ahead <- keptEntry{key, e}:
			return
		default:
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep = append(c.keep, keptEntry{key, e})
}

// stop ends encoding ahead, and waits for its file to be left out:
// the evaluation failed (or the file was written: see end).
func (c *pkgCache) stop() { c.end(nil, false) }

// end ends encoding ahead, and waits for its file to be written with
// keep, or left out.
func (c *pkgCache) end(keep []keptEntry, write bool) {
	if c.ahead == nil {
		return
	}
	c.stopAhead.Do(func() {
		close(c.ahead)
		if write {
			c.entries <- keep
		}
		close(c.entries)
	})
	<-c.aheadDone
}

// aheadQueue is how many entries may wait to be written ahead: the
// packages do not wait for the file, and an entry that finds the queue
// full is written after them (see put). A variable for tests.
var aheadQueue = 4096

// errNotWritten leaves out the file encoded ahead.
var errNotWritten = errors.New("package cache not written")

// write stores what this evaluation kept, unless it is what was read,
// or so nearly so that writing the whole file again would cost more than
// evaluating the few packages it lacks next time (see worthWriting).
// It runs once the packages are evaluated, while the system is: what
// the cache holds for them is then of no more use (at 100,000 packages,
// 30 MB of entries, keys and what they were given).
func (c *pkgCache) write() {
	defer c.release()
	fresh, hits := int(c.fresh.Load()), int(c.hits.Load())
	if !worthWriting(fresh, fresh+hits, len(c.old)) {
		c.stop()
		return
	}
	keep := c.keep
	slices.SortFunc(keep, func(a, b keptEntry) int { return bytes.Compare(a.key[:], b.key[:]) })
	// Two packages are given the same only if one was evaluated twice.
	keep = slices.CompactFunc(keep, func(a, b keptEntry) bool { return a.key == b.key })
	if c.ahead != nil {
		c.end(keep, true)
		return
	}
	enc := newCacheEncoder(len(keep))
	c.writeStreamed(func(w io.Writer) error { return c.body(w, enc, keep) })
}

// release lets go of what only the packages' evaluation and the file
// needed, the TOML cache's digests of entries too; the counts stay.
func (c *pkgCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.old, c.known, c.now, c.keep, c.enc, c.ahead = nil, nil, nil, nil, nil, nil
	c.ev.cfg.tc.forget()
}

// body writes the rest of the body after what enc wrote: keep, the
// entries not written ahead, with the derivations enc lacks, and the
// counts.
func (c *pkgCache) body(w io.Writer, enc *cacheEncoder, keep []keptEntry) error {
	for _, x := range keep {
		enc.entry(x)
		if err := enc.flush(w, flushAt); err != nil {
			return err
		}
	}
	for _, k := range []int{enc.nsrc, enc.ndrv, enc.nentry} {
		enc.buf = binary.LittleEndian.AppendUint32(enc.buf, uint32(k))
	}
	return enc.flush(w, 0)
}

// writeStreamed writes the file as writeHashed does, its body the base
// and what write gives.
func (c *pkgCache) writeStreamed(write func(io.Writer) error) {
	writeHashed(c.file, pkgCacheMagic, func(w io.Writer) error {
		if _, err := w.Write(c.base[:]); err != nil {
			return err
		}
		return write(w)
	})
}

// writeHashed writes magic, the digest of the body and the body write
// gives, as writeCacheFile does (internal/durable: complete, then
// renamed), without holding the body: at 100,000 packages the package
// cache's is 95 MB and the TOML cache's 30 MB. The digest goes in front
// once the body is written, through the temporary file durable hands
// the filler. The file is not synced (durable.WriteVerified): its reader
// checks the digest, and one a crash damaged costs an evaluation's work.
func writeHashed(file string, magic []byte, write func(io.Writer) error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return
	}
	durable.WriteVerified(file, 0o600, func(w io.Writer) error {
		at, ok := w.(io.WriterAt)
		if !ok {
			return fmt.Errorf("cache: %T cannot be written at an offset", w)
		}
		if _, err := w.Write(append(magic[:len(magic):len(magic)], make([]byte, 32)...)); err != nil {
			return err
		}
		// A Stream hashes on this goroutine, 16 chunks at a time: the
		// library's Hasher would start goroutines and copy into fresh
		// buffers for every 64 KB written (1.5 MB a cold 10,000-package
		// evaluation allocated for nothing).
		h := new(treehash.Stream)
		if err := write(io.MultiWriter(w, h)); err != nil {
			return err
		}
		sum := h.Sum()
		_, err := at.WriteAt(sum[:], int64(len(magic)))
		return err
	})
}

// worthWriting says whether a cache of now entries, fresh of them new,
// is worth writing over one of old entries: the file is rewritten whole,
// in time proportional to now, and an entry missing from it costs one
// package's evaluation. So after one package of 10,000 is edited the
// file is left as it was, and that package is evaluated again next time
// (less than a millisecond) rather than 7 MB written each time.
func worthWriting(fresh, now, old int) bool {
	if fresh == 0 {
		return now != old
	}
	return old == 0 || fresh*rewriteRatio >= now
}

// rewriteRatio is how many entries writing costs as much as evaluating one.
const rewriteRatio = 64

// identity names a package's result as its dependents' keys hold it:
// its own key, and what it read as it was. It changes whenever the result
// may have.
func identity(key treehash.Digest, reads []Input, keys map[string]string) treehash.Digest {
	if len(reads) == 0 && len(keys) == 0 {
		return key
	}
	// A copy: slicing key itself would move it to the heap on every
	// call, the first return's too.
	b := append([]byte(nil), key[:]...)
	for _, r := range reads {
		b = appendField(b, []byte(r.Path))
		b = appendField(b, []byte(r.Kind))
		b = appendField(b, []byte(r.Digest))
	}
	for _, k := range sortedKeys(keys) {
		b = appendField(b, []byte(k))
		b = appendField(b, []byte(keys[k]))
	}
	return treehash.Sum(b)
}

// The file's body: the base of the keys; sources, derivations and
// entries as they were encoded, each a record of varint-coded fields
// that names the sources and derivations before it by index (a
// derivation's inputs come before it, and an entry's derivation before
// the entry); and how many sources, derivations and entries there are,
// three 32-bit little-endian numbers at the end: the records are
// written as the packages end, before how many there will be is known.
//
// A string is written where it is used, unless it is one of the last
// two written to its slot (recentStrings): the strings a derivation
// shares with others (its system, builder, the stdenv's paths in its
// environment) are those of the derivations written before it, and the
// others (names, versions, paths, identities) are nearly all used once.
// So no string is hashed into a table, on writing or reading.

// Kinds of records.
const (
	recordSource byte = iota
	recordDerivation
	recordEntry
)

// trailerSize is the size of the counts that end a body.
const trailerSize = 12

// minRecord is the least size of a source, a derivation and an entry.
var minRecord = [3]int{6, 19, 33}

// Slots of strings: a field, or a place in a list.
const (
	slotName = iota
	slotVersion
	slotSystem
	slotStore
	slotBuilder
	slotArgs                               // by place, the last slot for the rest
	slotEnvName    = slotArgs + nListSlots // by place
	slotEnvValue   = slotEnvName + nListSlots
	slotOutput     = slotEnvValue + nListSlots
	slotAlgo       = slotOutput + 1
	slotHash       = slotAlgo + 1
	slotSource     = slotHash + 1 // each of a source's five fields
	slotReadPath   = slotSource + 5
	slotReadKind   = slotReadPath + 1
	slotReadDigest = slotReadPath + 2
	slotKey        = slotReadPath + 3
	slotKeyFile    = slotReadPath + 4
	nSlots         = slotReadPath + 5
)

// nListSlots is how many places of a list (arguments, variables) have
// a slot of their own.
const nListSlots = 16

// listSlot is the slot of place i of a list whose first slot is first.
func listSlot(first, i int) int { return first + min(i, nListSlots-1) }

// recentStrings are the last two strings of each slot, the last first,
// as both the encoder and the decoder update them.
type recentStrings [nSlots][2]string

// put appends x to b in slot: 0 for the slot's last string, 1 for the
// one before it, 2+n and the bytes for a string of n bytes.
func (r *recentStrings) put(b []byte, slot int, x string) []byte {
	m := &r[slot]
	switch x {
	case m[0]:
		return append(b, 0)
	case m[1]:
		m[0], m[1] = m[1], m[0]
		return append(b, 1)
	}
	m[0], m[1] = x, m[0]
	return append(binary.AppendUvarint(b, uint64(len(x))+2), x...)
}

// inline appends x, as a string of no slot: its length and bytes.
func inline(b []byte, x string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(x))), x...)
}

type cacheEncoder struct {
	recent recentStrings
	// buf holds the records encoded and not yet written (see flush).
	buf  []byte
	srcs map[*builtins.Source]int
	nsrc int
	// ids are the derivations' indices (or inProgress, failed) by
	// identity: two derivations of one identity are one record.
	ids    map[string]int
	ndrv   int
	nentry int
	seen   map[any]bool            // scratch for walking a passthru
	plain  map[*starlark.Dict]bool // passthrus that hold no derivation
	// passthrus are the passthrus encoded, by dict: most packages share
	// one, encoded once.
	passthrus map[*starlark.Dict][]byte
	idx       []int // scratch: an encoding's input indices
}

// flushAt is how many bytes of records the encoder holds before it
// writes them: the table is written as it is encoded, not held (at
// 100,000 packages it is 80 MB).
const flushAt = 64 << 10

// newCacheEncoder returns an encoder for about n packages (two
// derivations each: the build and its source).
func newCacheEncoder(n int) *cacheEncoder {
	return &cacheEncoder{srcs: map[*builtins.Source]int{}, ids: make(map[string]int, 2*n),
		buf: make([]byte, 0, flushAt+flushAt/4), plain: map[*starlark.Dict]bool{}, passthrus: map[*starlark.Dict][]byte{}}
}

// entry adds the entry x and its derivation, unless that cannot be
// kept: the entry is left out.
func (e *cacheEncoder) entry(x keptEntry) {
	di, ok := e.derivation(x.e.drv)
	if !ok {
		return
	}
	b, r := append(e.buf, recordEntry), &e.recent
	b = append(b, x.key[:]...)
	b = inline(b, x.e.given)
	b = e.uv(b, di)
	b = binary.AppendUvarint(b, x.e.steps)
	b = e.uv(b, len(x.e.reads))
	for _, in := range x.e.reads {
		b = r.put(b, slotReadPath, in.Path)
		b = r.put(b, slotReadKind, in.Kind)
		b = r.put(b, slotReadDigest, in.Digest)
	}
	b = e.uv(b, len(x.e.keys))
	for _, k := range sortedKeys(x.e.keys) {
		b = r.put(b, slotKey, k)
		b = r.put(b, slotKeyFile, x.e.keys[k])
	}
	e.buf = b
	e.nentry++
}

// flush writes the records held to w once they are at least least bytes.
func (e *cacheEncoder) flush(w io.Writer, least int) error {
	if len(e.buf) < least || len(e.buf) == 0 {
		return nil
	}
	_, err := w.Write(e.buf)
	e.buf = e.buf[:0]
	return err
}

func (e *cacheEncoder) uv(b []byte, n int) []byte { return binary.AppendUvarint(b, uint64(n)) }

func (e *cacheEncoder) source(s *builtins.Source) int {
	if i, ok := e.srcs[s]; ok {
		return i
	}
	e.buf = append(e.buf, recordSource)
	for k, f := range []string{s.Name, s.TreeHash, s.Path, s.Display, s.Abs} {
		e.buf = e.recent.put(e.buf, slotSource+k, f)
	}
	e.srcs[s] = e.nsrc
	e.nsrc++
	return e.nsrc - 1
}

// derivation adds d and what it reaches, inputs first; false if a
// passthru holds what cannot be kept. Dependency chains are as long as
// the config (14,000 deep at 100,000 packages): no recursion.
func (e *cacheEncoder) derivation(root *builtins.Derivation) (int, bool) {
	stack := []*builtins.Derivation{root}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		i, ok := e.ids[d.ID()]
		if ok && i != inProgress {
			stack = stack[:len(stack)-1]
			continue
		}
		if !ok {
			e.ids[d.ID()] = inProgress
			n := len(stack)
			for _, in := range d.Drvs {
				if _, ok := e.ids[in.ID()]; !ok {
					stack = append(stack, in)
				}
			}
			if !e.plain[d.Passthru] {
				if e.seen == nil {
					e.seen = map[any]bool{}
				}
				clear(e.seen)
				plain := true
				builtins.Walk(d.Passthru, e.seen, func(v starlark.Value) {
					if in, ok := v.(*builtins.Derivation); ok {
						plain = false
						if _, seen := e.ids[in.ID()]; !seen {
							stack = append(stack, in)
						}
					}
				})
				if plain {
					// Most packages share one passthru, frozen: it is
					// walked once.
					e.plain[d.Passthru] = true
				}
			}
			if len(stack) > n {
				continue
			}
		}
		// Its inputs have their indices.
		stack = stack[:len(stack)-1]
		if !e.encode(d) {
			e.ids[d.ID()] = failed
		}
	}
	i := e.ids[root.ID()]
	return i, i >= 0
}

const (
	inProgress = -1
	failed     = -2
)

// encode adds d, whose inputs are added.
func (e *cacheEncoder) encode(d *builtins.Derivation) bool {
	idx := e.idx[:0]
	for _, in := range d.Drvs {
		i, ok := e.ids[in.ID()]
		if !ok || i < 0 {
			return false
		}
		idx = append(idx, i)
	}
	for _, s := range d.Srcs {
		idx = append(idx, e.source(s))
	}
	e.idx = idx
	drvs, srcs := idx[:len(d.Drvs)], idx[len(d.Drvs):]
	passthru, ok := e.passthrus[d.Passthru]
	if !ok {
		if passthru, ok = e.value(nil, d.Passthru, 0); !ok {
			return false
		}
		e.passthrus[d.Passthru] = passthru
	}
	b, r := append(e.buf, recordDerivation), &e.recent
	b = r.put(b, slotName, d.Name)
	b = r.put(b, slotVersion, d.Version)
	b = r.put(b, slotSystem, d.System)
	b = r.put(b, slotStore, d.Store)
	b = r.put(b, slotBuilder, d.Builder)
	b = inline(b, d.ID())
	b = e.uv(b, len(d.Args))
	for i, a := range d.Args {
		b = r.put(b, listSlot(slotArgs, i), a)
	}
	b = e.uv(b, len(d.Env))
	for i, v := range d.Env {
		b = r.put(b, listSlot(slotEnvName, i), v.Name)
		b = r.put(b, listSlot(slotEnvValue, i), v.Value)
	}
	b = e.uv(b, len(drvs))
	for _, i := range drvs {
		b = e.uv(b, i)
	}
	b = e.uv(b, len(srcs))
	for _, i := range srcs {
		b = e.uv(b, i)
	}
	b = e.uv(b, len(d.Outputs))
	for k, o := range d.Outputs {
		b = inline(r.put(b, slotOutput, o), d.Paths()[k])
	}
	if f := d.Fixed; f != nil {
		b = append(b, 1)
		b = r.put(r.put(b, slotAlgo, f.Algo), slotHash, f.Hash)
		if f.Unpack {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	} else {
		b = append(b, 0)
	}
	b = e.uv(b, d.Timeout)
	b = e.uv(b, len(passthru))
	b = append(b, passthru...)
	e.buf = b
	e.ids[d.ID()] = e.ndrv
	e.ndrv++
	return true
}

// Tags of passthru values.
const (
	tagNone byte = iota
	tagTrue
	tagFalse
	tagInt
	tagFloat
	tagString
	tagList
	tagTuple
	tagDict
	tagStruct
	tagDerivation
	tagSource
)

func (e *cacheEncoder) value(b []byte, v starlark.Value, depth int) ([]byte, bool) {
	if depth > 200 {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return b, false
	case starlark.NoneType:
		return append(b, tagNone), true
	case starlark.Bool:
		if x {
			return append(b, tagTrue), true
		}
		return append(b, tagFalse), true
	case starlark.Int:
		i, ok := x.Int64()
		if !ok {
			return b, false
		}
		return binary.AppendVarint(append(b, tagInt), i), true
	case starlark.Float:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(float64(x))), true
	case starlark.String:
		// A passthru's strings are of no slot: the same passthru is
		// the same bytes wherever it is (see makeDerivation).
		return inline(append(b, tagString), string(x)), true
	case *starlark.List:
		// Passthru is frozen, deeply, when its derivation is made.
		b = e.uv(append(b, tagList), x.Len())
		for el := range x.Elements() {
			var ok bool
			if b, ok = e.value(b, el, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case starlark.Tuple:
		b = e.uv(append(b, tagTuple), len(x))
		for _, el := range x {
			var ok bool
			if b, ok = e.value(b, el, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case *starlark.Dict:
		b = e.uv(append(b, tagDict), x.Len())
		for k, el := range x.Entries() {
			var ok bool
			if b, ok = e.value(b, k, depth+1); !ok {
				return b, false
			}
			if b, ok = e.value(b, el, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case *starlarkstruct.Struct:
		if x.Constructor() != starlarkstruct.Default {
			return b, false
		}
		names := x.AttrNames()
		b = e.uv(append(b, tagStruct), len(names))
		for _, n := range names {
			f, _ := x.Attr(n)
			var ok bool
			b = inline(b, n)
			if b, ok = e.value(b, f, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case *builtins.Derivation:
		i, ok := e.ids[x.ID()]
		if !ok || i < 0 {
			return b, false
		}
		return e.uv(append(b, tagDerivation), i), true
	case *builtins.Source:
		return e.uv(append(b, tagSource), e.source(x)), true
	}
	return b, false
}

var errDamaged = errors.New("damaged package cache")

// cacheDecoder reads a body, making its derivations as it goes.
type cacheDecoder struct {
	b      []byte
	i      int
	recent recentStrings
	srcs   []*builtins.Source
	drvs   []*builtins.Derivation
	made   int // derivations made: those before it
	// passthrus are the passthru dicts made, by their encoding
	passthrus map[string]*starlark.Dict
	// The derivations, and the slices they hold, are carved out of a few
	// large allocations rather than made one by one (30,000 derivations
	// at 10,000 packages).
	slab     []builtins.Derivation
	strChunk []string
	drvChunk []*builtins.Derivation
	envChunk []builtins.EnvVar
	inChunk  []Input
	fixed    []builtins.Fixed
}

// carve returns n elements of their own, cut from *slab (capacity n: an
// append copies), which is refilled chunk at a time: the decoder makes
// tens of thousands of small slices.
func carve[T any](slab *[]T, n int) []T {
	if n > len(*slab) {
		*slab = make([]T, max(n, chunk))
	}
	s := (*slab)[:n:n]
	*slab = (*slab)[n:]
	return s
}

const chunk = 4096

func (d *cacheDecoder) uv() int {
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 || v > math.MaxInt32 {
		panic(errDamaged)
	}
	d.i += n
	return int(v)
}

// str reads a string of slot (see recentStrings.put).
func (d *cacheDecoder) str(slot int) string {
	m := &d.recent[slot]
	switch v := d.uv(); v {
	case 0:
	case 1:
		m[0], m[1] = m[1], m[0]
	default:
		m[0], m[1] = d.bytes(v-2), m[0]
	}
	return m[0]
}

// count reads how many of something follow, each at least a byte.
func (d *cacheDecoder) count() int {
	n := d.uv()
	if n > len(d.b)-d.i {
		panic(errDamaged)
	}
	return n
}

// inline reads a string of no slot.
func (d *cacheDecoder) inline() string { return d.bytes(d.uv()) }

// bytes reads n bytes, as a string.
func (d *cacheDecoder) bytes(n int) string {
	if n > len(d.b)-d.i {
		panic(errDamaged)
	}
	s := d.view(d.i, n)
	d.i += n
	return s
}

// view is the n bytes of the body at i as a string, without copying
// them: the body is never written after it is read, and the strings
// made from it (a derivation's paths, its environment) are most of it,
// so it is kept either way.
func (d *cacheDecoder) view(i, n int) string {
	if n == 0 {
		return ""
	}
	return unsafe.String(&d.b[i], n)
}

func (d *cacheDecoder) byte1() byte {
	if d.i >= len(d.b) {
		panic(errDamaged)
	}
	d.i++
	return d.b[d.i-1]
}

// decode reads the base, the tables, making the derivations, and the
// entries.
func (d *cacheDecoder) decode() (data *pkgCacheFileData, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, errDamaged
		}
	}()
	data = &pkgCacheFileData{}
	if len(d.b) < len(data.base)+trailerSize {
		return nil, errDamaged
	}
	t := d.b[len(d.b)-trailerSize:]
	d.b = d.b[:len(d.b)-trailerSize]
	var counts [3]int
	for k, least := range minRecord {
		// What is made for each is made before it is read.
		counts[k] = int(binary.LittleEndian.Uint32(t[4*k:]))
		if counts[k] > len(d.b)/least {
			return nil, errDamaged
		}
	}
	ns, nd, n := counts[0], counts[1], counts[2]
	d.i = copy(data.base[:], d.b)
	d.srcs = make([]*builtins.Source, 0, ns)
	slab := make([]builtins.Source, ns)
	d.drvs = make([]*builtins.Derivation, nd)
	d.slab = make([]builtins.Derivation, nd)
	entries := make(map[treehash.Digest]*cacheEntry, n)
	data.entries, data.known = entries, make(map[string]treehash.Digest, n)
	kept := make([]cacheEntry, n)
	ne := 0
	for d.i < len(d.b) {
		switch d.byte1() {
		case recordSource:
			if len(d.srcs) == ns {
				return nil, errDamaged
			}
			s := &slab[len(d.srcs)]
			s.Name, s.TreeHash, s.Path = d.str(slotSource), d.str(slotSource+1), d.str(slotSource+2)
			s.Display, s.Abs = d.str(slotSource+3), d.str(slotSource+4)
			d.srcs = append(d.srcs, s)
		case recordDerivation:
			if d.made == nd {
				return nil, errDamaged
			}
			d.drvs[d.made] = d.makeDerivation(d.made)
			d.made++
		case recordEntry:
			if ne == n {
				return nil, errDamaged
			}
			k, e := d.entry(&kept[ne])
			ne++
			entries[k] = e
			data.known[e.given] = k
		default:
			return nil, errDamaged
		}
	}
	if len(d.srcs) != ns || d.made != nd || ne != n {
		return nil, errDamaged
	}
	return data, nil
}

// entry reads an entry into e, and its key.
func (d *cacheDecoder) entry(e *cacheEntry) (treehash.Digest, *cacheEntry) {
	var k treehash.Digest
	if d.i+len(k) > len(d.b) {
		panic(errDamaged)
	}
	copy(k[:], d.b[d.i:])
	d.i += len(k)
	e.given = d.inline()
	e.drvIndex = d.uv()
	e.drv = d.before(e.drvIndex)
	v, m := binary.Uvarint(d.b[d.i:])
	if m <= 0 {
		panic(errDamaged)
	}
	d.i += m
	e.steps = v
	if nr := d.count(); nr > 0 {
		e.reads = carve(&d.inChunk, nr)
		for r := range e.reads {
			e.reads[r] = Input{Path: d.str(slotReadPath), Kind: d.str(slotReadKind), Digest: d.str(slotReadDigest)}
		}
	}
	if nk := d.count(); nk > 0 {
		e.keys = make(map[string]string, nk)
		for range nk {
			k := d.str(slotKey)
			e.keys[k] = d.str(slotKeyFile)
		}
	}
	return k, e
}

// before returns derivation i, which must come before the one being made.
func (d *cacheDecoder) before(i int) *builtins.Derivation {
	if i >= d.made {
		panic(errDamaged)
	}
	return d.drvs[i]
}

func (d *cacheDecoder) makeDerivation(k int) *builtins.Derivation {
	x := &d.slab[k]
	x.Name, x.Version, x.System = d.str(slotName), d.str(slotVersion), d.str(slotSystem)
	x.Store, x.Builder = d.str(slotStore), d.str(slotBuilder)
	id := d.inline()
	if n := d.count(); n > 0 {
		x.Args = carve(&d.strChunk, n)
		for a := range x.Args {
			x.Args[a] = d.str(listSlot(slotArgs, a))
		}
	}
	if n := d.count(); n > 0 {
		x.Env = carve(&d.envChunk, n)
		for j := range x.Env {
			x.Env[j].Name = d.str(listSlot(slotEnvName, j))
			x.Env[j].Value = d.str(listSlot(slotEnvValue, j))
		}
	}
	if n := d.count(); n > 0 {
		x.Drvs = carve(&d.drvChunk, n)
		for j := range x.Drvs {
			x.Drvs[j] = d.before(d.uv())
		}
	}
	if n := d.count(); n > 0 {
		x.Srcs = make([]*builtins.Source, n)
		for j := range x.Srcs {
			i := d.uv()
			if i >= len(d.srcs) {
				panic(errDamaged)
			}
			x.Srcs[j] = d.srcs[i]
		}
	}
	n := d.count()
	if n == 0 {
		panic(errDamaged)
	}
	paths := carve(&d.strChunk, n)
	x.Outputs = carve(&d.strChunk, n)
	for o := range paths {
		x.Outputs[o] = d.str(slotOutput)
		paths[o] = d.inline()
	}
	if d.byte1() == 1 {
		if len(d.fixed) == 0 {
			d.fixed = make([]builtins.Fixed, chunk)
		}
		x.Fixed = &d.fixed[0]
		d.fixed = d.fixed[1:]
		x.Fixed.Algo, x.Fixed.Hash, x.Fixed.Unpack = d.str(slotAlgo), d.str(slotHash), d.byte1() == 1
	}
	x.Timeout = d.uv()
	l := d.uv()
	end := d.i + l
	if end > len(d.b) {
		panic(errDamaged)
	}
	// Most packages' passthru is the same (no runtime dirs, no runtime
	// env): the same bytes are the same frozen dict, made once.
	enc := d.view(d.i, l)
	p, ok := d.passthrus[enc]
	if !ok {
		p, ok = d.value(0).(*starlark.Dict)
		if !ok || d.i != end {
			panic(errDamaged)
		}
		if d.passthrus == nil {
			d.passthrus = map[string]*starlark.Dict{}
		}
		d.passthrus[enc] = p
	}
	d.i = end
	x.Passthru = p
	builtins.Restore(x, id, paths)
	return x
}

// Most derivations' passthru is empty, and most packages' lists in it:
// being frozen, one empty dict and one empty list serve them all.
var (
	emptyDict = func() *starlark.Dict { d := starlark.NewDict(0); d.Freeze(); return d }()
	emptyList = func() *starlark.List { l := starlark.NewList(nil); l.Freeze(); return l }()
)

func (d *cacheDecoder) value(depth int) starlark.Value {
	if depth > 10000 {
		panic(errDamaged)
	}
	switch d.byte1() {
	case tagNone:
		return starlark.None
	case tagTrue:
		return starlark.True
	case tagFalse:
		return starlark.False
	case tagInt:
		v, n := binary.Varint(d.b[d.i:])
		if n <= 0 {
			panic(errDamaged)
		}
		d.i += n
		return starlark.MakeInt64(v)
	case tagFloat:
		if d.i+8 > len(d.b) {
			panic(errDamaged)
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:]))
		d.i += 8
		return starlark.Float(f)
	case tagString:
		return starlark.String(d.inline())
	case tagList, tagTuple:
		tag := d.b[d.i-1]
		n := d.count()
		if n == 0 && tag == tagList {
			return emptyList
		}
		elems := make([]starlark.Value, n)
		for k := range elems {
			elems[k] = d.value(depth + 1)
		}
		if tag == tagTuple {
			return starlark.Tuple(elems)
		}
		l := starlark.NewList(elems)
		l.Freeze()
		return l
	case tagDict:
		n := d.count()
		if n == 0 {
			return emptyDict
		}
		m := starlark.NewDict(n)
		for range n {
			k := d.value(depth + 1)
			if err := m.SetKey(k, d.value(depth+1)); err != nil {
				panic(errDamaged)
			}
		}
		m.Freeze()
		return m
	case tagStruct:
		fields := starlark.StringDict{}
		for range d.count() {
			n := d.inline()
			fields[n] = d.value(depth + 1)
		}
		s := starlarkstruct.FromStringDict(starlarkstruct.Default, fields)
		s.Freeze()
		return s
	case tagDerivation:
		return d.before(d.uv())
	case tagSource:
		i := d.uv()
		if i >= len(d.srcs) {
			panic(errDamaged)
		}
		return d.srcs[i]
	}
	panic(errDamaged)
}

// pkgCacheFile is where the package cache of configPath under opts is.
func pkgCacheFile(configPath string, opts Options) string {
	f := evalCacheFile(configPath, withDefaults(opts))
	if f == "" {
		return ""
	}
	if opts.CacheDir != "" {
		return filepath.Join(opts.CacheDir, filepath.Base(f)+".pkgs")
	}
	return f + ".pkgs"
}
