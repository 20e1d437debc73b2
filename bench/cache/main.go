// Command cache measures substitution from a binary cache against its
// floor: curl fetching the same files from the same server. The server
// is Debian's nginx (-server nginx, the default) or versitygw, an S3
// server (-server s3: the cache is an s3:// bucket, uploaded by nexis
// copy's S3 client, and curl signs its requests with --aws-sigv4).
//
// It makes a store with a closure of -paths paths holding -mb MB in all
// (each path a few files, half of them random bytes, half text; each path
// refers to up to three earlier ones, and a root refers to the rest), copies
// the closure into a cache directory served by Debian's nginx on
// 127.0.0.1, and then, -runs times each:
//
//   - curl, one process, fetches nexis-cache-info, every <hash>.info and
//     every archive into a fresh directory, sequentially on one
//     connection: the floor;
//   - curl --parallel (16 at once) does the same: a second floor;
//   - nexis opens a fresh store and substitutes the root's closure from
//     the cache (records, signature checks, parallel downloads, zstd,
//     archive and tree hashes, dedup, one atomic registration, the store
//     closed and synced): the measured time.
//
// It prints the medians, the CPU time (user and system) of each, and the
// ratio to each floor; runs are paired, so the median of the per-run
// ratios cancels most of what other processes do to the machine. The
// target is a ratio of at most 1.5 to the sequential floor.
//
//	go run ./bench/cache [-paths 1000] [-mb 100] [-runs 5] [-work DIR -keep]
//
// Needs nginx or versitygw, and curl (scripts/install-deps).
//
// On the 2-core development VM (ext4), 26 November 2026: with the
// machine otherwise idle (load average about 1), curl 1.20 to 1.35 s
// median, nexis 1.46 to 1.48 s (1.7 to 1.8 s CPU); median ratio 1.10 to
// 1.21, median of the per-run ratios 1.14 to 1.19. Shared with other
// builds (load average 5 to 14) the median ratio was 1.7 to 2.4.
// Profiles put most of nexis's time in the kernel creating inodes: this
// filesystem takes 150 to 250 µs per mkdir or file creation, and a
// substitution creates about 8,000 (1,000 path directories, 3,000
// directories inside them, 3,000 files, the bucket directories) where
// curl creates 2,000 flat files. Verification (three BLAKE3 passes,
// ed25519), zstd and registration (one syncfs, one RocksDB batch) are a
// small part.
//
// With -server s3, 6 December 2026, on the same VM shared with other
// builds (load average 3 to 9; versitygw, curl and nexis on the same 2
// cores): curl 1.5 to 1.6 s median sequential (versitygw answers a
// signed GET in about 0.7 ms, where nginx serves a file in 0.1 ms),
// nexis 2.7 to 3.6 s; median ratio 1.76 to 2.2, median of the per-run
// ratios 1.76 to 2.45 (single runs from 0.70 to 3.8). The S3 client is
// not where the time goes: in the same hour the nginx run gave curl
// 0.23 s and nexis 2.1 s, so S3 added about 0.6 s to nexis and 1.3 s to
// curl; profiles put nexis's time in unpacking and registering (inode
// creation, as above), and minio-go's requests under 10 %. Halving the
// requests (one GET per object, not HEAD then GET) took it from 2.5x
// to under 2x.
//
// 6 December 2026, later, load average 8 to 21: per-phase timings of one
// substitution put 3 to 5 s in the downloads (unpacking: 4,000 mkdirs
// and 3,000 file creations are half of nexis's 1.8 s of CPU; curl uses
// 0.6 to 0.9 s, versitygw 0.5 s, and answers every GET with
// "Connection: close", so curl and nexis both dial 2,000 connections)
// and 0.7 to 1.6 s in the commit after the last download (placing 0.4
// to 0.9 s, one path at a time; syncfs 0.13 to 0.44 s; registration 0.1
// s; pooling 0.05 to 0.4 s). Placing and pooling several paths at once
// took the median of the per-run ratios from 2.52x to 1.97x (curl 1.43 s
// median, nexis 2.88 s; runs 1.54 to 2.89). The target of 1.5x is not
// met on this loaded VM: nexis needs twice curl's CPU, mostly the
// kernel creating the store's directories and files.
//
// 6 December 2026, later still, alternating the program without and
// with parallel placing (5 runs each, three times over, load average 13
// to 17): nexis 4.77 s median without, 4.02 s with (CPU 1.7 to 2.0 s
// both), curl 1.8 to 3.9 s; the medians of the per-run ratios, 1.96x
// and 2.05x, are curl's noise at that load. With the load at 3 to 11,
// the per-run ratios' medians were 0.94 to 1.47 for both. Per phase
// (load 5 to 10): downloads 0.6 to 1.4 s, then placing 0.1 to 0.2 s,
// syncfs 0.15 to 0.35 s, registration and pooling 0.04 to 0.07 s each.
// Two ways to shorten what follows the downloads were measured and
// dropped: starting each file's writeback as it is unpacked
// (sync_file_range) shortened the syncfs but made the downloads and the
// staging after them slower (the files' metadata updates waited on the
// journal), and making the paths' buckets while their archives
// downloaded took placing from 150 to 30 ms but the syncfs from 0.33 to
// 0.69 s; with both, the medians of the per-run ratios were 2.95x and
// 2.36x in the rounds where neither gave 1.28x and 1.99x.
//
// 6 December 2026, 09:18 UTC, the machine otherwise idle (load average
// 0.6), -server s3 -runs 7: curl 1.114 s median sequential (798 ms CPU),
// 1.00 s with 16 in parallel; nexis 1.217 s (1.64 s CPU); ratio 1.09x,
// median of the per-run ratios 1.25x (runs 1.00 to 1.70).
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/cache/cachetest"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

