// Command gentree writes a reproducible tree for the ingest benchmark:
// many files of mixed sizes, a share of them exact duplicates of earlier
// ones (as in real package sets: licences, locales, icons).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	files := flag.Int("files", 2000, "number of files")
	total := flag.Int64("size", 50<<20, "total size in bytes")
	dup := flag.Float64("dup", 0.3, "fraction of files that duplicate an earlier file")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gentree [flags] DIR")
		os.Exit(2)
	}
	root := flag.Arg(0)
	rng := rand.New(rand.NewPCG(*seed, 42))
	avg := *total / int64(*files)
	var contents [][]byte
	var written int64
	for i := 0; i < *files; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("s%02d", (i/50)%20))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var data []byte
		if len(contents) > 0 && rng.Float64() < *dup {
			data = contents[rng.IntN(len(contents))]
		} else {
			// Exponential sizes around the average: many small files,
			// a few large ones.
			n := int64(rng.ExpFloat64() * float64(avg))
			n = min(n, 20*avg)
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
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		written += int64(len(data))
	}
	fmt.Fprintf(os.Stderr, "gentree: %d files, %d bytes\n", *files, written)
}
