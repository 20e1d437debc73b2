// Command build measures what sandboxed building costs over running the
// same shell snippets directly.
//
// It generates a graph of N trivial derivations (each writes a file and
// reads the files of up to 3 earlier ones), builds it with `nexis build
// -j J` into a fresh store, and runs the same N snippets sequentially with
// /bin/sh and no sandbox: the floor. It prints the wall times, their
// ratio, and the sandbox overhead per build (from a -j 1 run, minus the
// evaluation time and the floor, divided by N).
//
// Builds run in the stdenv's sandbox (docs/build-model.md), from the
// tarballs scripts/make-stdenv made: each fresh store gets them with
// `nexis store add-stdenv` first, timed apart as the one-time import, so
// the per-build overhead is the sandbox's and not the import's.
//
//	make            # bin/nexis and bin/nexis-sandbox-init
//	scripts/make-stdenv
//	go run ./bench/build -nexis bin/nexis
//
// Needs root (the sandbox does).
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var (
	nexis  = flag.String("nexis", "bin/nexis", "the nexis binary")
	n      = flag.Int("n", 500, "number of derivations")
	jobs   = flag.Int("j", 2, "parallel builds")
	keep   = flag.Bool("keep", false, "keep the work directory")
	stdenv = flag.String("stdenv", ".cache/stdenv/stdenv-x86_64-linux.json", "the stdenv manifest scripts/make-stdenv wrote")
)

// module makes one trivial derivation from its number and dependencies;
// snippet() below is the same shell text with the floor's paths.
const module = `
load("@stdlib//build.star", "stdenv_derivation")

def package(i, deps = {}):
    script = "mkdir -p $out; echo %d > $out/file" % i
    for name in sorted(deps.keys()):
        script += "; cat %s/file >> $out/file" % deps[name]
    return stdenv_derivation("t%d" % i, script, version = "1", inputs = [deps[k] for k in sorted(deps.keys())])
`

func snippet(i int, deps []string) string {
	s := fmt.Sprintf("mkdir -p $out; echo %d > $out/file", i)
	for _, d := range deps {
		s += fmt.Sprintf("; cat %s/file >> $out/file", d)
	}
	return s
}

