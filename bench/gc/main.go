// Command gcbench measures `nexis gc` against its floor.
//
// It generates a store through nexis's own store API (store.IngestBatch:
// hashing, dedup, reference scanning, registration) from a seed: N paths,
// each a directory of 3 files of 1–8 KiB, 30% of the files identical to
// others, references forming a DAG (0–5 references to earlier paths).
// Live paths refer only to live paths; a few "profile" paths (one per
// group, like generations) refer to the live paths nothing else refers
// to, and only the profiles are rooted. Dead paths may refer to anything
// earlier, so collecting them decrements live counts too.
//
// Modes:
//
//	floor  the store is copied (cp -a, hard links kept); on one copy the
//	       dead directories are deleted with rm -rf (the floor), on the
//	       other `nexis gc` runs; both wall times are printed.
//	flat   only `nexis gc`: with -garbage 1000 and growing -n, the time
//	       must stay flat.
//
// The store is written under -work (a fresh directory is made in it);
// -keep leaves it there.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

func main() {
	n := flag.Int("n", 10000, "store paths")
	garbage := flag.Int("garbage", -1, "dead paths (default: half of -n)")
	seed := flag.Uint64("seed", 1, "generator seed")
	mode := flag.String("mode", "floor", "floor: nexis gc against rm -rf of the same directories; flat: nexis gc only; gen: generate and keep")
	nexis := flag.String("nexis", "bin/nexis", "the nexis binary")
	work := flag.String("work", os.TempDir(), "directory to build the stores in")
	workers := flag.Int("workers", 0, "nexis gc --workers (0: its default)")
	keep := flag.Bool("keep", false, "keep the generated stores")
	flag.Parse()
	if *garbage < 0 {
		*garbage = *n / 2
	}
	if err := run(*n, *garbage, *seed, *mode, *nexis, *work, *workers, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "gcbench:", err)
		os.Exit(1)
	}
}

const logicalDir = "/store"

