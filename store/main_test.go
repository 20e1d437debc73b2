package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// The test binary doubles as the child process of the crash and
// concurrency tests: real processes, killed for real.
const (
	envChild = "NEXIS_STORE_TEST_CHILD" // "crash", "writer" or "noclose"
	envDir   = "NEXIS_STORE_TEST_DIR"
	envArg   = "NEXIS_STORE_TEST_ARG"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "":
		os.Exit(m.Run())
	case "crash":
		os.Exit(crashChild(os.Getenv(envDir), os.Getenv(envArg)))
	case "writer":
		os.Exit(writerChild(os.Getenv(envDir), os.Getenv(envArg)))
	case "noclose":
		os.Exit(noCloseChild(os.Getenv(envDir), os.Getenv(envArg)))
	}
	os.Exit(2)
}

// crashChild ingests and registers forever, printing "ok <hash>-<name>"
// after each registration returns; the parent kills it at random.
func crashChild(dir, seed string) int {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	n, _ := strconv.Atoi(seed)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	scratch := filepath.Join(filepath.Dir(dir), "scratch", strconv.Itoa(os.Getpid()))
	var recent []storepath.Path
	for i := 0; ; i++ {
		src := filepath.Join(scratch, strconv.Itoa(i))
		os.MkdirAll(filepath.Join(src, "sub"), 0o755)
		// Shared content exercises pool counts; unique content makes new
		// paths; a mention of a recent path makes references.
		os.WriteFile(filepath.Join(src, "shared"), []byte("shared content"), 0o644)
		os.WriteFile(filepath.Join(src, "sub", "uniq"), fmt.Appendf(nil, "%d-%d-%d", n, i, rng.Uint64()), 0o755)
		var ref string
		if len(recent) > 0 {
			ref = s.Logical(recent[rng.IntN(len(recent))])
		}
		os.WriteFile(filepath.Join(src, "sub", "ref"), []byte("uses "+ref+"/bin\n"), 0o644)
		os.Symlink("../../etc", filepath.Join(src, "link"))
		target := fakePath(fmt.Sprintf("p%d-%d-%d", n, i, rng.Uint32()))
		var err error
		switch i % 5 {
		case 0, 1:
			_, err = s.Ingest(src, target, IngestOptions{RefCandidates: recent, Move: i%5 == 1})
		case 2:
			var pi *PathInfo
			pi, err = s.AddPath(src, "added")
			if err == nil {
				target = pi.Path
			}
		case 3:
			_, err = s.Ingest(src, target, IngestOptions{RefCandidates: recent})
			if err == nil {
				err = s.AddRoot(fmt.Sprintf("r%d", rng.IntN(4)), target)
			}
		case 4:
			// Pipelined batches: a kill lands while one is written and
			// the next prepared. Each path refers to the one before it,
			// across batches too; only the last is reported, and it is
			// valid only if all of them are.
			var batches [][]Registration
			prev := recent
			for b := 0; b < 3 && err == nil; b++ {
				var batch []Registration
				for k := 0; k < 3 && err == nil; k++ {
					target = fakePath(fmt.Sprintf("b%d-%d-%d-%d", n, i, b, k))
					var r Registration
					r, err = placeOneFile(s, target, fmt.Sprintf("batch %d", k), prev...)
					batch = append(batch, r)
					prev = []storepath.Path{target}
				}
				batches = append(batches, batch)
			}
			if err == nil {
				_, err = s.RegisterBatches(batches)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "ok %s\n", target.Base())
		out.Flush()
		recent = append(recent, target)
		if len(recent) > 4 {
			recent = recent[1:]
		}
		os.RemoveAll(src)
	}
}

// writerChild opens the store (waiting for the lock if need be),
// registers count paths, and exits.
func writerChild(dir, arg string) int {
	s, err := Open(dir, Options{OnWait: func(h string) { fmt.Fprintf(os.Stderr, "waiting for %s\n", h) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	scratch := filepath.Join(filepath.Dir(dir), "scratch-"+arg)
	for i := 0; i < 20; i++ {
		src := filepath.Join(scratch, strconv.Itoa(i))
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "f"), fmt.Appendf(nil, "%s %d", arg, i), 0o644)
		if _, err := s.Ingest(src, fakePath(fmt.Sprintf("w%s-%d", arg, i)), IngestOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// noCloseChild ingests one path, roots it as "r<arg>" and exits without
// closing the store.
func noCloseChild(dir, arg string) int {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	src := filepath.Join(filepath.Dir(dir), "scratch", arg)
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte(arg), 0o644)
	d := treehash.Sum([]byte(arg))
	p := storepath.Path{Hash: storepath.EncodeHash(d[:]), Name: "p" + arg}
	if _, err := s.Ingest(src, p, IngestOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.AddRoot("r"+arg, p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
