// Command switch measures nexis switch and nexis rollback as whole
// processes on examples/full with everything already realised:
//
//   - unchanged: nexis switch of the config the root already runs (its
//     evaluation comes from the cache), and the same with
//     --no-eval-cache;
//   - one file:  the config is edited before each run to change one /etc
//     file (EDITOR in [nexis.environment], alternating between two
//     values), then switched to: evaluated, as after any edit;
//   - rollback:  nexis rollback to the generation before (one file
//     differs), after an unmeasured switch made a new one;
//   - packages:  a config of -packages packages (the workload of
//     bench/evalcmp, with a hostname) whose last package's version is
//     edited before each run, alternating two values, then switched to:
//     that package is evaluated again, the others come from the package
//     cache;
//
// against the floor of `cp -a` of the generation's etc/ into the root
// (what any activation must at least do to put /etc in place) and of
// starting the nexis process at all (nexis --version).
//
// examples/full names packages fetched from the internet and this
// machine has none, so the package and kernel outputs are FAKE stand-ins
// registered through the store (activate/activatetest); the system
// derivation and everything activation reads are built for real, and
// `nexis switch` evaluates and checks the realisation as usual.
//
//	go run ./bench/switch [-n 21] [-nexis bin/nexis]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nexisos/nexis/activate/activatetest"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

func main() {
	n := flag.Int("n", 21, "runs per measurement")
	flag.IntVar(&packages, "packages", 10000, "packages of the generated config whose one-package edit is switched to (0: none)")
	nexis := flag.String("nexis", "", "the nexis binary (default: go build ./cmd/nexis into a temporary directory)")
	flag.BoolVar(&keep, "keep", false, "keep the root and configs (to profile a switch by hand) and print where")
	flag.Parse()
	if err := run(*n, *nexis); err != nil {
		fmt.Fprintln(os.Stderr, "bench/switch:", err)
		os.Exit(1)
	}
}

var (
	keep     bool
	packages int
)

type result struct {
	name string
	ds   []time.Duration
	cpu  []time.Duration
}

func run(n int, bin string) error {
	tmp, err := os.MkdirTemp("", "bench-switch-")
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Printf("kept %s (root, full, full-editor)\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if bin == "" {
		bin = filepath.Join(tmp, "nexis")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/nexis").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v: %s", err, out)
		}
	}
	root := filepath.Join(tmp, "root")
	full, err := filepath.Abs("examples/full")
	if err != nil {
		return err
	}
	a := filepath.Join(tmp, "full")
	b := filepath.Join(tmp, "full-editor")
	for _, d := range []string{a, b} {
		if out, err := exec.Command("cp", "-a", full, d).CombinedOutput(); err != nil {
			return fmt.Errorf("cp: %v: %s", err, out)
		}
	}
	cfgA, cfgB := filepath.Join(a, "config.toml"), filepath.Join(b, "config.toml")
	text, err := os.ReadFile(cfgB)
	if err != nil {
		return err
	}
	changed := strings.Replace(string(text), `EDITOR = "vim"`, `EDITOR = "nano"`, 1)
	if changed == string(text) {
		return fmt.Errorf("examples/full no longer sets EDITOR = \"vim\": pick another one-file change")
	}
	if err := os.WriteFile(cfgB, []byte(changed), 0o644); err != nil {
		return err
	}

	// Realise both configs (fake packages, real system derivations).
	st, err := store.Open(filepath.Join(root, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		return err
	}
	var sysA storepath.Path
	for i, cfg := range []string{cfgA, cfgB} {
		sys, err := lang.Eval(cfg, lang.Options{StoreDir: "/store"})
		if err != nil {
			st.Close()
			return err
		}
		p, _, err := activatetest.RealiseOffline(context.Background(), st, sys.Drv, tmp)
		if err != nil {
			st.Close()
			return err
		}
		if i == 0 {
			sysA = p
		}
	}
	etcA := filepath.Join(st.Physical(sysA), "etc")
	st.Close()

	nx := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, append([]string{"--root", root}, args...)...)
		return c
	}
	mustRun := func(c *exec.Cmd) error {
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
		}
		return nil
	}
	if err := mustRun(nx("switch", cfgB)); err != nil {
		return err
	}
	if err := mustRun(nx("switch", cfgA)); err != nil {
		return err
	}

	// CPU time (user + system of the child) beside wall time: on a
	// shared machine the wall time mostly measures the neighbours.
	var results []result
	measure := func(name string, before func() error, cmd func(i int) *exec.Cmd) error {
		r := result{name: name}
		for i := 0; i < n; i++ {
			if before != nil {
				if err := before(); err != nil {
					return err
				}
			}
			c := cmd(i)
			t0 := time.Now()
			out, err := c.CombinedOutput()
			d := time.Since(t0)
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
			}
			r.ds = append(r.ds, d)
			r.cpu = append(r.cpu, c.ProcessState.UserTime()+c.ProcessState.SystemTime())
		}
		results = append(results, r)
		return nil
	}
	floorDir := filepath.Join(tmp, "floor")
	if err := measure("floor: cp -a <generation>/etc <root>/etc", func() error { return os.RemoveAll(floorDir) },
		func(int) *exec.Cmd { return exec.Command("cp", "-a", etcA, floorDir) }); err != nil {
		return err
	}
	if err := measure("floor: nexis --version (process start)", nil, func(int) *exec.Cmd { return exec.Command(bin, "--version") }); err != nil {
		return err
	}
	if err := measure("nexis switch, unchanged config", nil, func(int) *exec.Cmd { return nx("switch", cfgA) }); err != nil {
		return err
	}
	if err := measure("  the same, --no-eval-cache", nil, func(int) *exec.Cmd { return nx("switch", "--no-eval-cache", cfgA) }); err != nil {
		return err
	}
	// The config is edited before each run, as a user does: the
	// evaluation cache misses and the config is evaluated.
	i := 0
	if err := measure("nexis switch, one /etc file changes", func() error {
		i++
		if i%2 == 1 {
			return os.WriteFile(cfgA, []byte(changed), 0o644)
		}
		return os.WriteFile(cfgA, text, 0o644)
	}, func(int) *exec.Cmd { return nx("switch", cfgA) }); err != nil {
		return err
	}
	if err := os.WriteFile(cfgA, text, 0o644); err != nil {
		return err
	}
	// The root runs cfgA; before each rollback it switches to cfgB (a
	// newer generation), and the rollback brings cfgA's back.
	if err := mustRun(nx("switch", cfgA)); err != nil {
		return err
	}
	if err := measure("nexis rollback (one /etc file changes)", func() error {
		return mustRun(nx("switch", cfgB))
	}, func(int) *exec.Cmd { return nx("rollback") }); err != nil {
		return err
	}
	if out, err := nx("activate", "--check").CombinedOutput(); err != nil {
		return fmt.Errorf("after the runs the root does not match its generation: %v\n%s", err, out)
	}

	if packages > 0 {
		if err := measurePackages(tmp, nx, measure, mustRun); err != nil {
			return err
		}
	}

	fmt.Printf("examples/full, %d runs each, the whole process (wall: median, min, max; CPU: median)\n", n)
	fmt.Printf("%-45s %9s %9s %9s %9s\n", "", "median", "min", "max", "CPU")
	for _, r := range results {
		sort.Slice(r.ds, func(i, j int) bool { return r.ds[i] < r.ds[j] })
		sort.Slice(r.cpu, func(i, j int) bool { return r.cpu[i] < r.cpu[j] })
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
		fmt.Printf("%-45s %9s %9s %9s %9s\n", r.name, ms(r.ds[len(r.ds)/2]), ms(r.ds[0]), ms(r.ds[len(r.ds)-1]), ms(r.cpu[len(r.cpu)/2]))
	}
	return nil
}