func run(n, garbage int, seed uint64, mode, nexis, work string, workers int, keep bool) error {
	nexis, err := filepath.Abs(nexis)
	if err != nil {
		return err
	}
	base, err := os.MkdirTemp(work, "gcbench-")
	if err != nil {
		return err
	}
	if !keep && mode != "gen" {
		defer os.RemoveAll(base)
	}
	rootA := filepath.Join(base, "a")
	t0 := time.Now()
	dead, err := generate(filepath.Join(rootA, logicalDir), filepath.Join(base, "scratch"), n, garbage, seed)
	if err != nil {
		return err
	}
	gen := time.Since(t0)
	fmt.Printf("generated n=%d garbage=%d seed=%d in %s\n", n, garbage, seed, gen.Round(time.Millisecond))
	if mode == "gen" {
		fmt.Printf("store root: %s\n", rootA)
		return nil
	}

	var floor time.Duration
	if mode == "floor" {
		// Both stores are fresh copies made back to back, so that
		// neither deletion finds its inodes and directories colder in
		// the caches than the other's: the generated original, written
		// over minutes, would be.
		rootB := filepath.Join(base, "b")
		gen := filepath.Join(base, "gen")
		if err := os.Rename(rootA, gen); err != nil {
			return err
		}
		for _, dst := range []string{rootA, rootB} {
			if out, err := exec.Command("cp", "-a", gen, dst).CombinedOutput(); err != nil {
				return fmt.Errorf("cp -a: %v: %s", err, out)
			}
		}
		if err := os.RemoveAll(gen); err != nil {
			return err
		}
		list := filepath.Join(base, "dead.list")
		var b bytes.Buffer
		for _, rel := range dead {
			b.WriteString(filepath.Join(rootB, logicalDir, rel))
			b.WriteByte(0)
		}
		if err := os.WriteFile(list, b.Bytes(), 0o644); err != nil {
			return err
		}
		syncAll()
		t := time.Now()
		cmd := exec.Command("sh", "-c", "xargs -0 rm -rf < "+list)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("rm -rf: %v: %s", err, out)
		}
		floor = time.Since(t)
		// rm -rf deleted exactly the dead directories: check.
		for _, rel := range dead[:min(len(dead), 100)] {
			if _, err := os.Lstat(filepath.Join(rootB, logicalDir, rel)); err == nil {
				return fmt.Errorf("rm -rf left %s", rel)
			}
		}
		os.RemoveAll(rootB)
	}

	syncAll()
	args := []string{"--root", rootA, "--store", logicalDir, "gc", "--json"}
	if workers > 0 {
		args = append(args, "--workers", fmt.Sprint(workers))
	}
	t := time.Now()
	out, err := exec.Command(nexis, args...).Output()
	if err != nil {
		return fmt.Errorf("nexis gc: %v", err)
	}
	wall := time.Since(t)
	var st struct {
		Paths int     `json:"paths_deleted"`
		Bytes int64   `json:"bytes_freed"`
		Secs  float64 `json:"seconds"`
		Plan  float64 `json:"plan_seconds"`
		Coll  float64 `json:"collect_seconds"`
		Trash float64 `json:"trash_seconds"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("nexis gc --json: %v: %s", err, out)
	}
	if st.Paths != len(dead) {
		return fmt.Errorf("nexis gc deleted %d paths, the generator made %d dead ones", st.Paths, len(dead))
	}
	for _, rel := range dead {
		if _, err := os.Lstat(filepath.Join(rootA, logicalDir, rel)); err == nil {
			return fmt.Errorf("nexis gc left %s", rel)
		}
	}
	fmt.Printf("nexis gc: %d paths, %d bytes freed, wall %s (in-process %.3fs: plan %.3fs, unregister+rename %.3fs, trash %.3fs)\n", st.Paths, st.Bytes, wall.Round(time.Millisecond), st.Secs, st.Plan, st.Coll, st.Trash)
	if mode == "floor" {
		fmt.Printf("floor rm -rf: %s\nratio gc/floor: %.2f\n", floor.Round(time.Millisecond), wall.Seconds()/floor.Seconds())
	}
	if os.Getenv("GCBENCH_VERIFY") != "" {
		vout, err := exec.Command(nexis, "--root", rootA, "--store", logicalDir, "store", "verify", "--check-contents").CombinedOutput()
		fmt.Printf("verify: %s", vout)
		if err != nil {
			return fmt.Errorf("verify after gc: %v", err)
		}
	}
	return nil
}

func syncAll() { exec.Command("sync").Run() }

// generate builds the store and returns the dead paths (relative to the
// store directory).
func generate(dir, scratch string, n, garbage int, seed uint64) ([]string, error) {
	s, err := store.Open(dir, store.Options{LogicalDir: logicalDir})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(seed, 0x9c))
	// Shared contents: 30% of all files are drawn from a pool, so that
	// dedup and content counts are exercised.
	shared := make([][]byte, max(n/10, 8))
	for i := range shared {
		shared[i] = randomBytes(rng, 1024+rng.IntN(7*1024))
	}
	deadAt := make([]bool, n)
	for _, i := range rng.Perm(n)[:garbage] {
		deadAt[i] = true
	}
	paths := make([]storepath.Path, n)
	var live []int
	referred := make([]bool, n)
	const batch = 500
	var reqs []store.IngestRequest
	flush := func() error {
		if len(reqs) == 0 {
			return nil
		}
		if _, err := s.IngestBatch(reqs); err != nil {
			return err
		}
		reqs = reqs[:0]
		return nil
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("pkg%d-1.0", i)
		h := storepath.EncodeHash(randomBytes(rng, 20))
		p := storepath.Path{Hash: h, Name: name}
		paths[i] = p
		// References: live paths refer only to live paths; dead ones to
		// anything earlier.
		var cands []storepath.Path
		var text strings.Builder
		for k, nrefs := 0, rng.IntN(6); k < nrefs && i > 0; k++ {
			var j int
			if deadAt[i] {
				j = rng.IntN(i)
			} else if len(live) > 0 {
				j = live[rng.IntN(len(live))]
			} else {
				break
			}
			cands = append(cands, paths[j])
			if !deadAt[i] {
				referred[j] = true
			}
			fmt.Fprintf(&text, "%s/lib\n", s.Logical(paths[j]))
		}
		src := filepath.Join(scratch, h)
		if err := os.MkdirAll(filepath.Join(src, "lib"), 0o755); err != nil {
			return nil, err
		}
		files := []string{"bin", "lib/a", "lib/b"}
		for k, f := range files {
			var data []byte
			if rng.IntN(10) < 3 {
				data = shared[rng.IntN(len(shared))]
			} else {
				data = randomBytes(rng, 1024+rng.IntN(7*1024))
			}
			if k == 0 && text.Len() > 0 {
				// The references live in the first file, which then is
				// no longer identical to anything.
				data = append([]byte(text.String()), data...)
			}
			if err := os.WriteFile(filepath.Join(src, f), data, 0o644); err != nil {
				return nil, err
			}
		}
		reqs = append(reqs, store.IngestRequest{Src: src, Target: p, IngestOptions: store.IngestOptions{RefCandidates: cands, Move: true}})
		if !deadAt[i] {
			live = append(live, i)
		}
		if len(reqs) == batch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	// Profiles: a few paths, like system generations, that refer to the
	// live paths nothing else refers to; only they are rooted.
	var tops []storepath.Path
	for _, i := range live {
		if !referred[i] {
			tops = append(tops, paths[i])
		}
	}
	const profiles = 4
	for g := 0; g < profiles && len(tops) > 0; g++ {
		part := tops[g*len(tops)/profiles : (g+1)*len(tops)/profiles]
		if len(part) == 0 {
			continue
		}
		p := storepath.Path{Hash: storepath.EncodeHash(randomBytes(rng, 20)), Name: fmt.Sprintf("profile-%d", g)}
		src := filepath.Join(scratch, p.Hash)
		var w bytes.Buffer
		for _, t := range part {
			fmt.Fprintf(&w, "%s\n", s.Logical(t))
		}
		os.MkdirAll(src, 0o755)
		if err := os.WriteFile(filepath.Join(src, "manifest"), w.Bytes(), 0o644); err != nil {
			return nil, err
		}
		if _, err := s.Ingest(src, p, store.IngestOptions{RefCandidates: part, Move: true}); err != nil {
			return nil, err
		}
		if err := s.PutGeneration(store.Generation{Profile: "bench", Number: uint64(g + 1), Path: p, Time: time.Now()}); err != nil {
			return nil, err
		}
	}
	var dead []string
	for i, d := range deadAt {
		if d {
			dead = append(dead, paths[i].Rel())
		}
	}
	// Every dead path must be collectable and every live one kept: the
	// generator's own check, so that the benchmark measures what it says.
	st, err := s.Stats()
	if err != nil {
		return nil, err
	}
	if st.Paths != int64(n+min(profiles, len(tops))) {
		return nil, fmt.Errorf("generated %d paths, want %d", st.Paths, n+min(profiles, len(tops)))
	}
	w := bufio.NewWriter(os.Stderr)
	fmt.Fprintf(w, "store: %d paths, %d files, %d distinct contents, %d bytes (%d deduplicated)\n", st.Paths, st.Files, st.Contents, st.Bytes, st.ContentBytes)
	w.Flush()
	return dead, nil
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