var (
	npaths  = flag.Int("paths", 1000, "paths in the closure")
	mb      = flag.Int("mb", 100, "total size of the closure in MB")
	runs    = flag.Int("runs", 5, "measurements of each")
	jobs    = flag.Int("j", 16, "parallel downloads")
	keep    = flag.Bool("keep", false, "keep the work directory")
	cpuProf = flag.String("cpuprofile", "", "write a CPU profile of the nexis runs to `FILE`")
	workDir = flag.String("work", "", "work in `DIR` and reuse the closure made there before (with -keep)")
	server  = flag.String("server", "nginx", "serve the cache with `SERVER`: nginx or s3 (versitygw)")
)

// bench adapts the program to cachetest's T.
type bench struct {
	work     string
	cleanups []func()
	n        int
}

func (b *bench) Helper() {}
func (b *bench) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	b.cleanup()
	os.Exit(1)
}
func (b *bench) TempDir() string {
	b.n++
	d := filepath.Join(b.work, fmt.Sprintf("tmp%d", b.n))
	check(os.MkdirAll(d, 0o755))
	return d
}
func (b *bench) Cleanup(f func()) { b.cleanups = append(b.cleanups, f) }
func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func fakePath(name string) storepath.Path {
	d := blake3.Sum256([]byte(name))
	return storepath.Path{Hash: storepath.EncodeHash(d[:]), Name: name}
}

