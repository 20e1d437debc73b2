package lang

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkEvalWarmEdit10k evaluates the workload of bench/evalcmp
// (10,000 packages, each with a fixed-output source, a configure build
// and up to three dependencies) with the package cache, the last
// package's version changed before each evaluation (alternating two
// values), and prints the tree as `nexis eval` does: the warm,
// one-package-edited path. Target: the whole `nexis eval` process under
// 100 ms; this measures it without the process start.
func BenchmarkEvalWarmEdit10k(b *testing.B) {
	const n = 10_000
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString("[system]\nhostname = \"bench\"\n\n")
	for i := range n {
		fmt.Fprintf(&sb, "[[packages]]\nname = \"pkg%d\"\n", i)
		var deps []string
		for k := 1; k <= 3 && i-k*7 >= 0; k++ {
			deps = append(deps, fmt.Sprintf("\"pkg%d\"", i-k*7))
		}
		if len(deps) > 0 {
			fmt.Fprintf(&sb, "dependencies = [%s]\n", strings.Join(deps, ", "))
		}
		fmt.Fprintf(&sb, "version = \"1.%d\"\nsource = \"https://example.org/pkg%d-1.%d.tar.gz\"\n", i, i, i)
		fmt.Fprintf(&sb, "hash = \"sha256:%064x\"\nbuild_system = \"configure\"\nbuild_flags = [\"--enable-static\"]\n\n", i)
	}
	text := sb.String()
	last := fmt.Sprintf("version = \"1.%d\"\n", n-1)
	edited := strings.Replace(text, last, fmt.Sprintf("version = \"1.%d.1\"\n", n-1), 1)
	config := filepath.Join(dir, "config.toml")
	opts := Options{Cache: true, CacheDir: filepath.Join(dir, "cache")}
	for _, t := range []string{edited, text} {
		if err := os.WriteFile(config, []byte(t), 0o644); err != nil {
			b.Fatal(err)
		}
		if _, err := Eval(config, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		b.StopTimer()
		next := edited
		if i++; i%2 == 0 {
			next = text
		}
		if err := os.WriteFile(config, []byte(next), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sys, err := Eval(config, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteTree(io.Discard, sys.Drv); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}
