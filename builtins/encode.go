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

// encoder is where an encoding is written: into b, and for a large one
// on to sink, which is handed b, then emptied, whenever it holds spill
// bytes or more. A system's encoding (its manifest) is megabytes: it is
// hashed as it is written, through a buffer that stays in the cache,
// rather than built whole first.
type encoder struct {
	b    []byte
	sink *hashSink
}

// hashSink hashes the pieces of an encoding, and compares them with
// want as they come.
type hashSink struct {
	h    *treehash.Stream
	want []byte // what is left to compare
	same bool   // so far
}

func (k *hashSink) write(p []byte) {
	k.h.Write(p)
	k.same = k.same && len(p) <= len(k.want) && bytes.Equal(p, k.want[:len(p)])
	if k.same {
		k.want = k.want[len(p):]
	}
}

// spill is how many bytes an encoder with a sink gathers before it
// hands them on.
const spill = 64 << 10

func (e *encoder) lit(s string) { e.b = append(e.b, s...) }

func (e *encoder) str(s string) {
	if e.sink == nil {
		e.b = appendJSONString(e.b, s)
		return
	}
	e.b = append(e.b, '"')
	for len(s) > spill {
		// Cut where no rune is split (a rune has at most three
		// continuation bytes): either side is escaped as it is within
		// the whole.
		k := spill
		for j := 0; j < utf8.UTFMax-1 && !utf8.RuneStart(s[k]); j++ {
			k--
		}
		e.b = appendJSONText(e.b, s[:k])
		s = s[k:]
		e.spill()
	}
	e.b = appendJSONText(e.b, s)
	e.b = append(e.b, '"')
	e.spill()
}

func (e *encoder) strs(ss []string) {
	e.b = append(e.b, '[')
	for i, s := range ss {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(s)
	}
	e.b = append(e.b, ']')
}

func (e *encoder) spill() {
	if e.sink != nil && len(e.b) >= spill {
		e.sink.write(e.b)
		e.b = e.b[:0]
	}
}

// encode writes the canonical encoding of d, whose inputs are sorted.
func (d *Derivation) encode(e *encoder) {
	e.lit(`{"name":`)
	e.str(d.Name)
	e.lit(`,"version":`)
	e.str(d.Version)
	e.lit(`,"system":`)
	e.str(d.System)
	e.lit(`,"store":`)
	e.str(d.Store)
	e.lit(`,"builder":`)
	e.str(d.Builder)
	e.lit(`,"args":`)
	e.strs(d.Args)
	e.lit(`,"env":{`)
	for i, v := range d.Env {
		if i > 0 {
			e.lit(",")
		}
		e.str(v.Name)
		e.lit(":")
		e.str(v.Value)
	}
	e.lit(`},"inputs":{"drvs":[`)
	for i, in := range d.Drvs {
		if i > 0 {
			e.lit(",")
		}
		e.lit(`{"id":`)
		e.str(in.id)
		e.lit(`,"outputs":`)
		e.strs(in.Outputs)
		e.lit("}")
	}
	e.lit(`],"srcs":[`)
	for i, s := range d.Srcs {
		if i > 0 {
			e.lit(",")
		}
		e.lit(`{"path":`)
		e.str(s.Path)
		e.lit(`,"hash":`)
		e.str(s.TreeHash)
		e.lit("}")
	}
	e.lit(`]},"outputs":`)
	e.strs(d.Outputs)
	if f := d.Fixed; f != nil {
		e.lit(`,"fixed":{"algo":`)
		e.str(f.Algo)
		e.lit(`,"hash":`)
		e.str(f.Hash)
		e.lit(`,"unpack":`)
		e.b = strconv.AppendBool(e.b, f.Unpack)
		e.lit("}")
	}
	e.lit("}")
}

// streamAbove is the size of encoding past which identity hashes it as
// it is written.
const streamAbove = 2 * spill

// identity hashes the canonical encoding of d, and reports whether
// the encoding is want.
func (d *Derivation) identity(want []byte) (treehash.Digest, bool) {
	bp := encBufs.Get().(*[]byte)
	e := encoder{b: (*bp)[:0]}
	var sum treehash.Digest
	var same bool
	if d.encodedSize() > streamAbove {
		k := hashSink{h: streams.Get().(*treehash.Stream), want: want, same: true}
		k.h.Reset()
		k.h.Write(drvPrefix)
		e.sink = &k
		d.encode(&e)
		k.write(e.b)
		sum, same = k.h.Sum(), k.same && len(k.want) == 0
		streams.Put(k.h)
	} else {
		d.encode(&e)
		sum, same = treehash.Sum(drvPrefix, e.b), bytes.Equal(e.b, want)
	}
	if cap(e.b) <= 1<<20 {
		*bp = e.b
		encBufs.Put(bp)
	}
	return sum, same
}

// streams recycles the hashers of large encodings.
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
			x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
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