// measurePackages realises a generated config of packages packages and
// the same with its last package's version edited (FAKE package
// outputs, real system derivations), then measures switching between
// them as a user who edits that one package does.
func measurePackages(tmp string, nx func(...string) *exec.Cmd, measure func(string, func() error, func(int) *exec.Cmd) error, mustRun func(*exec.Cmd) error) error {
	dir := filepath.Join(tmp, "packages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("[system]\nhostname = \"bench\"\n\n")
	for i := range packages {
		fmt.Fprintf(&b, "[[packages]]\nname = \"pkg%d\"\n", i)
		var deps []string
		for _, k := range []int{1, 2, 3} {
			if i-k*7 >= 0 {
				deps = append(deps, fmt.Sprintf("\"pkg%d\"", i-k*7))
			}
		}
		if len(deps) > 0 {
			fmt.Fprintf(&b, "dependencies = [%s]\n", strings.Join(deps, ", "))
		}
		fmt.Fprintf(&b, "version = \"1.%d\"\nsource = \"https://example.org/pkg%d-1.%d.tar.gz\"\n", i, i, i)
		fmt.Fprintf(&b, "hash = \"sha256:%064x\"\nbuild_system = \"configure\"\nbuild_flags = [\"--enable-static\"]\n\n", i)
	}
	text := b.String()
	last := fmt.Sprintf("version = \"1.%d\"\n", packages-1)
	edited := strings.Replace(text, last, fmt.Sprintf("version = \"1.%d.1\"\n", packages-1), 1)
	config := filepath.Join(dir, "config.toml")
	// Realise both (the switches find everything built).
	root := filepath.Join(tmp, "root")
	st, err := store.Open(filepath.Join(root, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		return err
	}
	for _, t := range []string{edited, text} {
		if err := os.WriteFile(config, []byte(t), 0o644); err != nil {
			st.Close()
			return err
		}
		sys, err := lang.Eval(config, lang.Options{StoreDir: "/store"})
		if err != nil {
			st.Close()
			return err
		}
		if _, _, err := activatetest.RealiseOffline(context.Background(), st, sys.Drv, tmp); err != nil {
			st.Close()
			return err
		}
	}
	st.Close()
	if err := mustRun(nx("switch", config)); err != nil {
		return err
	}
	i := 0
	return measure(fmt.Sprintf("nexis switch, 1 of %d packages edited", packages), func() error {
		i++
		next := edited
		if i%2 == 0 {
			next = text
		}
		return os.WriteFile(config, []byte(next), 0o644)
	}, func(int) *exec.Cmd { return nx("switch", config) })
}
