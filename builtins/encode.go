package builtins

import (
	"bytes"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/nexisos/nexis/store/treehash"
)

// The canonical encoding (see the package documentation) is written by
// hand rather than through encoding/json: reflection over a struct built
// for the purpose was most of what sealing a derivation cost, and a
// 100,000-package config seals 200,000 of them. The bytes are those
// encoding/json gives with HTML escaping off (the tests compare the two
// on every derivation of the examples and on random strings), and they
// are not kept: the identity and the paths are computed from them once,
// and Encoding builds them again for the few who print them.

// drvPrefix starts the bytes a derivation's identity is hashed from.
var drvPrefix = []byte("nexis-drv-1\x00")

// encBufs recycles the buffers encodings are built in.
var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// hashSink hashes the pieces of a large encoding as it is written, and
// compares them with want as they come. A system's encoding (its
// manifest) is megabytes: it is hashed through a buffer that stays in
// the cache rather than built whole first. The encoding is appended to
// a slice passed by value, not held in a struct: stores through a
// pointer cost a write barrier each while the collector runs.
type hashSink struct {
	h    *treehash.Stream
	want []byte // what is left to compare
	same bool   // so far
}

// spill is how many bytes the encoding of a derivation with a sink
// gathers before they are hashed.
const spill = 64 << 10

// flush hashes b, when it holds spill bytes or more, and empties it.
func (k *hashSink) flush(b []byte) []byte {
	if len(b) < spill {
		return b
	}
	k.write(b)
	return b[:0]
}

func (k *hashSink) write(p []byte) {
	k.h.Write(p)
	k.same = k.same && len(p) <= len(k.want) && bytes.Equal(p, k.want[:len(p)])
	if k.same {
		k.want = k.want[len(p):]
	}
}

// str appends s as a JSON string, and with a sink hashes what has
// gathered.
func (k *hashSink) str(b []byte, s string) []byte {
	if k == nil {
		return appendJSONString(b, s)
	}
	b = append(b, '"')
	for len(s) > spill {
		// Cut where no rune is split (a rune has at most three
		// continuation bytes): either side is escaped as it is within
		// the whole.
		c := spill
		for j := 0; j < utf8.UTFMax-1 && !utf8.RuneStart(s[c]); j++ {
			c--
		}
		b = k.flush(appendJSONText(b, s[:c]))
		s = s[c:]
	}
	return k.flush(append(appendJSONText(b, s), '"'))
}

func (k *hashSink) strs(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = k.str(b, s)
	}
	return append(b, ']')
}

