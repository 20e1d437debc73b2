package activate_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/realise/stdenvtest"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// TestMain lets the crash test run this binary as a child that switches
// and is killed with SIGKILL somewhere in the middle.
func TestMain(m *testing.M) {
	if root := os.Getenv("NEXIS_ACTIVATE_CHILD_ROOT"); root != "" {
		os.Exit(crashChild(root))
	}
	code := m.Run()
	stdenvtest.Cleanup()
	os.Exit(code)
}

func crashChild(root string) int {
	n, _ := strconv.ParseUint(os.Getenv("NEXIS_ACTIVATE_CHILD_GEN"), 10, 64)
	st, err := store.Open(filepath.Join(root, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	r, err := durable.OpenRoot(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer r.Close()
	tg := &activate.Target{Root: r, Store: st, StateDir: "/var/lib/nexis", Version: "test"}
	o := opts()
	o.Live = true
	o.Dinitctl = os.Getenv("NEXIS_ACTIVATE_CHILD_DINITCTL")
	os.Stdout.WriteString("ready\n") // the parent times its kill from here
	if _, err := tg.SwitchTo(n, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// A switch killed with SIGKILL at a random point, many times over, then
// repaired: the root is exactly one of the generations every time, the
// one the interrupted switch was making. dinitctl is a stand-in that
// sleeps (dinit is not packaged for Debian), which widens the window in
// which the root is half-changed.
func TestKillDuringActivationThenRepair(t *testing.T) {
	tg := newTarget(t)
	minP := realiseReal(t, tg, minimalCopy(t, nil))
	fullP := realiseFull(t, tg)
	for _, p := range []storepath.Path{minP, fullP} {
		if _, err := tg.Switch(p, opts()); err != nil {
			t.Fatal(err)
		}
	}
	dinitctl := filepath.Join(t.TempDir(), "dinitctl")
	if err := os.WriteFile(dinitctl, []byte("#!/bin/sh\nsleep 0.01\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := tg.Root.Dir()
	tg.Store.Close()

	// start runs a child switching to gen and returns once it is about
	// to switch.
	start := func(gen uint64) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "NEXIS_ACTIVATE_CHILD_ROOT="+root, "NEXIS_ACTIVATE_CHILD_GEN="+fmt.Sprint(gen), "NEXIS_ACTIVATE_CHILD_DINITCTL="+dinitctl)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		bufio.NewReader(out).ReadString('\n')
		return cmd
	}
	// How long an uninterrupted switch takes, to spread the kills over it.
	t0 := time.Now()
	if err := start(1).Wait(); err != nil {
		t.Fatalf("uninterrupted child: %v", err)
	}
	span := time.Since(t0)
	if err := start(2).Wait(); err != nil {
		t.Fatalf("uninterrupted child: %v", err)
	}

	gen := uint64(1)
	midway := 0
	defer func() { t.Logf("%d of 12 kills landed while the root was half-changed", midway) }()
	for i := 0; i < 12; i++ {
		cmd := start(gen)
		time.Sleep(time.Duration(rand.Int64N(int64(span))))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		st, err := store.Open(filepath.Join(root, "store"), store.Options{LogicalDir: "/store"})
		if err != nil {
			t.Fatal(err)
		}
		rt := &activate.Target{Root: tg.Root, Store: st, StateDir: tg.StateDir, Version: "test"}
		if before, err := rt.LoadState(); err == nil && before.Status == "activating" {
			midway++
		}
		// Half the time `nexis activate --repair`, half the time the
		// same switch again.
		var res *activate.Result
		if i%2 == 0 {
			res, err = rt.Repair(opts())
		} else {
			res, err = rt.SwitchTo(gen, opts())
		}
		if err != nil {
			st.Close()
			t.Fatalf("kill %d: repair: %v", i, err)
		}
		sys := res.Plan.System
		if want := []storepath.Path{minP, fullP}[gen-1]; i%2 == 1 && sys.Path != want {
			t.Errorf("kill %d: switching again activated %s", i, sys.Logical)
		}
		check(t, rt, sys.Path, fmt.Sprintf("kill %d (generation %d), repaired", i, gen))
		// The profile and the root agree after a repair.
		cur := current(t, rt)
		g, _ := rt.Generation(cur)
		if g.Path != sys.Path {
			t.Errorf("kill %d: the profile names generation %d but the root is %s", i, cur, sys.Logical)
		}
		verify(t, rt)
		st.Close()
		gen = 3 - gen
	}
}
