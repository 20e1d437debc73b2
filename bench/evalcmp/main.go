// Command evalcmp measures `nexis eval` against Nix's evaluator on the
// same workload, as whole processes, alternated run by run:
//
//   - nix:       nix-instantiate --readonly-mode sys.nix (Debian's
//     nix-bin, `scripts/install-deps --bench`);
//   - cold:      nexis eval config.toml with an empty package cache;
//   - warm:      the same again, every package from the cache;
//   - one edit:  the version of the last package changed before each run
//     (alternating two values), the rest from the cache;
//
// beside the floor of starting nexis at all (nexis --version). The
// workload is the one ../shared/bench/evalcmp/gen.py writes: N packages,
// package i depending on i-7, i-14 and i-21, each with a fixed-output
// source and a configure build, and a system depending on all of them.
// Wall time, CPU time (user + system) and peak resident memory are those
// the kernel reports for the child, as /usr/bin/time prints them.
//
//	go run ./bench/evalcmp [-n 10000,100000] [-runs 5] [-nexis bin/nexis]
//	go run ./bench/evalcmp -n 10000 -write DIR   (the workload only)
//
// 6 December 2026, 19:24 UTC, a steady sitting (the machine runs at very
// different speeds over a day, and its two cores are shared: compare
// within a sitting). 10,000 packages, 11 runs, three times (medians:
// wall, CPU; peak RSS): Nix 483, 472 and 498 ms, 103 MiB; nexis cold
// 231, 216 and 238 ms (0.46-0.48), 403-441 ms CPU, 97-99 MiB; warm 68-72
// ms, one package edited 67-72 ms, 82 MiB. Busier sittings that day, of
// the code before ab18b85 (2-3% more CPU), gave 0.51 (18:53) and 0.61
// (19:03). 100,000 packages, 3 runs, 19:25: Nix
// 5.31 s, 708 MiB; nexis cold 2.46 s (0.46, 4.6 s CPU), 512 MiB; warm
// 0.84 s; one edit 0.89 s, 530 MiB.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	sizes := flag.String("n", "10000,100000", "comma-separated package counts")
	runs := flag.Int("runs", 5, "runs per measurement")
	nexis := flag.String("nexis", "", "the nexis binary (default: go build ./cmd/nexis into a temporary directory)")
	nix := flag.String("nix", "nix-instantiate", "Nix's evaluator")
	write := flag.String("write", "", "only write the workload of the first -n into `DIR` (scripts/pgo profiles it)")
	flag.Parse()
	if *write != "" {
		n, err := strconv.Atoi(strings.Split(*sizes, ",")[0])
		if err == nil {
			err = generate(n, *write)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/evalcmp:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*sizes, *runs, *nexis, *nix); err != nil {
		fmt.Fprintln(os.Stderr, "bench/evalcmp:", err)
		os.Exit(1)
	}
}

