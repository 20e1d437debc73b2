package gc

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nexisos/nexis/internal/proctest"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/trash"
)

// The test binary doubles as the child processes of the crash and
// concurrency tests: real processes, killed for real.
const (
	envChild = "NEXIS_GC_TEST_CHILD" // "collector", "builder" or "worker"
	envDir   = "NEXIS_GC_TEST_DIR"
	envArg   = "NEXIS_GC_TEST_ARG"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "":
		os.Exit(m.Run())
	case "collector":
		os.Exit(collectorChild(os.Getenv(envDir), os.Getenv(envArg)))
	case "builder":
		os.Exit(builderChild(os.Getenv(envDir), os.Getenv(envArg)))
	case "worker":
		if _, err := trash.RunWorker(os.Getenv(envDir), trash.LockFD, trash.Options{Workers: 2}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(2)
}

func child(mode, dir, arg string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envDir+"="+dir, envArg+"="+arg)
	return cmd
}

// populate ingests n trees in one batch, each referring to up to three
// earlier ones of the batch or of prev, and returns them.
func populate(s *store.Store, scratch string, tag string, n int, prev []storepath.Path, rng *rand.Rand) ([]storepath.Path, error) {
	var reqs []store.IngestRequest
	var made []storepath.Path
	for i := 0; i < n; i++ {
		p := fakePath(fmt.Sprintf("%s-%d", tag, i))
		src := filepath.Join(scratch, p.Name)
		os.MkdirAll(filepath.Join(src, "lib"), 0o755)
		pool := append(append([]storepath.Path(nil), prev...), made...)
		var cands []storepath.Path
		body := "tree " + p.Name + "\n"
		for j := 0; j < 3 && len(pool) > 0; j++ {
			r := pool[rng.IntN(len(pool))]
			cands = append(cands, r)
			body += "needs " + s.Logical(r) + "\n"
		}
		os.WriteFile(filepath.Join(src, "own"), []byte(body), 0o644)
		os.WriteFile(filepath.Join(src, "lib", "common"), []byte("common to all trees"), 0o644)
		os.WriteFile(filepath.Join(src, "lib", "some"), fmt.Appendf(nil, "one of ten: %d", rng.IntN(10)), 0o755)
		reqs = append(reqs, store.IngestRequest{Src: src, Target: p, IngestOptions: store.IngestOptions{RefCandidates: cands, Move: true}})
		made = append(made, p)
	}
	if _, err := s.IngestBatch(reqs); err != nil {
		return nil, err
	}
	return made, nil
}

// collectorChild alternates, forever: add a batch of trees, root a few
// (permanent roots "perm-K" are replaced, never removed), drop the
// previous round's temporary-named roots, and collect exactly as `nexis
// gc` does (collect, close the store, hand the trash to a background
// worker). It prints "perm K PATH" once a root is committed, and "worker
// PID" for each worker it starts.
func collectorChild(dir, arg string) int {
	seed, _ := strconv.Atoi(arg)
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	out := bufio.NewWriter(os.Stdout)
	scratch := filepath.Join(filepath.Dir(dir), "scratch", strconv.Itoa(os.Getpid()))
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var prev []storepath.Path
	for round := 0; ; round++ {
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			return fail(err)
		}
		// Refer only to what the last collection kept.
		var kept []storepath.Path
		for _, p := range prev {
			if ok, err := s.IsValid(p); err != nil {
				return fail(err)
			} else if ok {
				kept = append(kept, p)
			}
		}
		made, err := populate(s, scratch, fmt.Sprintf("c%d-%d", seed, round), 12+rng.IntN(12), kept, rng)
		if err != nil {
			return fail(err)
		}
		rs, err := s.Roots()
		if err != nil {
			return fail(err)
		}
		for _, r := range rs {
			if strings.HasPrefix(r.Name, "tmp-") {
				if err := s.RemoveRoot(r.Name); err != nil {
					return fail(err)
				}
			}
		}
		for i := 0; i < 2; i++ {
			p := made[rng.IntN(len(made))]
			if err := s.AddRoot(fmt.Sprintf("tmp-%d", i), p); err != nil {
				return fail(err)
			}
		}
		if rng.IntN(3) == 0 {
			k := rng.IntN(8)
			p := made[rng.IntN(len(made))]
			if err := s.AddRoot(fmt.Sprintf("perm-%d", k), p); err != nil {
				return fail(err)
			}
			fmt.Fprintf(out, "perm %d %s\n", k, p.Base())
			out.Flush()
		}
		prev = made
		fmt.Fprintln(out, "gc")
		out.Flush()
		t0 := time.Now()
		if _, err := Collect(s, Options{Workers: 2, BatchSize: 5}); err != nil {
			return fail(err)
		}
		if err := s.Close(); err != nil {
			return fail(err)
		}
		ts, err := HandOff(dir, Options{Workers: 2, Launch: testLauncher})
		if err != nil {
			return fail(err)
		}
		if ts.WorkerPID != 0 {
			fmt.Fprintf(out, "worker %d\n", ts.WorkerPID)
			out.Flush()
		}
		fmt.Fprintf(out, "round %d %d\n", round, time.Since(t0).Microseconds())
		out.Flush()
	}
}

