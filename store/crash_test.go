package store

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nexisos/nexis/internal/proctest"
)

func childCmd(t *testing.T, mode, dir, arg string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envDir+"="+dir, envArg+"="+arg)
	return cmd
}

// TestCrashRecovery kills a registering child with SIGKILL at random
// moments, then checks after each kill that the store opens, verifies
// clean with contents re-hashed, and kept every path the child saw
// registered.
func TestCrashRecovery(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 30
	}
	base := t.TempDir()
	dir := filepath.Join(base, "store")
	rng := rand.New(rand.NewPCG(1, 2))
	var registered []string
	killedMidway := 0
	for k := 0; k < kills; k++ {
		cmd := childCmd(t, "crash", dir, fmt.Sprint(k))
		lines, stderr := proctest.Start(t, cmd)
		// Wait for the first registration, so that the kill lands inside
		// the ingest loop, then a random while longer.
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("kill %d: child exited early: %s", k, stderr.String())
			}
			registered = append(registered, strings.TrimPrefix(l, "ok "))
		case <-time.After(time.Minute):
			t.Fatalf("kill %d: child made no progress: %s", k, stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(15000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child ended by itself (%v): %s", k, err, stderr.String())
		}
		for l := range lines {
			registered = append(registered, strings.TrimPrefix(l, "ok "))
		}

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("kill %d: reopening: %v", k, err)
		}
		rep, err := s.Verify(VerifyOptions{CheckContents: true})
		if err != nil {
			t.Fatalf("kill %d: verify: %v", k, err)
		}
		if !rep.Clean() {
			t.Fatalf("kill %d: verify found errors:\n%s", k, strings.Join(rep.Errors, "\n"))
		}
		if len(rep.Garbage) > 0 {
			killedMidway++
		}
		for _, b := range registered {
			p, err := parseBase(b)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := s.IsValid(p); !ok || err != nil {
				t.Fatalf("kill %d: %s was reported registered but is not valid (%v)", k, b, err)
			}
		}
		// Keep the store small enough for 200 rounds: repair the garbage
		// now and then, which must leave it clean too.
		if k%20 == 19 {
			if _, err := s.Verify(VerifyOptions{Repair: true}); err != nil {
				t.Fatal(err)
			}
			// store/gc empties the trash in nexis; the store's own test
			// cannot import it.
			if err := os.RemoveAll(s.TrashDir()); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Verify(VerifyOptions{CheckContents: true})
			if err != nil || !rep.Clean() || len(rep.Garbage) > 0 {
				t.Fatalf("kill %d: after repair: %v %+v", k, err, rep)
			}
		}
		s.Close()
	}
	t.Logf("%d kills, %d paths registered, %d kills left garbage to collect", kills, len(registered), killedMidway)
}

// TestTwoWriters runs two processes registering at once: the second
// waits for the lock, says who holds it, and both finish with every
// path registered.
func TestTwoWriters(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "store")
	// Create the store first so both children race only for the lock.
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Hold the lock while both start, so one of them has to wait.
	holder, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	var errs []*bytes.Buffer
	for _, id := range []string{"a", "b"} {
		cmd := childCmd(t, "writer", dir, id)
		var e bytes.Buffer
		cmd.Stderr = &e
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		errs = append(errs, &e)
	}
	// Give the children time to reach the lock; correctness does not
	// depend on it, only whether the wait message is seen.
	time.Sleep(300 * time.Millisecond)
	holder.Close()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer %d: %v: %s", i, err, errs[i])
		}
	}
	waited := 0
	for _, e := range errs {
		if strings.Contains(e.String(), "waiting for pid") {
			waited++
		}
	}
	if waited == 0 {
		t.Errorf("no writer reported waiting for the lock holder: %q %q", errs[0], errs[1])
	}
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, _ := r.Stats()
	if st.Paths != 40 {
		t.Errorf("%d paths registered, want 40", st.Paths)
	}
	for _, id := range []string{"a", "b"} {
		for i := 0; i < 20; i++ {
			if ok, _ := r.IsValid(fakePath(fmt.Sprintf("w%s-%d", id, i))); !ok {
				t.Errorf("w%s-%d lost", id, i)
			}
		}
	}
	mustVerify(t, r, true)
}
