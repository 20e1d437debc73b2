package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/linxGnu/grocksdb"

	"github.com/nexisos/nexis/hint"
)

// txn accumulates one atomic write batch. Counters are read from the
// database once and kept in overlays, so several changes to one counter
// in a batch add up; commit writes the final values. Callers hold s.mu:
// with one writer process and one committer inside it, read-modify-write
// is exact.
type txn struct {
	s *Store
	b *grocksdb.WriteBatch

	refcount map[string]refcountVal
	content  map[contentKey]contentVal
	stats    *Stats

	// prev is the batch committing while this one is prepared
	// (RegisterBatches): its final values are what the database holds
	// once it lands, so reads look there before the database. Only keys
	// prev does not touch are read from the database or the hot cache,
	// which prev's commit leaves unchanged for them.
	prev *txn
	// added are the paths this batch registers.
	added map[string]*PathInfo

	// ops are applied at commit sorted by family and key: a memtable
	// skiplist inserts sorted keys next to the previous one instead of
	// searching from the top, which is most of the cost of registering
	// thousands of paths with random hashes.
	ops []op
}

type op struct {
	cf, seq  int
	key, val []byte
	del      bool
}

var cfIndex = func() map[string]int {
	m := map[string]int{}
	for i, n := range cfNames {
		m[n] = i
	}
	return m
}()

func (t *txn) put(cf string, k, v []byte) {
	t.ops = append(t.ops, op{cf: cfIndex[cf], key: k, val: v})
}

func (t *txn) del(cf string, k []byte) {
	t.ops = append(t.ops, op{cf: cfIndex[cf], key: k, del: true})
}

type refcountVal struct {
	n      uint64
	exists bool // false: the path is (being) unregistered
	dirty  bool
	// wasZero: the database lists the path in "zero" (or it is new), so
	// a count above zero must delete that key; otherwise there is none.
	wasZero bool
}

func (s *Store) newTxn() *txn {
	return &txn{s: s, b: grocksdb.NewWriteBatch(), refcount: map[string]refcountVal{}, content: map[contentKey]contentVal{}}
}

func (t *txn) destroy() { t.b.Destroy() }

func (t *txn) loadRefcount(hash string) (refcountVal, error) {
	if v, ok := t.refcount[hash]; ok {
		return v, nil
	}
	if v, ok := t.fromPrev(hash); ok {
		t.refcount[hash] = v
		return v, nil
	}
	b, err := t.s.get(cfRefcount, []byte(hash))
	if err != nil {
		return refcountVal{}, err
	}
	v := refcountVal{exists: b != nil}
	if b != nil {
		d := decoder{b: b}
		v.n = d.uvarint()
		if d.err != nil {
			return v, fmt.Errorf("refcount of %s: %w", hash, d.err)
		}
		v.wasZero = v.n == 0
	}
	t.refcount[hash] = v
	return v, nil
}

// newPath starts the count of a path being registered at zero.
func (t *txn) newPath(hash string) {
	t.refcount[hash] = refcountVal{exists: true, dirty: true, wasZero: true}
}

// dropPath removes a path's count (it is being unregistered).
func (t *txn) dropPath(hash string) {
	t.refcount[hash] = refcountVal{dirty: true}
}

func (t *txn) addRefcount(hash string, delta int) (uint64, error) {
	v, err := t.loadRefcount(hash)
	if err != nil {
		return 0, err
	}
	if !v.exists {
		return 0, fmt.Errorf("store path with hash %s is not registered", hash)
	}
	if delta < 0 && v.n < uint64(-delta) {
		return 0, fmt.Errorf("refcount of %s would go below zero: the store metadata is inconsistent, run `%s`", hash, hint.Command("store verify", "--repair"))
	}
	v.n = uint64(int64(v.n) + int64(delta))
	v.dirty = true
	t.refcount[hash] = v
	return v.n, nil
}

// fromPrev is the count prev leaves for hash, if prev touches it.
func (t *txn) fromPrev(hash string) (refcountVal, bool) {
	if t.prev == nil {
		return refcountVal{}, false
	}
	v, ok := t.prev.refcount[hash]
	if !ok {
		return refcountVal{}, false
	}
	return refcountVal{n: v.n, exists: v.exists, wasZero: v.exists && v.n == 0}, true
}

