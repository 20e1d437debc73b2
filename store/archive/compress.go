package archive

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Compression names how an archive is stored or sent.
const (
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// maxWindow bounds the memory a hostile zstd frame can make a decoder
// allocate; our encoder's windows are far smaller.
const maxWindow = 32 << 20

// Compress returns a writer that zstd-compresses into w; Close flushes
// it (and does not close w).
func Compress(w io.Writer, compression string) (io.WriteCloser, error) {
	switch compression {
	case CompressionNone:
		return nopCloser{w}, nil
	case CompressionZstd:
		// One goroutine per encoder: callers compress several archives
		// at once, which is where the parallelism is.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("unknown compression %q: want zstd or none", compression)
}

// decoders keeps zstd decoders between archives: a decoder's buffers
// cost more to allocate and clear than a small archive costs to decode.
var decoders sync.Pool

// Decompress returns a reader of the uncompressed stream in r; Close
// releases the decoder (and does not close r).
func Decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	switch compression {
	case CompressionNone:
		return io.NopCloser(r), nil
	case CompressionZstd:
		if zr, ok := decoders.Get().(*zstd.Decoder); ok {
			if err := zr.Reset(r); err == nil {
				return &zstdReader{zr}, nil
			}
			zr.Close()
		}
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return &zstdReader{zr}, nil
	}
	return nil, fmt.Errorf("unknown compression %q: want zstd or none", compression)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type zstdReader struct{ *zstd.Decoder }

// Close returns the decoder to the pool, detached from its reader.
func (z *zstdReader) Close() error {
	if z.Decoder == nil {
		return nil
	}
	if err := z.Decoder.Reset(nil); err != nil {
		z.Decoder.Close()
	} else {
		decoders.Put(z.Decoder)
	}
	z.Decoder = nil
	return nil
}