// crashKills is how many processes TestCrashCollectorAndWorker kills:
// NEXIS_GC_CRASH_KILLS sets it (the full run is 240: `NEXIS_GC_CRASH_KILLS=240
// go test -run CrashCollectorAndWorker ./store/gc`); by default 40, 16 with
// -short, so that the suite stays quick.
func crashKills(t *testing.T) int {
	if v := os.Getenv("NEXIS_GC_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("NEXIS_GC_CRASH_KILLS=%q: want a positive number", v)
		}
		return n
	}
	if testing.Short() {
		return 16
	}
	return 40
}

// testLauncher starts this test binary as a trash worker.
func testLauncher(dir string) *exec.Cmd { return child("worker", dir, "") }

// TestCrashCollectorAndWorker kills, with SIGKILL at random moments, a
// collecting child (which hands its trash to detached background
// workers, as `nexis gc` does) and those workers themselves, mid-
// deletion. After each kill of the collector, what the next command does
// runs (the records are finished, a worker is started for the trash);
// then the store must verify clean with contents re-hashed, every root
// must hold a valid closure, and every permanent root the child saw
// committed must still hold its path. At the end the trash must empty
// completely, with no pool entry left behind.
func TestCrashCollectorAndWorker(t *testing.T) {
	want := crashKills(t)
	base := t.TempDir()
	dir := filepath.Join(base, "store")
	rng := rand.New(rand.NewPCG(3, 4))
	perm := map[string]string{} // root name -> last announced base
	kills, collectorKills, workerKills, finished, aimed, killedInGC, staged := 0, 0, 0, 0, 0, 0, 0
	gcMicros := int64(50000)
	// The kills must also land where the test means them to: inside
	// collections, in workers, leaving records for the next command, and
	// between the renames into staging and the move into the trash.
	// On a loaded machine the aim is worse, so rounds go on until they
	// have (or five times the kills asked for, and then it fails).
	covered := func() bool { return killedInGC >= 3 && finished > 0 && workerKills > 0 && staged > 0 }
	for k := 0; kills < want || (!covered() && kills < 5*want); k++ {
		cmd := child("collector", dir, strconv.Itoa(k))
		lines, stderr := proctest.Start(t, cmd)
		// Every other round kills a trash worker the child started, a
		// few milliseconds into its deletion, then the child at any
		// moment. In the other rounds, two kills of the collector in
		// three aim inside a collection: a random moment of its typical
		// length after the child says it starts one. The rest land
		// anywhere.
		killWorker := k%2 == 0
		aim := k%3 != 2 && !killWorker
		deadline := time.After(2 * time.Minute)
		var timer, workerTimer <-chan time.Time
		if !aim && !killWorker {
			timer = time.After(time.Duration(rng.IntN(600)) * time.Millisecond)
		}
		inGC := false
		worker, tries := 0, 0
	loop:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("round %d: child exited: %s", k, stderr.String())
				}
				record(perm, l)
				switch f := strings.Fields(l); {
				case f[0] == "gc":
					inGC = true
					if aim && timer == nil {
						timer = time.After(time.Duration(rng.Int64N(max(gcMicros, 1000))) * time.Microsecond)
					}
				case f[0] == "worker" && killWorker && workerTimer == nil && timer == nil:
					worker, _ = strconv.Atoi(f[1])
					workerTimer = time.After(time.Duration(rng.IntN(4000)) * time.Microsecond)
				case f[0] == "round":
					inGC = false
					if us, err := strconv.ParseInt(f[2], 10, 64); err == nil {
						gcMicros = (gcMicros*7 + us) / 8
					}
				}
			case <-workerTimer:
				// A worker that finished first is no kill: try the next
				// one; once one is killed (or after many tries), the
				// collector goes too, at any moment.
				workerTimer = nil
				tries++
				if killAlive(worker) {
					kills++
					workerKills++
					timer = time.After(time.Duration(rng.IntN(300)) * time.Millisecond)
				} else if tries == 20 {
					timer = time.After(time.Duration(rng.IntN(300)) * time.Millisecond)
				}
			case <-timer:
				break loop
			case <-deadline:
				t.Fatalf("round %d: child made no progress: %s", k, stderr.String())
			}
		}
		if aim {
			aimed++
			if inGC {
				killedInGC++
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended by itself: %s", k, stderr.String())
		}
		kills++
		collectorKills++
		for l := range lines {
			record(perm, l)
		}
		if _, err := os.Stat(filepath.Join(dir, ".nexis", "gc-staging")); err == nil {
			staged++
		}
		// What the next nexis command does first.
		if ran, err := FinishInterrupted(dir, store.Options{}, 2); err != nil {
			t.Fatalf("round %d: finishing: %v", k, err)
		} else if ran {
			finished++
		}
		if _, err := trash.Resume(dir, testLauncher); err != nil {
			t.Fatalf("round %d: resuming the trash: %v", k, err)
		}
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatalf("round %d: open: %v", k, err)
		}
		rep, err := s.Verify(store.VerifyOptions{CheckContents: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Clean() {
			t.Fatalf("round %d: verify: %v", k, rep.Errors)
		}
		if pending, _ := s.PendingCollect(); pending {
			t.Fatalf("round %d: collection records left after recovery", k)
		}
		for name, base := range perm {
			rp, ok, err := s.Root(name)
			if err != nil || !ok {
				t.Fatalf("round %d: permanent root %s is gone (%v)", k, name, err)
			}
			if rp.Base() == base {
				if ok, _ := s.IsValid(rp); !ok {
					t.Fatalf("round %d: %s, held by %s, was collected", k, base, name)
				}
			}
		}
		s.Close()
	}
	t.Logf("%d kills: %d collectors (%d of %d aimed inside a collection, %d left records for the next command, %d a staging directory), %d trash workers", kills, collectorKills, killedInGC, aimed, finished, staged, workerKills)
	if !covered() {
		t.Errorf("the kills did not land where they should: the test does not test")
	}
	// The trash empties (waiting for the workers still running).
	if _, err := trash.Empty(dir, trash.Options{}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(trash.Dir(dir)); len(ents) > 0 {
		t.Fatalf("the trash is not empty: %d entries", len(ents))
	}
	// Killed ingests (the child ingests between collections) leave
	// unregistered directories and uncounted pool entries, which only a
	// full sweep finds; with those repaired, a last collection must leave
	// the store exact: nothing in the trash, no pool entry nothing counts.
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Full(s, FullOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(s, Options{}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s)
}

// killAlive SIGKILLs pid if it is still one of our trash workers (not
// exited, not a reused pid), and reports whether it did.
func killAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.HasPrefix(string(b), os.Args[0]+"\x00") {
		return false
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || !strings.Contains(string(env), envChild+"=worker") {
		return false
	}
	return syscall.Kill(pid, syscall.SIGKILL) == nil
}

func record(perm map[string]string, l string) {
	f := strings.Fields(l)
	if len(f) == 3 && f[0] == "perm" {
		perm["perm-"+f[1]] = f[2]
	}
}

// builderChild plays a build that does not hold the store while it
// works: it registers its inputs and makes them temporary roots, lets go
// of the store, "builds" for a while, then registers its output (which
// refers to the inputs) and holds it as a temporary root too, and lives
// on until its stdin closes. Nothing is ever rooted permanently: only the temporary
// roots protect it from the collector running next to it.
func builderChild(dir, arg string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rng := rand.New(rand.NewPCG(5, 6))
	scratch := filepath.Join(filepath.Dir(dir), "builder-scratch")
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		return fail(err)
	}
	inputs, err := populate(s, scratch, "input", 4, nil, rng)
	if err != nil {
		return fail(err)
	}
	// The protocol: temp-root first, then check validity (we hold the
	// writer lock here, so they cannot have gone).
	if err := s.AddTempRoots(inputs...); err != nil {
		return fail(err)
	}
	if err := s.Close(); err != nil {
		return fail(err)
	}
	fmt.Println("inputs")
	for _, p := range inputs {
		fmt.Println("input", p.Base())
	}
	time.Sleep(1500 * time.Millisecond) // the build
	s, err = store.Open(dir, store.Options{})
	if err != nil {
		return fail(err)
	}
	for _, p := range inputs {
		if ok, err := s.IsValid(p); err != nil || !ok {
			return fail(fmt.Errorf("input %s was collected during the build", p.Base()))
		}
	}
	out, err := populate(s, scratch, "output", 1, inputs, rng)
	if err != nil {
		return fail(err)
	}
	if err := s.AddTempRoots(out...); err != nil {
		return fail(err)
	}
	if err := s.Close(); err != nil {
		return fail(err)
	}
	fmt.Println("output", out[0].Base())
	// Live on until the parent has collected next to the output.
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestCollectDuringBuild runs collections back to back while a build
// registers inputs, works, and registers its output: none of them may
// go while the builder lives, its output registers, and once it has
// exited they are ordinary garbage.
func TestCollectDuringBuild(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "store")
	cmd := child("builder", dir, "")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	lines, stderr := proctest.Start(t, cmd)
	var protected []string
	exited := false
	rng := rand.New(rand.NewPCG(7, 8))
	rounds, output, afterOutput := 0, "", 0
	for !exited {
		select {
		case l, ok := <-lines:
			if !ok {
				exited = true
				break
			}
			f := strings.Fields(l)
			if len(f) == 2 {
				protected = append(protected, f[1])
				if f[0] == "output" {
					output = f[1]
				}
			}
			continue
		default:
		}
		if len(protected) == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Garbage of our own, so every collection has work.
		if _, err := populate(s, filepath.Join(base, "scratch"), fmt.Sprintf("junk%d", rounds), 5, nil, rng); err != nil {
			t.Fatal(err)
		}
		st, err := Run(s, Options{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if st.KeptTemp == 0 {
			t.Errorf("round %d: no temporary root kept anything", rounds)
		}
		for _, b := range protected {
			p, _, _ := s.ParsePath(b)
			if ok, _ := s.IsValid(p); !ok {
				t.Fatalf("round %d: %s was collected while the build ran", rounds, b)
			}
		}
		mustVerify(t, s)
		s.Close()
		rounds++
		if output != "" {
			if afterOutput++; afterOutput == 3 {
				// Three collections saw the output held only by its
				// builder: let the builder exit.
				stdin.Close()
				for range lines {
				}
				exited = true
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("builder: %v: %s", err, stderr.String())
	}
	if output == "" || rounds < 3 {
		t.Fatalf("output %q after %d collections: the build and the collector did not overlap", output, rounds)
	}
	// The builder is gone: its temporary roots with it.
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := Run(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Paths < len(protected) {
		t.Errorf("after the builder exited, collected %d paths, want its %d", st.Paths, len(protected))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, ".nexis", "temproots")); len(ents) != 0 {
		t.Errorf("dead process's temp-root file not pruned: %v", ents)
	}
	mustVerify(t, s)
	t.Logf("%d collections ran during the build", rounds)
}