func (t *txn) loadContent(k contentKey) (contentVal, error) {
	if v, ok := t.content[k]; ok {
		return v, nil
	}
	if t.prev != nil {
		if v, ok := t.prev.content[k]; ok {
			t.content[k] = v
			return v, nil
		}
	}
	b, err := t.s.get(cfContent, k[:])
	if err != nil {
		return contentVal{}, err
	}
	var v contentVal
	if b != nil {
		if v, err = decodeContent(b); err != nil {
			return v, fmt.Errorf("content count of %s: %w", k.Digest(), err)
		}
	}
	t.content[k] = v
	return v, nil
}

// addContent changes the count of a content and reports its new value.
func (t *txn) addContent(k contentKey, size int64, delta int) (uint64, error) {
	v, err := t.loadContent(k)
	if err != nil {
		return 0, err
	}
	st, err := t.loadStats()
	if err != nil {
		return 0, err
	}
	if delta < 0 && v.count < uint64(-delta) {
		return 0, fmt.Errorf("content count of %s would go below zero: run `%s`", k.Digest(), hint.Command("store verify", "--repair"))
	}
	old := v.count
	v.count = uint64(int64(v.count) + int64(delta))
	v.size = size
	t.content[k] = v
	switch {
	case old == 0 && v.count > 0:
		st.Contents++
		st.ContentBytes += size
	case old > 0 && v.count == 0:
		st.Contents--
		st.ContentBytes -= size
	}
	return v.count, nil
}

func (t *txn) loadStats() (*Stats, error) {
	if t.stats != nil {
		return t.stats, nil
	}
	if t.prev != nil && t.prev.stats != nil {
		st := *t.prev.stats
		t.stats = &st
		return t.stats, nil
	}
	st, err := t.s.readStats()
	if err != nil {
		return nil, err
	}
	t.stats = &st
	return t.stats, nil
}

// commit writes the batch with the WAL synced.
func (t *txn) commit() error {
	t.build()
	if err := t.write(); err != nil {
		return err
	}
	t.s.hot.committed(t.ops)
	return nil
}

