// Command regbench measures registration: it prepares n tiny trees in a
// store's buckets (untimed), then registers them with refs references
// each, in batches, and prints paths per second. The store it leaves is
// the one the path-info measurement queries.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	n := flag.Int("n", 20000, "paths to register")
	refs := flag.Int("refs", 3, "references per path (to earlier paths)")
	batch := flag.Int("batch", 1000, "paths per atomic batch")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: regbench [flags] STOREDIR")
		os.Exit(2)
	}
	dir := flag.Arg(0)
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	regs := make([]store.Registration, *n)
	t0 := time.Now()
	for i := range regs {
		d := blake3.Sum256(fmt.Appendf(nil, "regbench %d", i))
		p := storepath.Path{Hash: storepath.EncodeHash(d[:]), Name: fmt.Sprintf("pkg-%d", i)}
		phys := s.Physical(p)
		if err := os.MkdirAll(phys, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		content := fmt.Appendf(nil, "file of %d\n", i)
		if err := os.WriteFile(filepath.Join(phys, "f"), content, 0o444); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		files := []treehash.File{
			{Path: "", Type: treehash.Directory},
			{Path: "f", Type: treehash.Regular, Size: int64(len(content)), Digest: blake3.Sum256(content)},
		}
		r := store.Registration{Path: p, Files: files, TreeHash: treehash.Hash(files)}
		for j := 0; j < *refs && i > 0; j++ {
			r.References = append(r.References, regs[rng.IntN(i)].Path)
		}
		regs[i] = r
	}
	prep := time.Since(t0)
	// A CPU profile of the timed part, for finding where registration
	// spends its time.
	if pf := os.Getenv("REGBENCH_PROFILE"); pf != "" {
		f, _ := os.Create(pf)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	t1 := time.Now()
	var batches [][]store.Registration
	for i := 0; i < len(regs); i += *batch {
		batches = append(batches, regs[i:min(i+*batch, len(regs))])
	}
	if _, err := s.RegisterBatches(batches); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	el := time.Since(t1)
	cpu := cpuTime() - cpu0
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// On a shared machine the wall clock includes waiting for a CPU; the
	// process's own CPU time says what an idle machine would do.
	fmt.Printf("register: %d paths, %d refs each, batches of %d: %.2fs wall, %.0f paths/s; %.2fs CPU, %.0f paths per CPU-second (preparing the trees took %.1fs)\n",
		*n, *refs, *batch, el.Seconds(), float64(*n)/el.Seconds(), cpu.Seconds(), float64(*n)/cpu.Seconds(), prep.Seconds())
	fmt.Printf("sample: %s\n", s.Logical(regs[len(regs)/2].Path))
}