func main() {
	flag.Parse()
	prog := map[string]string{"nginx": "nginx", "s3": "versitygw"}[*server]
	if prog == "" {
		check(fmt.Errorf("-server %s: want nginx or s3", *server))
	}
	for _, p := range []string{"curl", prog} {
		if _, err := exec.LookPath(p); err != nil {
			check(fmt.Errorf("%s is not installed: run scripts/install-deps", p))
		}
	}
	work, err := os.MkdirTemp("", "nexis-bench-cache-")
	check(err)
	if *workDir != "" {
		work = *workDir
		check(os.MkdirAll(work, 0o755))
	}
	b := &bench{work: work}
	defer func() {
		b.cleanup()
		if !*keep {
			os.RemoveAll(work)
		}
	}()

	t0 := time.Now()
	src, err := store.Open(filepath.Join(work, "src"), store.Options{LogicalDir: "/store"})
	check(err)
	// A closure made before in the same -work directory is reused.
	root, total := fakePath(fmt.Sprintf("pkg%04d-1.0", *npaths-1)), int64(0)
	if ok, err := src.IsValid(root); err != nil || !ok {
		root, total = makeClosure(src, filepath.Join(work, "gen"))
	}
	key, err := sign.Generate("bench-cache-1")
	check(err)
	cacheRoot := filepath.Join(work, "www")
	os.RemoveAll(cacheRoot)
	// base is where curl fetches the files; url is the cache nexis
	// substitutes from.
	var base, url string
	var curlArgs []string
	var upload time.Duration
	if *server == "s3" {
		srv := cachetest.StartS3(b, cacheRoot)
		srv.Bucket("cache")
		for _, kv := range srv.Env() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
		base, url = "http://"+srv.Endpoint+"/cache", srv.URL("cache", "")
		curlArgs = []string{"--aws-sigv4", "aws:amz:us-east-1:s3", "--user", srv.AccessKey + ":" + srv.SecretKey, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"}
	} else {
		url = "file://" + filepath.Join(cacheRoot, "cache")
	}
	dest, err := cache.OpenDest(context.Background(), url, cache.SSHOptions{})
	check(err)
	t1 := time.Now()
	cs, err := cache.Copy(context.Background(), src, dest, []storepath.Path{root}, cache.ExportOptions{Key: key, TempDir: work})
	check(err)
	upload = time.Since(t1)
	check(src.Close())
	fmt.Printf("closure: %d paths, %.1f MB of files, %.1f MB stored in the cache (zstd); set up in %v, of which the copy to %s %v\n",
		cs.Closure, float64(total)/1e6, float64(cs.Bytes)/1e6, time.Since(t0).Round(time.Millisecond), *server, upload.Round(time.Millisecond))
	if *server == "nginx" {
		ng := cachetest.StartNginx(b, cacheRoot, cachetest.NginxOptions{})
		base = ng.URL + "/cache"
		url = base
	}
	files := []string{cache.CacheInfoFile}
	ents, err := os.ReadDir(filepath.Join(cacheRoot, "cache"))
	check(err)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".info") {
			files = append(files, e.Name())
		}
	}
	arcs, err := os.ReadDir(filepath.Join(cacheRoot, "cache", "archive"))
	check(err)
	for _, e := range arcs {
		files = append(files, "archive/"+e.Name())
	}
	cfg := filepath.Join(work, "curl.cfg")
	var sb strings.Builder
	for i, f := range files {
		fmt.Fprintf(&sb, "url = \"%s/%s\"\noutput = \"f%d\"\n", base, f, i)
	}
	check(os.WriteFile(cfg, []byte(sb.String()), 0o644))

	trusted, err := sign.NewTrusted(key.Public().String())
	check(err)
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		check(err)
		f.Close()
	}
	var seq, par, nx, seqCPU, parCPU, nxCPU []time.Duration
	for r := 0; r < *runs; r++ {
		w, c := curl(work, cfg, false, curlArgs)
		seq, seqCPU = append(seq, w), append(seqCPU, c)
		w, c = curl(work, cfg, true, curlArgs)
		par, parCPU = append(par, w), append(parCPU, c)
		if *cpuProf != "" {
			f, err := os.OpenFile(*cpuProf, os.O_WRONLY|os.O_TRUNC, 0)
			check(err)
			check(pprof.StartCPUProfile(f))
			w, c = substitute(work, url, trusted, root, cs.Closure)
			pprof.StopCPUProfile()
			f.Close()
		} else {
			w, c = substitute(work, url, trusted, root, cs.Closure)
		}
		nx, nxCPU = append(nx, w), append(nxCPU, c)
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	ms, mp, mn := med(seq), med(par), med(nx)
	fmt.Printf("curl, sequential (floor):   %v wall, %v CPU  (runs %v)\n", ms.Round(time.Millisecond), med(seqCPU).Round(time.Millisecond), round(seq))
	fmt.Printf("curl, 16 in parallel:       %v wall, %v CPU  (runs %v)\n", mp.Round(time.Millisecond), med(parCPU).Round(time.Millisecond), round(par))
	fmt.Printf("nexis substitute -j %-2d:     %v wall, %v CPU  (runs %v)\n", *jobs, mn.Round(time.Millisecond), med(nxCPU).Round(time.Millisecond), round(nx))
	fmt.Printf("ratio to the sequential floor: %.2fx (target <= 1.5x); to the parallel one: %.2fx\n",
		float64(mn)/float64(ms), float64(mn)/float64(mp))
	// Runs are paired (curl, curl, nexis one after the other), so the
	// per-run ratio cancels most of the load other processes put on the
	// machine.
	var ratios []float64
	for i := range nx {
		ratios = append(ratios, float64(nx[i])/float64(seq[i]))
	}
	slices.Sort(ratios)
	fmt.Printf("median of the per-run ratios to the sequential floor: %.2fx (runs %.2f)\n", ratios[len(ratios)/2], ratios)
}