// build turns the overlays into operations and puts them, sorted, into
// the write batch.
func (t *txn) build() {
	for h, v := range t.refcount {
		if !v.dirty {
			continue
		}
		k := []byte(h)
		switch {
		case !v.exists:
			t.del(cfRefcount, k)
			t.del(cfZero, k)
		case v.n == 0:
			t.put(cfRefcount, k, appendUvarint(nil, 0))
			t.put(cfZero, k, nil)
		default:
			t.put(cfRefcount, k, appendUvarint(nil, v.n))
			if v.wasZero {
				t.del(cfZero, k)
			}
		}
	}
	for k, v := range t.content {
		if v.count == 0 {
			t.del(cfContent, k[:])
		} else {
			t.put(cfContent, k[:], encodeContent(v))
		}
	}
	if t.stats != nil {
		t.put(cfDefault, keyStats, encodeStats(t.stats))
	}
	// Two operations on one key keep their order (the index breaks ties).
	for i := range t.ops {
		t.ops[i].seq = i
	}
	slices.SortFunc(t.ops, func(a, b op) int {
		if a.cf != b.cf {
			return a.cf - b.cf
		}
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	for _, o := range t.ops {
		h := t.s.cfs[cfNames[o.cf]]
		if o.del {
			t.b.DeleteCF(h, o.key)
		} else {
			t.b.PutCF(h, o.key, o.val)
		}
	}
}

// write commits the built batch with the WAL synced. The hot cache is
// the caller's to update with t.ops once it lands.
func (t *txn) write() error {
	if t.b.Count() == 0 {
		return nil
	}
	if err := t.s.db.Write(t.s.wo, t.b); err != nil {
		return fmt.Errorf("committing to the store database: %w", err)
	}
	return nil
}

// get reads one key; a missing key is (nil, nil).
func (s *Store) get(cf string, key []byte) ([]byte, error) {
	if s.closed {
		return nil, errors.New("store is closed")
	}
	sl, err := s.db.GetCF(s.ro_, s.cfs[cf], key)
	if err != nil {
		return nil, fmt.Errorf("reading store database (%s): %w", cf, err)
	}
	defer sl.Free()
	if !sl.Exists() {
		return nil, nil
	}
	return append([]byte{}, sl.Data()...), nil
}

// multiGet reads many keys of one family in one call; missing keys give
// nil.
func (s *Store) multiGet(cf string, keys [][]byte) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if ci := cfIndex[cf]; !s.ro && hotFamily(ci) {
		vals, missing := s.hot.get(ci, keys)
		if len(missing) == 0 {
			return vals, nil
		}
		mkeys := make([][]byte, len(missing))
		for j, i := range missing {
			mkeys[j] = keys[i]
		}
		mvals, err := s.readMulti(cf, mkeys)
		if err != nil {
			return nil, err
		}
		s.hot.remember(ci, mkeys, mvals)
		for j, i := range missing {
			vals[i] = mvals[j]
		}
		return vals, nil
	}
	return s.readMulti(cf, keys)
}

// readMulti reads keys of family cf from the database.
func (s *Store) readMulti(cf string, keys [][]byte) ([][]byte, error) {
	sls, err := s.db.MultiGetCF(s.ro_, s.cfs[cf], keys...)
	if err != nil {
		return nil, fmt.Errorf("reading store database (%s): %w", cf, err)
	}
	defer sls.Destroy()
	out := make([][]byte, len(keys))
	for i, sl := range sls {
		if sl.Exists() {
			out[i] = append([]byte{}, sl.Data()...)
		}
	}
	return out, nil
}

// prefetch loads into the overlays, in a few batched reads, the counters a
// registration will touch.
func (t *txn) prefetch(refcounts []string, contents []contentKey) error {
	var keys [][]byte
	var hs []string
	for _, h := range refcounts {
		if _, ok := t.refcount[h]; ok {
			continue
		}
		if v, ok := t.fromPrev(h); ok {
			t.refcount[h] = v
			continue
		}
		keys = append(keys, []byte(h))
		hs = append(hs, h)
	}
	vals, err := t.s.multiGet(cfRefcount, keys)
	if err != nil {
		return err
	}
	for i, b := range vals {
		v := refcountVal{exists: b != nil}
		if b != nil {
			d := decoder{b: b}
			v.n = d.uvarint()
			if d.err != nil {
				return fmt.Errorf("refcount of %s: %w", hs[i], d.err)
			}
			v.wasZero = v.n == 0
		}
		t.refcount[hs[i]] = v
	}
	keys = keys[:0]
	var ks []contentKey
	for _, k := range contents {
		if _, ok := t.content[k]; ok {
			continue
		}
		if t.prev != nil {
			if v, ok := t.prev.content[k]; ok {
				t.content[k] = v
				continue
			}
		}
		keys = append(keys, k[:])
		ks = append(ks, k)
		t.content[k] = contentVal{} // dedupe keys; overwritten below
	}
	vals, err = t.s.multiGet(cfContent, keys)
	if err != nil {
		return err
	}
	for i, b := range vals {
		var v contentVal
		if b != nil {
			if v, err = decodeContent(b); err != nil {
				return fmt.Errorf("content count of %s: %w", ks[i].Digest(), err)
			}
		}
		t.content[ks[i]] = v
	}
	return nil
}

func (s *Store) getUint(cf string, key []byte) (uint64, error) {
	b, err := s.get(cf, key)
	if err != nil || b == nil {
		return 0, err
	}
	d := decoder{b: b}
	v := d.uvarint()
	if d.err != nil {
		return 0, fmt.Errorf("reading %s/%s: %w", cf, key, d.err)
	}
	return v, nil
}

func (s *Store) readStats() (Stats, error) {
	b, err := s.get(cfDefault, keyStats)
	if err != nil {
		return Stats{}, err
	}
	st, err := decodeStats(b)
	if err != nil {
		return st, fmt.Errorf("reading store stats: %w", err)
	}
	return st, nil
}

// Stats returns the store-wide totals.
func (s *Store) Stats() (Stats, error) { return s.readStats() }
