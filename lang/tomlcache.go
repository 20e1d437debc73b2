package lang

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/nexisos/nexis/store/treehash"
)

// The decoded parts of a large config (see tomlsplit.go) are kept beside
// the package cache, by the digest of their text, under the same rules
// (openCacheFile; a digest of the file's contents): a part whose text is
// unchanged is not decoded again. A part holding a date or time is not
// kept. A damaged file is ignored.
//
// With a part of packages are kept the digests of its entries'
// encodings, which the package cache keys packages by (packageKey): an
// entry found in the cache is neither encoded nor hashed again.

var tomlCacheMagic = []byte("nexis toml cache 2\n")

// tomlCache holds the parts read from disk and those of this decoding;
// write does nothing on a nil cache. The parts of a document are looked
// up in parallel, and kept afterwards by the one goroutine decoding it.
//
// A part of packages decoded this time is encoded where it is decoded,
// its entries normalised first: the package cache needs the digests of
// their encodings (encodePackages). The part before the packages is
// kept as its value and encoded only when the file is written, which
// eval does while the packages are evaluated. Either way the values are
// the config's, merged and normalised (config.go), which encode to what
// decodes to the same config: normalise changes only arrays of tables
// nested in a part, which it makes []any as it would the same arrays
// read back, and dates, which a kept part holds none of.
type tomlCache struct {
	file  string
	old   map[treehash.Digest]keptPart // by the digest of the part's text
	now   map[treehash.Digest]keptPart // the parts of this config, from old
	fresh map[treehash.Digest]freshPart
	read  chan struct{} // closed when old is read
	// decoded counts the parts decoded this time and kept.
	decoded int

	// entries are the digests of the [[packages]] entries decoded in
	// parts, by the entry's map (mapID): set while the config is read,
	// one file after another, and only read once it is.
	entries map[uintptr]treehash.Digest
}

// keptPart is a part as the file keeps it: its encoded value, and for a
// part of packages the digest of each entry's encoding, in order.
type keptPart struct {
	enc     []byte
	entries []byte // 32 bytes an entry
}

// freshPart is a part decoded this time: a part of packages encoded
// (its entries' digests were needed), the part before them as its
// value, encoded when the file is written.
type freshPart struct {
	kept  keptPart
	value map[string]any
}

// mapID is what tells m from every other map while it lives. It is not
// a pointer the collector follows: the digests must not keep an entry
// that Options.NoGlobals let go. An address is asked for only of a
// config's entry, while the config holds it, and every entry is made
// (decoded) before any is let go: no two share an address.
func mapID(m map[string]any) uintptr { return uintptr(*(*unsafe.Pointer)(unsafe.Pointer(&m))) }

// entryDigest returns the digest of package entry e's encoding
// (encodeValue), if e was decoded in parts.
func (c *tomlCache) entryDigest(e map[string]any) (treehash.Digest, bool) {
	if c == nil {
		return treehash.Digest{}, false
	}
	d, ok := c.entries[mapID(e)]
	return d, ok
}

// forget lets go of the entries' digests: only the packages' keys need
// them, and those are made (5 MB at 100,000 packages).
func (c *tomlCache) forget() {
	if c != nil {
		c.entries = nil
	}
}

// decodedFrom records the digests of list's entries (32 bytes each, in
// order), unless there is not one for each.
func (c *tomlCache) decodedFrom(list []map[string]any, digests []byte) {
	if len(digests) != len(list)*len(treehash.Digest{}) {
		return
	}
	if c.entries == nil {
		c.entries = make(map[uintptr]treehash.Digest, 1024)
	}
	for i, e := range list {
		c.entries[mapID(e)] = treehash.Digest(digests[i*32 : i*32+32])
	}
}

// encodePackages encodes v, a part of packages, as the file keeps it:
// its entries are normalised first, as the config will be (normalise
// changes them in place, and again changes nothing), so each entry's
// encoding is the one packageKey would make of it.
func encodePackages(v map[string]any, textLen int) (keptPart, bool) {
	list, ok := v["packages"].([]map[string]any)
	if !ok || len(v) != 1 {
		return keptPart{}, false
	}
	// An entry encodes to about what its text takes (a tenth less for
	// the 10,000 packages of bench/evalcmp): a buffer of a guess per
	// entry grew once for each part, and the decoded config's garbage
	// was a fifth larger.
	b := binary.AppendUvarint(append(make([]byte, 0, textLen+64), 'm'), 1)
	b = append(binary.AppendUvarint(b, uint64(len("packages"))), "packages"...)
	b = binary.AppendUvarint(append(b, 'A'), uint64(len(list)))
	digests := make([]byte, 0, len(list)*len(treehash.Digest{}))
	for _, e := range list {
		normalise(e)
		start := len(b)
		if b, ok = encodeValue(b, e); !ok {
			return keptPart{}, false
		}
		d := treehash.Sum(b[start:])
		digests = append(digests, d[:]...)
	}
	return keptPart{b, digests}, true
}