// appendEncoding appends the canonical encoding of d, whose inputs are
// sorted, and with a sink hashes it as it goes.
func (d *Derivation) appendEncoding(b []byte, k *hashSink) []byte {
	b = append(b, `{"name":`...)
	b = k.str(b, d.Name)
	b = append(b, `,"version":`...)
	b = k.str(b, d.Version)
	b = append(b, `,"system":`...)
	b = k.str(b, d.System)
	b = append(b, `,"store":`...)
	b = k.str(b, d.Store)
	b = append(b, `,"builder":`...)
	b = k.str(b, d.Builder)
	b = append(b, `,"args":`...)
	b = k.strs(b, d.Args)
	b = append(b, `,"env":{`...)
	for i, e := range d.Env {
		if i > 0 {
			b = append(b, ',')
		}
		b = k.str(b, e.Name)
		b = append(b, ':')
		b = k.str(b, e.Value)
	}
	b = append(b, `},"inputs":{"drvs":[`...)
	for i, in := range d.Drvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = k.str(b, in.id)
		b = append(b, `,"outputs":`...)
		b = k.strs(b, in.Outputs)
		b = append(b, '}')
	}
	b = append(b, `],"srcs":[`...)
	for i, s := range d.Srcs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"path":`...)
		b = k.str(b, s.Path)
		b = append(b, `,"hash":`...)
		b = k.str(b, s.TreeHash)
		b = append(b, '}')
	}
	b = append(b, `]},"outputs":`...)
	b = k.strs(b, d.Outputs)
	if f := d.Fixed; f != nil {
		b = append(b, `,"fixed":{"algo":`...)
		b = k.str(b, f.Algo)
		b = append(b, `,"hash":`...)
		b = k.str(b, f.Hash)
		b = append(b, `,"unpack":`...)
		b = strconv.AppendBool(b, f.Unpack)
		b = append(b, '}')
	}
	return append(b, '}')
}

// streamAbove is the size of encoding past which identity hashes it as
// it is written.
const streamAbove = 2 * spill

// identity hashes the canonical encoding of d, and reports whether
// the encoding is want.
func (d *Derivation) identity(want []byte) (treehash.Digest, bool) {
	bp := encBufs.Get().(*[]byte)
	b := (*bp)[:0]
	h := streams.Get().(*treehash.Stream)
	h.Reset()
	h.Write(drvPrefix)
	var same bool
	if d.encodedSize() > streamAbove {
		k := hashSink{h: h, want: want, same: true}
		b = d.appendEncoding(b, &k)
		k.write(b)
		same = k.same && len(k.want) == 0
	} else {
		b = d.appendEncoding(b, nil)
		h.Write(b)
		same = bytes.Equal(b, want)
	}
	sum := h.Sum()
	streams.Put(h)
	if cap(b) <= 1<<20 {
		*bp = b
		encBufs.Put(bp)
	}
	return sum, same
}

// streams recycles the hashers of encodings. A Stream hands the
// library's SIMD path all the whole chunks it has, where treehash.Sum
// feeds a Hasher one chunk at a time: as fast for a package of a few
// dependencies (under 2 KiB), 1.8x for 5 KB, 3x for 9 KB (a derivation
// of many inputs, or a config file's).
var streams = sync.Pool{New: func() any { return new(treehash.Stream) }}

// encodedSize is about the length of d's encoding: a little more,
// unless most of its text is characters JSON escapes.
func (d *Derivation) encodedSize() int {
	n := 256 + len(d.Name) + len(d.Version) + len(d.System) + len(d.Store) + len(d.Builder)
	for _, a := range d.Args {
		n += len(a) + 3
	}
	for _, e := range d.Env {
		n += len(e.Name) + len(e.Value) + 6
	}
	for _, in := range d.Drvs {
		n += len(in.id) + 32
		for _, o := range in.Outputs {
			n += len(o) + 3
		}
	}
	for _, s := range d.Srcs {
		n += len(s.Path) + len(s.TreeHash) + 24
	}
	for _, o := range d.Outputs {
		n += len(o) + 3
	}
	return n + n/8
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json writes a string without
// HTML escaping: quotes, backslashes and control characters escaped,
// invalid UTF-8 as U+FFFD, and U+2028 and U+2029 escaped (JSONP).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONText(b, s)
	return append(b, '"')
}

// appendJSONText is appendJSONString without the quotes.
func appendJSONText(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		// A system's manifest is megabytes of JSON, a quote every nine
		// bytes: looked at 8 bytes at a time, and from a word that holds
		// one straight to it (special8), rather than a byte at a time.
		for i+8 <= len(s) {
			// One bounds check for the word, not one for each byte.
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			if m := special8(x); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(s) && jsonPlain[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				// DEL, which jsonPlain leaves to here.
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// special8 has the high bit set in each byte of x (8 bytes of a string,
// the first lowest) that JSON does not write as it is (below 0x20, a
// quote, a backslash, not ASCII), and maybe in some after the first such
// byte, never before it: its trailing zeros count the plain bytes that
// start x.
func special8(x uint64) uint64 {
	// (v - ones) &^ v has a high bit set where a byte of v is zero, or
	// after one that is (a borrow): the first is exact.
	below := (x - 0x20*ones) &^ x
	quote := x ^ '"'*ones
	backslash := x ^ '\\'*ones
	return (x | below | (quote-ones)&^quote | (backslash-ones)&^backslash) & highs
}
