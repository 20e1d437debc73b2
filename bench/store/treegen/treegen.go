// Package treegen writes reproducible trees for the store benchmarks:
// many files of mixed sizes, a share of them exact duplicates of earlier
// ones (as in real package sets: licences, locales, icons).
package treegen

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Generate writes files files totalling about size bytes under root, a
// fraction dup of them copies of earlier files, and returns the bytes
// written.
func Generate(root string, files int, size int64, dup float64, seed uint64) (int64, error) {
	rng := rand.New(rand.NewPCG(seed, 42))
	avg := size / int64(max(files, 1))
	var contents [][]byte
	var written int64
	for i := 0; i < files; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("s%02d", (i/50)%20))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return written, err
		}
		var data []byte
		if len(contents) > 0 && rng.Float64() < dup {
			data = contents[rng.IntN(len(contents))]
		} else {
			// Exponential sizes around the average: many small files,
			// a few large ones.
			n := min(int64(rng.ExpFloat64()*float64(avg)), 20*avg)
			data = make([]byte, n)
			for j := 0; j+8 <= len(data); j += 8 {
				v := rng.Uint64()
				for k := 0; k < 8; k++ {
					data[j+k] = byte(v >> (8 * k))
				}
			}
			if int64(len(contents))*avg < 64<<20 {
				contents = append(contents, data)
			}
		}
		mode := os.FileMode(0o644)
		if i%10 == 0 {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), data, mode); err != nil {
			return written, err
		}
		written += int64(len(data))
	}
	return written, nil
}
