package store

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/bench/store/treegen"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Modest defaults; the sizes are
// -bench.files=20000 -bench.size=524288000 -bench.paths=100000.
var (
	benchFiles = flag.Int("bench.files", 2000, "files in the ingest benchmark's tree")
	benchSize  = flag.Int64("bench.size", 50<<20, "bytes in the ingest benchmark's tree")
	benchPaths = flag.Int("bench.paths", 20000, "paths per round of the registration benchmark")
	benchStore = flag.String("bench.store", "", "OpenQuery: an existing store `DIR` (as regbench leaves it) instead of building one")
	benchPath  = flag.String("bench.path", "", "OpenQuery: the path to query in -bench.store")
)

// BenchmarkIngest stores a generated tree (30% duplicates) with AddPath;
// BenchmarkCopyFloor copies it with cp -a: the floor to compare with.
func BenchmarkIngest(b *testing.B) {
	src := filepath.Join(b.TempDir(), "tree")
	n, err := treegen.Generate(src, *benchFiles, *benchSize, 0.3, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "store")
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.AddPath(src, "tree"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

func BenchmarkCopyFloor(b *testing.B) {
	src := filepath.Join(b.TempDir(), "tree")
	n, err := treegen.Generate(src, *benchFiles, *benchSize, 0.3, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(b.TempDir(), "copy")
		if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v: %s", err, out)
		}
	}
}

// BenchmarkRegister registers paths with 3 references each in batches of
// 1000 (RegisterBatches); it reports paths/s.
func BenchmarkRegister(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := Open(filepath.Join(b.TempDir(), "store"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		regs := benchRegistrations(b, s)
		b.StartTimer()
		if _, err := s.RegisterBatches(benchBatches(regs)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(*benchPaths*b.N)/b.Elapsed().Seconds(), "paths/s")
}

// BenchmarkOpenQuery is the store's part of a one-shot `path-info`:
// open read-only, query one path with its references, close.
func BenchmarkOpenQuery(b *testing.B) {
	if *benchStore != "" {
		s, err := Open(*benchStore, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		target, _, err := s.ParsePath(*benchPath)
		s.Close()
		if err != nil {
			b.Fatal(err)
		}
		benchOpenQuery(b, *benchStore, target)
		return
	}
	dir := filepath.Join(b.TempDir(), "store")
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	regs := benchRegistrations(b, s)
	if _, err := s.RegisterBatches(benchBatches(regs)); err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ResetTimer()
	benchOpenQuery(b, dir, regs[len(regs)/2].Path)
}

func benchOpenQuery(b *testing.B, dir string, target storepath.Path) {
	for i := 0; i < b.N; i++ {
		r, err := Open(dir, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.QueryPathInfo(target); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// benchBatches splits regs into batches of 1000.
func benchBatches(regs []Registration) [][]Registration {
	var out [][]Registration
	for j := 0; j < len(regs); j += 1000 {
		out = append(out, regs[j:min(j+1000, len(regs))])
	}
	return out
}

// benchRegistrations makes *benchPaths empty trees in s's buckets and
// their registrations, each referring to up to 3 earlier ones.
func benchRegistrations(b *testing.B, s *Store) []Registration {
	b.Helper()
	regs := make([]Registration, *benchPaths)
	for j := range regs {
		d := blake3.Sum256(fmt.Appendf(nil, "bench %d", j))
		p := storepath.Path{Hash: storepath.EncodeHash(d[:]), Name: "p"}
		if err := os.MkdirAll(s.Physical(p), 0o755); err != nil {
			b.Fatal(err)
		}
		files := []treehash.File{{Path: "", Type: treehash.Directory}}
		regs[j] = Registration{Path: p, Files: files, TreeHash: treehash.Hash(files)}
		for k := 0; k < 3 && j > 0; k++ {
			regs[j].References = append(regs[j].References, regs[(j*7+k*13)%j].Path)
		}
	}
	return regs
}

// BenchmarkIngestPoolHits stores the generated tree again under another
// name into a store that already holds it: every file's content is in
// the pool, so every file is a dedup hit, and each pool entry is checked
// (its bytes hashed) before it is linked. BenchmarkCopyFloor is the floor.
func BenchmarkIngestPoolHits(b *testing.B) {
	src := filepath.Join(b.TempDir(), "tree")
	n, err := treegen.Generate(src, *benchFiles, *benchSize, 0.3, 1)
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(filepath.Join(b.TempDir(), "store"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddPath(src, "tree"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.AddPath(src, fmt.Sprintf("again-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}
