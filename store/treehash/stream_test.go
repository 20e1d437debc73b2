package treehash

import (
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
)

// TestStreamIsSum: Stream gives the library's digest for inputs of
// every size around its chunk, buffer and subtree boundaries, written in
// pieces of any size, and again after a Reset.
func TestStreamIsSum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	const buf = 16 << 10
	sizes := []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 5000, buf - 1, buf, buf + 1,
		2*buf - 1, 2 * buf, 2*buf + 1, 3*buf + 5, 16 * buf, 16*buf + 1, 17*buf + 1000, 1 << 20, len(data)}
	for range 40 {
		sizes = append(sizes, r.IntN(len(data)))
	}
	var s Stream
	for _, n := range sizes {
		for _, piece := range []int{1 << 30, 1, 7, 1000, buf, buf + 3, r.IntN(100000) + 1} {
			if piece == 1 && n > 70000 {
				continue
			}
			s.Reset()
			for p := data[:n]; len(p) > 0; {
				k := min(piece, len(p))
				s.Write(p[:k])
				p = p[k:]
			}
			if got, want := s.Sum(), Digest(blake3.Sum256(data[:n])); got != want {
				t.Fatalf("%d bytes in pieces of %d: %x, want %x", n, piece, got, want)
			}
		}
	}
}

// BenchmarkStream hashes a system derivation's 3 MB encoding written in
// 64 KiB pieces, and a config part of 9 KB through Sum, beside the
// library's one-shot Sum256 of the same bytes, the floor they are
// measured against.
func BenchmarkStream(b *testing.B) {
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		s := new(Stream)
		for b.Loop() {
			s.Reset()
			for p := data; len(p) > 0; p = p[min(len(p), 64<<10):] {
				s.Write(p[:min(len(p), 64<<10)])
			}
			s.Sum()
		}
	})
	b.Run("library", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			blake3.Sum256(data)
		}
	})
	part := data[:9<<10]
	b.Run("sum-part", func(b *testing.B) {
		b.SetBytes(int64(len(part)))
		for b.Loop() {
			Sum(part)
		}
	})
	b.Run("library-part", func(b *testing.B) {
		b.SetBytes(int64(len(part)))
		for b.Loop() {
			blake3.Sum256(part)
		}
	})
}
