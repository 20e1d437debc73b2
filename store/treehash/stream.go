package treehash

import (
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// Stream is a BLAKE3-256 hasher for a long input written in pieces: a
// system's derivation encodes to megabytes, hashed as it is written
// rather than built whole first. It gathers 16 chunks at a time and
// hands them to guts.CompressBuffer, the library's SIMD path (AVX-512
// or AVX2 where the CPU has them), on the caller's goroutine: the
// library's Hasher would copy the input's tail into a fresh buffer and
// start a goroutine for each power-of-two run of chunks of every write.
// Its zero value is ready; it is large (16 KiB), so keep it off hot
// stacks. The digest is the one Sum gives for the same bytes.
type Stream struct {
	buf [guts.MaxSIMD * guts.ChunkSize]byte
	n   int // bytes in buf
	// stack holds the chaining values of complete subtrees, at most one
	// per height (in chunks), as blake3.Hasher does; chunks counts
	// those compressed, a multiple of MaxSIMD, and tells which heights
	// are occupied.
	stack  [64][8]uint32
	chunks uint64
}

// Write adds p to the input. It never fails.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if s.n == 0 && len(p) > len(s.buf) {
			// Whole buffers of p, but the last, straight from p.
			s.push(guts.ChainingValue(guts.CompressBuffer((*[len(s.buf)]byte)(p), len(s.buf), &guts.IV, s.chunks, 0)))
			p = p[len(s.buf):]
			continue
		}
		if s.n == len(s.buf) {
			// Full, and more follows: the buffer is not the last, which
			// the root needs flagged.
			s.push(guts.ChainingValue(guts.CompressBuffer(&s.buf, len(s.buf), &guts.IV, s.chunks, 0)))
			s.n = 0
		}
		c := copy(s.buf[s.n:], p)
		s.n += c
		p = p[c:]
	}
	return n, nil
}

// push adds the chaining value of the MaxSIMD chunks just compressed,
// merging the subtrees it completes.
func (s *Stream) push(cv [8]uint32) {
	const height = 4 // log2(guts.MaxSIMD)
	i := height
	for s.chunks&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(s.stack[i], cv, &guts.IV, 0))
		i++
	}
	s.stack[i] = cv
	s.chunks += guts.MaxSIMD
}

// Sum is the digest of what was written.
func (s *Stream) Sum() Digest {
	n := guts.CompressBuffer(&s.buf, s.n, &guts.IV, s.chunks, 0)
	for i := bits.TrailingZeros64(s.chunks); i < bits.Len64(s.chunks); i++ {
		if s.chunks&(1<<i) != 0 {
			n = guts.ParentNode(s.stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	words := guts.CompressNode(n)
	var d Digest
	for i := range d {
		d[i] = byte(words[i/4] >> (8 * (i % 4)))
	}
	return d
}

// Reset empties s for a new input.
func (s *Stream) Reset() {
	s.n = 0
	s.chunks = 0
}