// writeFile makes file of what fill writes. The configs are written
// and copied through it, never held: a child's peak RSS, as the kernel
// reports it, is at least what its parent had resident when it was
// started (the memory it was forked from), and 100,000 packages are 29
// MB of text.
func writeFile(file string, fill func(w *bufio.Writer) error) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyFile copies from to to.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(to, func(w *bufio.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// copyEdited copies config to edited, its first line that is old made
// new.
func copyEdited(config, edited, old, new string) error {
	in, err := os.Open(config)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(edited, func(w *bufio.Writer) error {
		sc := bufio.NewScanner(in)
		done := false
		for sc.Scan() {
			line := sc.Text()
			if !done && line == old {
				line, done = new, true
			}
			w.WriteString(line + "\n")
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if !done {
			return fmt.Errorf("%s: no line %q to edit", config, old)
		}
		return nil
	})
}

// sample is one whole-process run.
type sample struct {
	wall, cpu time.Duration
	rssKB     int64
}

func measure(c *exec.Cmd) (sample, error) {
	c.Stdout = nil // discarded, as >/dev/null
	var stderr strings.Builder
	c.Stderr = &stderr
	t0 := time.Now()
	err := c.Run()
	wall := time.Since(t0)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, stderr.String())
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	return sample{wall: wall, cpu: c.ProcessState.UserTime() + c.ProcessState.SystemTime(), rssKB: ru.Maxrss}, nil
}

func run(sizes string, runs int, bin, nix string) error {
	tmp, err := os.MkdirTemp("", "bench-evalcmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "nexis")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/nexis").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v: %s", err, out)
		}
	}
	if _, err := exec.LookPath(nix); err != nil {
		return fmt.Errorf("%s: %v (scripts/install-deps --bench installs Debian's nix-bin)", nix, err)
	}
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-n %q: %v", f, err)
		}
		dir := filepath.Join(tmp, f)
		if err := generate(n, dir); err != nil {
			return err
		}
		config := filepath.Join(dir, "config.toml")
		orig, edited := filepath.Join(dir, "orig.toml"), filepath.Join(dir, "edited.toml")
		if err := copyFile(config, orig); err != nil {
			return err
		}
		if err := copyEdited(config, edited, fmt.Sprintf("version = \"1.%d\"", n-1), fmt.Sprintf("version = \"1.%d.1\"", n-1)); err != nil {
			return err
		}
		cache := filepath.Join(tmp, "cache")
		nexis := func(args ...string) *exec.Cmd {
			c := exec.Command(bin, args...)
			c.Env = append(os.Environ(), "NEXIS_CACHE_DIR="+cache)
			return c
		}
		names := []string{"floor: nexis --version", "nix-instantiate --readonly-mode", "nexis eval, cold", "nexis eval, warm", "nexis eval, one package edited"}
		results := make([][]sample, len(names))
		for i := range runs {
			steps := []func() (sample, error){
				func() (sample, error) { return measure(nexis("--version")) },
				func() (sample, error) {
					return measure(exec.Command(nix, "--readonly-mode", filepath.Join(dir, "sys.nix")))
				},
				func() (sample, error) {
					if err := os.RemoveAll(cache); err != nil {
						return sample{}, err
					}
					if err := copyFile(orig, config); err != nil {
						return sample{}, err
					}
					return measure(nexis("eval", config))
				},
				func() (sample, error) { return measure(nexis("eval", config)) },
				func() (sample, error) {
					next := edited
					if i%2 == 1 {
						next = orig
					}
					if err := copyFile(next, config); err != nil {
						return sample{}, err
					}
					// The cache holds the other version: one miss.
					return measure(nexis("eval", config))
				},
			}
			for k, step := range steps {
				s, err := step()
				if err != nil {
					return err
				}
				results[k] = append(results[k], s)
			}
		}
		if err := copyFile(orig, config); err != nil {
			return err
		}
		fmt.Printf("%d packages, %d runs each, alternated, whole processes (wall: median, min, max; CPU: median; peak RSS: max)\n", n, runs)
		fmt.Printf("%-34s %9s %9s %9s %9s %10s\n", "", "median", "min", "max", "CPU", "peak RSS")
		for k, name := range names {
			r := results[k]
			walls := make([]time.Duration, len(r))
			cpus := make([]time.Duration, len(r))
			var rss int64
			for j, s := range r {
				walls[j], cpus[j], rss = s.wall, s.cpu, max(rss, s.rssKB)
			}
			slices.Sort(walls)
			slices.Sort(cpus)
			ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
			fmt.Printf("%-34s %9s %9s %9s %9s %7d MiB\n", name, ms(walls[len(walls)/2]), ms(walls[0]), ms(walls[len(walls)-1]), ms(cpus[len(cpus)/2]), rss>>10)
		}
		fmt.Println()
	}
	return nil
}

// generate writes the workload of gen.py (the same bytes) into dir.
func generate(n int, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Written as it is made (see writeFile).
	err := writeFile(filepath.Join(dir, "config.toml"), func(b *bufio.Writer) error {
		b.WriteString("[system]\nhostname = \"bench\"\n\n")
		for i := range n {
			fmt.Fprintf(b, "[[packages]]\nname = \"pkg%d\"\n", i)
			var deps []string
			for _, k := range []int{1, 2, 3} {
				if i-k*7 >= 0 {
					deps = append(deps, fmt.Sprintf("\"pkg%d\"", i-k*7))
				}
			}
			if len(deps) > 0 {
				fmt.Fprintf(b, "dependencies = [%s]\n", strings.Join(deps, ", "))
			}
			fmt.Fprintf(b, "version = \"1.%d\"\nsource = \"https://example.org/pkg%d-1.%d.tar.gz\"\n", i, i, i)
			fmt.Fprintf(b, "hash = \"sha256:%064x\"\nbuild_system = \"configure\"\nbuild_flags = [\"--enable-static\"]\n\n", i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	nix := fmt.Sprintf(`let
  n = %d;
  src = i: derivation {
    name = "pkg${toString i}-src"; system = "x86_64-linux"; builder = "builtin:fetchurl";
    url = "https://example.org/pkg${toString i}-1.${toString i}.tar.gz";
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = builtins.hashString "sha256" (toString i);
  };
  mk = i: derivation {
    name = "pkg${toString i}-1.${toString i}"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" "./configure --enable-static && make && make install" ];
    src = src i;
    deps = map (k: builtins.elemAt pkgs (i - k * 7)) (builtins.filter (k: i - k * 7 >= 0) [ 1 2 3 ]);
  };
  pkgs = builtins.genList mk n;
in derivation { name = "system"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "true" ]; inherit pkgs; }
`, n)
	return os.WriteFile(filepath.Join(dir, "sys.nix"), []byte(nix), 0o644)
}
