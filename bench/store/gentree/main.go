// Command gentree writes a reproducible tree for the ingest benchmark
// (see bench/store/treegen).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nexisos/nexis/bench/store/treegen"
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
	n, err := treegen.Generate(flag.Arg(0), *files, *total, *dup, *seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gentree: %d files, %d bytes\n", *files, n)
}