// openTOMLCache reads file, if it can be believed and is whole, while
// the config is read and cut: the parts are looked up once it is read.
func openTOMLCache(file string) *tomlCache {
	if file == "" {
		return nil
	}
	c := &tomlCache{file: file, now: map[treehash.Digest]keptPart{}, fresh: map[treehash.Digest]freshPart{}, read: make(chan struct{})}
	go func() {
		defer close(c.read)
		c.old = readTOMLCache(file)
	}()
	return c
}

// readTOMLCache returns the parts kept in file, nil for none.
func readTOMLCache(file string) map[treehash.Digest]keptPart {
	f, size, ok := openCacheFile(file)
	if !ok {
		return nil
	}
	b := make([]byte, size)
	_, err := io.ReadFull(f, b)
	f.Close()
	n := len(tomlCacheMagic)
	if err != nil || !bytes.HasPrefix(b, tomlCacheMagic) || len(b) < n+32 {
		return nil
	}
	body := b[n+32:]
	if sum := treehash.Sum(body); !bytes.Equal(sum[:], b[n:n+32]) {
		return nil
	}
	old := map[treehash.Digest]keptPart{}
	for len(body) > 0 {
		var k treehash.Digest
		if len(body) < len(k) {
			return nil
		}
		copy(k[:], body)
		body = body[len(k):]
		l, m := binary.Uvarint(body)
		if m <= 0 || l > uint64(len(body)-m) {
			return nil
		}
		enc := body[m : m+int(l)]
		body = body[m+int(l):]
		n, m := binary.Uvarint(body)
		if m <= 0 || n > uint64(len(body)-m)/uint64(len(k)) {
			return nil
		}
		size := int(n) * len(k)
		old[k] = keptPart{enc, body[m : m+size]}
		body = body[m+size:]
	}
	return old
}

// get returns the decoded value of the part kept under key (the digest
// of its text), and its entries' digests.
func (c *tomlCache) get(key treehash.Digest) (map[string]any, []byte, bool) {
	<-c.read
	kept, ok := c.old[key]
	if !ok {
		return nil, nil, false
	}
	var d valueDecoder
	v, rest, err := d.value(kept.enc, 0)
	m, isMap := v.(map[string]any)
	if err != nil || len(rest) != 0 || !isMap {
		return nil, nil, false
	}
	return m, kept.entries, true
}

// keep keeps the part found under key for this config.
func (c *tomlCache) keep(key treehash.Digest) { c.now[key] = c.old[key] }

// put keeps a part decoded this time under key.
func (c *tomlCache) put(key treehash.Digest, p freshPart) {
	c.fresh[key] = p
	c.decoded++
}

// keepable says whether v holds only what encodeValue encodes.
func keepable(v any) bool {
	switch x := v.(type) {
	case string, int64, float64, bool:
		return true
	case []any:
		for _, e := range x {
			if !keepable(e) {
				return false
			}
		}
		return true
	case []map[string]any:
		for _, e := range x {
			if !keepable(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !keepable(e) {
				return false
			}
		}
		return true
	}
	return false
}

// write stores the parts of this config, unless they are what was read
// or nearly so (see worthWriting). The parts are written to the file as
// they are encoded, one scratch buffer for those encoded then.
func (c *tomlCache) write() {
	if c == nil {
		return
	}
	<-c.read
	// The parts' encodings are of no use once written, and the config
	// lives as long as the evaluation.
	defer func() { c.now, c.fresh = nil, nil }()
	parts := len(c.now) + len(c.fresh)
	if parts == 0 || !worthWriting(len(c.fresh), parts, len(c.old)) {
		return
	}
	keys := make([]treehash.Digest, 0, parts)
	for k := range c.now {
		keys = append(keys, k)
	}
	for k := range c.fresh {
		if _, dup := c.now[k]; !dup {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b treehash.Digest) int { return bytes.Compare(a[:], b[:]) })
	writeHashed(c.file, tomlCacheMagic, func(w io.Writer) error {
		// The parts' encodings are written as they are, between small
		// heads gathered in bw.
		bw := bufio.NewWriterSize(w, 64<<10)
		var scratch, head []byte
		for _, k := range keys {
			p, ok := c.now[k]
			if !ok {
				f := c.fresh[k]
				if p = f.kept; p.enc == nil {
					if scratch, ok = encodeValue(scratch[:0], f.value); !ok {
						continue
					}
					p.enc = scratch
				}
			}
			head = binary.AppendUvarint(append(head[:0], k[:]...), uint64(len(p.enc)))
			bw.Write(head)
			bw.Write(p.enc)
			bw.Write(binary.AppendUvarint(head[:0], uint64(len(p.entries)/len(k))))
			bw.Write(p.entries)
		}
		return bw.Flush()
	})
}

// encodeValue appends a decoded TOML value (as BurntSushi/toml gives
// it); false for a date or time, which is not kept. The TOML part cache
// stores these bytes, and the package cache keys entries by them.
func encodeValue(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		b = binary.AppendUvarint(append(b, 's'), uint64(len(x)))
		return append(b, x...), true
	case int64:
		return binary.AppendVarint(append(b, 'i'), x), true
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, 'f'), math.Float64bits(x)), true
	case bool:
		if x {
			return append(b, 't'), true
		}
		return append(b, 'F'), true
	case []any:
		b = binary.AppendUvarint(append(b, 'a'), uint64(len(x)))
		for _, e := range x {
			var ok bool
			if b, ok = encodeValue(b, e); !ok {
				return b, false
			}
		}
		return b, true
	case []map[string]any:
		b = binary.AppendUvarint(append(b, 'A'), uint64(len(x)))
		for _, e := range x {
			var ok bool
			if b, ok = encodeValue(b, e); !ok {
				return b, false
			}
		}
		return b, true
	case map[string]any:
		b = binary.AppendUvarint(append(b, 'm'), uint64(len(x)))
		// Package keys encode every [[packages]] entry: their few keys
		// are sorted without a heap slice.
		var buf [16]string
		keys := buf[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
			var ok bool
			if b, ok = encodeValue(b, x[k]); !ok {
				return b, false
			}
		}
		return b, true
	}
	return b, false
}