func round(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// curl fetches every file of the cache into a fresh directory and
// returns the wall time and the CPU time (user and system) it took.
func curl(work, cfg string, parallel bool, extra []string) (time.Duration, time.Duration) {
	dir := filepath.Join(work, "curl-out")
	os.RemoveAll(dir)
	check(os.MkdirAll(dir, 0o755))
	args := append([]string{"-sS", "--no-progress-meter", "--fail", "-K", cfg}, extra...)
	if parallel {
		args = append(args, "--parallel", "--parallel-max", "16")
	}
	cmd := exec.Command("curl", args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	start := time.Now()
	check(cmd.Run())
	d := time.Since(start)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	os.RemoveAll(dir)
	return d, cpu
}

// cpuTime is this process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// substitute opens a fresh store and substitutes root's closure; it
// returns the wall and CPU time that took.
func substitute(work, url string, trusted *sign.Trusted, root storepath.Path, want int) (time.Duration, time.Duration) {
	dir := filepath.Join(work, "dst")
	os.RemoveAll(dir)
	c0 := cpuTime()
	start := time.Now()
	st, err := store.Open(dir, store.Options{LogicalDir: "/store"})
	check(err)
	sub, err := cache.NewSubstituter([]string{url}, trusted)
	check(err)
	sub.Jobs = *jobs
	stats, err := sub.Substitute(context.Background(), st, []storepath.Path{root})
	check(err)
	check(st.Close())
	d := time.Since(start)
	cpu := cpuTime() - c0
	if stats.Paths != want {
		check(fmt.Errorf("substituted %d paths, want %d", stats.Paths, want))
	}
	os.RemoveAll(dir)
	return d, cpu
}

// makeClosure ingests *npaths paths into st and returns the root, which
// refers (directly or not) to all of them, and the total file size.
func makeClosure(st *store.Store, gen string) (storepath.Path, int64) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	per := int64(*mb) * 1e6 / int64(*npaths)
	var paths []storepath.Path
	var batch []store.IngestRequest
	referred := map[int]bool{}
	var total int64
	words := strings.Fields("the quick brown fox jumps over the lazy dog configure make install share lib bin include")
	for i := 0; i < *npaths; i++ {
		p := fakePath(fmt.Sprintf("pkg%04d-1.0", i))
		dir := filepath.Join(gen, p.Name)
		check(os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
		check(os.MkdirAll(filepath.Join(dir, "share", "doc"), 0o755))
		var refs []storepath.Path
		var mention strings.Builder
		if i == *npaths-1 {
			for j := 0; j < i; j++ {
				if !referred[j] {
					refs = append(refs, paths[j])
				}
			}
		} else {
			for k := 0; k < 3 && i > 0; k++ {
				j := rng.IntN(i)
				refs = append(refs, paths[j])
				referred[j] = true
			}
		}
		for _, r := range refs {
			fmt.Fprintf(&mention, "%s/lib\n", st.Logical(r))
		}
		// Half random (a binary), half text (docs), plus the references.
		bin := make([]byte, per/2)
		rand.Read(bin)
		check(os.WriteFile(filepath.Join(dir, "bin", "prog"), bin, 0o755))
		var text strings.Builder
		text.WriteString(mention.String())
		for int64(text.Len()) < per/2 {
			text.WriteString(words[rng.IntN(len(words))])
			text.WriteByte(' ')
		}
		check(os.WriteFile(filepath.Join(dir, "share", "doc", "README"), []byte(text.String()), 0o644))
		check(os.WriteFile(filepath.Join(dir, "share", "doc", "VERSION"), []byte("1.0\n"), 0o644))
		total += int64(len(bin) + text.Len() + 4)
		batch = append(batch, store.IngestRequest{Src: dir, Target: p, IngestOptions: store.IngestOptions{RefCandidates: refs, Move: true}})
		paths = append(paths, p)
		// Batches register in one commit; a reference may be in the
		// same batch.
		if len(batch) == 100 || i == *npaths-1 {
			_, err := st.IngestBatch(batch)
			check(err)
			batch = nil
		}
	}
	return paths[len(paths)-1], total
}