func main() {
	flag.Parse()
	bin, err := filepath.Abs(*nexis)
	check(err)
	manifest, err := filepath.Abs(*stdenv)
	check(err)
	work, err := os.MkdirTemp("", "nexis-bench-build-")
	check(err)
	if !*keep {
		defer os.RemoveAll(work)
	}
	rng := rand.New(rand.NewSource(1))
	deps := make([][]int, *n)
	var cfg strings.Builder
	for i := 0; i < *n; i++ {
		k := 0
		if i > 0 {
			k = rng.Intn(4)
		}
		seen := map[int]bool{}
		for len(deps[i]) < k && len(deps[i]) < i {
			d := rng.Intn(i)
			if !seen[d] {
				seen[d] = true
				deps[i] = append(deps[i], d)
			}
		}
		fmt.Fprintf(&cfg, "[[packages]]\nname = \"t%d\"\nmodule = \"trivial.star\"\nargs = { i = %d }\n", i, i)
		if len(deps[i]) > 0 {
			var names []string
			for _, d := range deps[i] {
				names = append(names, fmt.Sprintf("%q", fmt.Sprintf("t%d", d)))
			}
			fmt.Fprintf(&cfg, "dependencies = [%s]\n", strings.Join(names, ", "))
		}
		cfg.WriteString("\n")
	}
	cdir := filepath.Join(work, "config")
	check(os.MkdirAll(cdir, 0o755))
	check(os.WriteFile(filepath.Join(cdir, "config.toml"), []byte("[system]\nhostname = \"bench\"\n\n[[packages]]\nname = \"libc\"\nmodule = \"libc.star\"\n\n"+cfg.String()), 0o644))
	check(os.WriteFile(filepath.Join(cdir, "libc.star"), []byte("load(\"@stdlib//build.star\", \"LIBC\")\n\ndef package():\n    return LIBC\n"), 0o644))
	check(os.WriteFile(filepath.Join(cdir, "trivial.star"), []byte(module), 0o644))
	cfgPath := filepath.Join(cdir, "config.toml")

	// The floor: the same snippets, sequentially, no sandbox. Dependencies
	// are sorted by name as the module sorts them.
	floorDir := filepath.Join(work, "floor")
	check(os.MkdirAll(floorDir, 0o755))
	var floorCPU time.Duration
	start := time.Now()
	for i := 0; i < *n; i++ {
		var ds []string
		for _, d := range sortedByName(deps[i]) {
			ds = append(ds, filepath.Join(floorDir, fmt.Sprintf("t%d", d)))
		}
		cmd := exec.Command("/bin/sh", "-c", snippet(i, ds))
		cmd.Env = []string{"PATH=/usr/bin:/bin", "out=" + filepath.Join(floorDir, fmt.Sprintf("t%d", i))}
		out, err := cmd.CombinedOutput()
		if err != nil {
			fatal(fmt.Errorf("floor snippet %d: %v\n%s", i, err, out))
		}
		floorCPU += cpu(cmd.ProcessState)
	}
	floor := time.Since(start)

	// CPU times (user+system of a process and everything it waited for)
	// are reported beside wall times: on a shared machine they say more
	// about our own cost than the wall clock does.
	cpuOf := map[string]time.Duration{}
	run := func(root string, args ...string) time.Duration {
		cmd := exec.Command(bin, append([]string{"--root", root, "--state", "/state"}, args...)...)
		cmd.Env = append(os.Environ(), "NEXIS_STDENV="+manifest)
		cmd.Stderr = os.Stderr
		cmd.Dir = work
		t := time.Now()
		out, err := cmd.Output()
		if err != nil {
			fatal(fmt.Errorf("nexis %v: %v\n%s", args, err, out))
		}
		cpuOf[root] = cpu(cmd.ProcessState)
		return time.Since(t)
	}
	eval := run(filepath.Join(work, "root-eval"), "build", "--dry-run", cfgPath)
	imp := run(filepath.Join(work, "root-j"), "store", "add-stdenv", manifest)
	run(filepath.Join(work, "root-1"), "store", "add-stdenv", manifest)
	// The runtime libc, made once per store from the stdenv, is not one
	// of the N: built here, it stays out of the per-build figures.
	libc := run(filepath.Join(work, "root-j"), "build", "--no-out-link", "-A", "libc", cfgPath)
	run(filepath.Join(work, "root-1"), "build", "--no-out-link", "-A", "libc", cfgPath)
	wallJ := run(filepath.Join(work, "root-j"), "build", "--no-out-link", "-j", fmt.Sprint(*jobs), cfgPath)
	wall1 := run(filepath.Join(work, "root-1"), "build", "--no-out-link", "-j", "1", cfgPath)
	noop := run(filepath.Join(work, "root-j"), "build", "--no-out-link", "-j", fmt.Sprint(*jobs), cfgPath)

	var tarballs int64
	if ents, err := filepath.Glob(filepath.Join(filepath.Dir(manifest), "stdenv-*-x86_64-linux.tar.gz")); err == nil {
		for _, f := range ents {
			if fi, err := os.Stat(f); err == nil {
				tarballs += fi.Size()
			}
		}
	}
	fmt.Printf("stdenv:                 %.0f MiB of tarballs; one-time import (store add-stdenv, every layer) %v; runtime libc %v\n",
		float64(tarballs)/(1<<20), imp.Round(time.Millisecond), libc.Round(time.Millisecond))
	fmt.Printf("derivations:            %d (plus the system and its /etc files)\n", *n)
	fmt.Printf("floor (sh, sequential): %v (%.2f ms per snippet)\n", floor.Round(time.Millisecond), ms(floor)/float64(*n))
	fmt.Printf("evaluation (dry run):   %v\n", eval.Round(time.Millisecond))
	fmt.Printf("nexis build -j %d:       %v  ratio to floor %.2f\n", *jobs, wallJ.Round(time.Millisecond), float64(wallJ)/float64(floor))
	fmt.Printf("nexis build -j 1:       %v  ratio to floor %.2f\n", wall1.Round(time.Millisecond), float64(wall1)/float64(floor))
	fmt.Printf("nothing to do:          %v\n", noop.Round(time.Millisecond))
	fmt.Printf("overhead per build:     %.1f ms wall ((-j 1 - evaluation - floor) / %d)\n", (ms(wall1)-ms(eval)-ms(floor))/float64(*n), *n)
	evalCPU, cpu1 := cpuOf[filepath.Join(work, "root-eval")], cpuOf[filepath.Join(work, "root-1")]
	fmt.Printf("CPU: floor %v, evaluation %v, -j 1 build %v\n", floorCPU.Round(time.Millisecond), evalCPU.Round(time.Millisecond), cpu1.Round(time.Millisecond))
	fmt.Printf("overhead per build:     %.1f ms CPU ((-j 1 - evaluation - floor) / %d)\n", (ms(cpu1)-ms(evalCPU)-ms(floorCPU))/float64(*n), *n)
	if out, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average after:     %s", out)
	}
}

func cpu(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

func sortedByName(ds []int) []int {
	out := append([]int(nil), ds...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if fmt.Sprintf("t%d", out[j]) < fmt.Sprintf("t%d", out[i]) {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func check(err error) {
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/build:", err)
	os.Exit(1)
}