var errTOMLCache = errors.New("damaged TOML cache entry")

// view is b as a string, without copying it: decoded values are made
// from a cache file's contents, which are never written after they are
// read, and which the strings keep (most of the file is strings).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func decodeLen(b []byte) (int, []byte, error) {
	n, m := binary.Uvarint(b)
	if m <= 0 || n > uint64(len(b)-m) {
		return 0, nil, errTOMLCache
	}
	return int(n), b[m:], nil
}

// valueDecoder reads what encodeValue wrote. The strings it gives as
// values are boxed in slabs of its own rather than each in an
// allocation of its own (two fifths of the decoding).
type valueDecoder struct {
	strs []string
}

// eface is how Go lays out a value of type any.
type eface struct{ typ, data unsafe.Pointer }

var stringType = func() unsafe.Pointer { var x any = ""; return (*eface)(unsafe.Pointer(&x)).typ }()

// box returns s as a value of type any, as any(s) does, its header in
// the current slab: an any holding a string points to a header that is
// never written again, as these are not.
func (d *valueDecoder) box(s string) any {
	if len(d.strs) == 0 {
		d.strs = make([]string, 128)
	}
	p := &d.strs[0]
	*p = s
	d.strs = d.strs[1:]
	var x any
	*(*eface)(unsafe.Pointer(&x)) = eface{stringType, unsafe.Pointer(p)}
	return x
}

func (d *valueDecoder) value(b []byte, depth int) (any, []byte, error) {
	if len(b) == 0 || depth > DefaultMaxDepth*2 {
		return nil, nil, errTOMLCache
	}
	tag, b := b[0], b[1:]
	switch tag {
	case 's':
		n, b, err := decodeLen(b)
		if err != nil {
			return nil, nil, err
		}
		return d.box(view(b[:n])), b[n:], nil
	case 'i':
		v, m := binary.Varint(b)
		if m <= 0 {
			return nil, nil, errTOMLCache
		}
		return v, b[m:], nil
	case 'f':
		if len(b) < 8 {
			return nil, nil, errTOMLCache
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:], nil
	case 't':
		return true, b, nil
	case 'F':
		return false, b, nil
	case 'a':
		n, b, err := decodeLen(b)
		if err != nil {
			return nil, nil, err
		}
		list := make([]any, n)
		for i := range list {
			if list[i], b, err = d.value(b, depth+1); err != nil {
				return nil, nil, err
			}
		}
		return list, b, nil
	case 'A':
		n, b, err := decodeLen(b)
		if err != nil {
			return nil, nil, err
		}
		tables := make([]map[string]any, n)
		for i := range tables {
			var v any
			if v, b, err = d.value(b, depth+1); err != nil {
				return nil, nil, err
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, nil, errTOMLCache
			}
			tables[i] = m
		}
		return tables, b, nil
	case 'm':
		n, b, err := decodeLen(b)
		if err != nil {
			return nil, nil, err
		}
		m := make(map[string]any, min(n, len(b)))
		for range n {
			l, rest, err := decodeLen(b)
			if err != nil {
				return nil, nil, err
			}
			k := view(rest[:l])
			var v any
			if v, b, err = d.value(rest[l:], depth+1); err != nil {
				return nil, nil, err
			}
			m[k] = v
		}
		return m, b, nil
	}
	return nil, nil, errTOMLCache
}
