// Command gcbench puts the workload of ../shared/bench/nixgc (gen.py's
// manifest.jsonl and its tree of path directories) into a nexis store and
// measures `nexis gc` there; bench/gc/run.sh runs it next to Nix's
// `nix-store --gc` and the `rm -rf` floors of both stores, and prints one
// table.
//
// Subcommands:
//
//	ingest -manifest M -tree T -root R
//	    put every path of M, copied from T, into the store of root R
//	    (logical directory /store) with the references M lists: same
//	    names (gen.py's hash parts use nexis's alphabet), same bytes,
//	    same reference graph.
//	roots -manifest M -garbage K -out D [-root R]
//	    choose the roots: with K=0 gen.py's own (its live/dead split);
//	    with K>0 the last K paths are garbage (paths refer only to earlier
//	    ones, so nothing else refers to them) and every other path that
//	    no other remaining path refers to is a root. Writes D/roots.txt
//	    ("name basename"), D/dead.txt and D/live.txt; with -root, adds the
//	    roots to that store in one batch and settles its database (flushed,
//	    no compaction pending: -settle=false leaves it as the batch left
//	    it).
//	floorlist -root R -dead F -out L
//	    write (NUL-separated) what deleting F's paths removes from the
//	    nexis store: their directories, and the pool entries of the
//	    contents only they hold. rm -rf of L is nexis's floor.
//	gc -root R -dead F -live F2 [-nexis bin/nexis] [-verify] [-flags "--uring"]
//	    run `nexis gc --json` on R and time it (the wall time the user
//	    waits), then wait for the background worker to empty the trash
//	    (the full deletion); check that exactly the dead paths went.
//	    Prints one JSON line.
//	table FILE...
//	    print the results (JSON lines) as one table.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

const logicalDir = "/store"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gcbench ingest|roots|floorlist|gc|table [flags]")
		os.Exit(2)
	}
	fl := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	manifest := fl.String("manifest", "", "gen.py's manifest.jsonl")
	tree := fl.String("tree", "", "directory holding the path directories")
	root := fl.String("root", "", "nexis root (its store is <root>/store)")
	garbage := fl.Int("garbage", 0, "garbage paths (0: gen.py's live/dead split)")
	out := fl.String("out", "", "output file or directory")
	dead := fl.String("dead", "", "dead.txt")
	live := fl.String("live", "", "live.txt")
	nexis := fl.String("nexis", "bin/nexis", "the nexis binary")
	label := fl.String("label", "", "label of this run in the table")
	verify := fl.Bool("verify", false, "after gc, run nexis store verify --check-contents")
	gcFlags := fl.String("flags", "", "more flags for nexis gc (e.g. --uring)")
	what := fl.String("what", "nexis gc", "what the result line is called in the table")
	settle := fl.Bool("settle", true, "after adding the roots, flush the database and wait for its compactions")
	fl.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "ingest":
		err = ingest(*manifest, *tree, *root)
	case "roots":
		err = chooseRoots(*manifest, *garbage, *out, *root, *settle)
	case "floorlist":
		err = floorList(*root, *dead, *out)
	case "gc":
		err = runGC(*root, *dead, *live, *nexis, *label, *what, *verify, strings.Fields(*gcFlags))
	case "table":
		err = table(fl.Args())
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gcbench:", err)
		os.Exit(1)
	}
}

type mpath struct {
	Kind   string   `json:"kind"`
	I      int      `json:"i"`
	Name   string   `json:"name"`
	Refs   []string `json:"refs"`
	Live   bool     `json:"live"`
	Root   string   `json:"root"`
	Target string   `json:"target"`
	Files  []struct {
		Name string `json:"name"`
	} `json:"files"`
}

func readManifest(p string) (paths []mpath, roots []mpath, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m mpath
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		switch m.Kind {
		case "path":
			if m.I != len(paths) {
				return nil, nil, fmt.Errorf("%s: path %d out of order", p, m.I)
			}
			paths = append(paths, m)
		case "root":
			roots = append(roots, m)
		}
	}
	return paths, roots, sc.Err()
}

func parseName(base string) (storepath.Path, error) {
	if len(base) < storepath.HashLen+2 || base[storepath.HashLen] != '-' {
		return storepath.Path{}, fmt.Errorf("%q is not <hash>-<name>", base)
	}
	p := storepath.Path{Hash: base[:storepath.HashLen], Name: base[storepath.HashLen+1:]}
	if !storepath.IsHash(p.Hash) {
		return p, fmt.Errorf("%q: bad hash part", base)
	}
	return p, storepath.ValidName(p.Name)
}

func storeDir(root string) string { return filepath.Join(root, logicalDir) }

func ingest(manifest, tree, root string) error {
	paths, _, err := readManifest(manifest)
	if err != nil {
		return err
	}
	s, err := store.Open(storeDir(root), store.Options{LogicalDir: logicalDir})
	if err != nil {
		return err
	}
	defer s.Close()
	byName := map[string]storepath.Path{}
	t0 := time.Now()
	// Import, not Ingest: the references are the manifest's, given, not
	// scanned, and a batch is made durable with one syncfs rather than
	// an fsync per file of these small trees.
	const batch = 2000
	var reqs []store.ImportRequest
	flush := func() error {
		if len(reqs) == 0 {
			return nil
		}
		if _, err := s.Import(reqs); err != nil {
			return err
		}
		reqs = reqs[:0]
		return nil
	}
	for i, m := range paths {
		p, err := parseName(m.Name)
		if err != nil {
			return err
		}
		byName[m.Name] = p
		dir, err := s.TempPath()
		if err != nil {
			return err
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for _, f := range m.Files {
			b, err := os.ReadFile(filepath.Join(tree, m.Name, f.Name))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
				return err
			}
		}
		t, err := treehash.Scan(dir, treehash.ScanOptions{Workers: 1})
		if err != nil {
			return err
		}
		var refs []storepath.Path
		for _, r := range m.Refs {
			rp, ok := byName[r]
			if !ok {
				return fmt.Errorf("%s refers to %s, which comes later", m.Name, r)
			}
			refs = append(refs, rp)
		}
		reqs = append(reqs, store.ImportRequest{Dir: dir, Target: p, Files: t.Files, TreeHash: t.Hash, References: refs})
		if len(reqs) == batch {
			if err := flush(); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "\ringested %d/%d", i+1, len(paths))
		}
	}
	if err := flush(); err != nil {
		return err
	}
	st, err := s.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\ringested %d paths, %d files, %d distinct contents in %s\n", st.Paths, st.Files, st.Contents, time.Since(t0).Round(time.Millisecond))
	return nil
}

func chooseRoots(manifest string, garbage int, out, root string, settle bool) error {
	paths, groots, err := readManifest(manifest)
	if err != nil {
		return err
	}
	type rootT struct{ name, target string }
	var roots []rootT
	isDead := make([]bool, len(paths))
	if garbage == 0 {
		for _, r := range groots {
			roots = append(roots, rootT{r.Root, r.Target})
		}
		for i, m := range paths {
			isDead[i] = !m.Live
		}
	} else {
		if garbage >= len(paths) {
			return fmt.Errorf("-garbage %d: the manifest has %d paths", garbage, len(paths))
		}
		keep := len(paths) - garbage
		idx := map[string]int{}
		for i, m := range paths {
			idx[m.Name] = i
		}
		referred := make([]bool, keep)
		for _, m := range paths[:keep] {
			for _, r := range m.Refs {
				referred[idx[r]] = true
			}
		}
		for i := 0; i < keep; i++ {
			if !referred[i] {
				roots = append(roots, rootT{fmt.Sprintf("r%06d", len(roots)), paths[i].Name})
			}
		}
		for i := keep; i < len(paths); i++ {
			isDead[i] = true
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var rb, db, lb bytes.Buffer
	for _, r := range roots {
		fmt.Fprintf(&rb, "%s %s\n", r.name, r.target)
	}
	for i, m := range paths {
		if isDead[i] {
			db.WriteString(m.Name + "\n")
		} else {
			lb.WriteString(m.Name + "\n")
		}
	}
	for name, b := range map[string][]byte{"roots.txt": rb.Bytes(), "dead.txt": db.Bytes(), "live.txt": lb.Bytes()} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	if root == "" {
		return nil
	}
	s, err := store.Open(storeDir(root), store.Options{LogicalDir: logicalDir})
	if err != nil {
		return err
	}
	defer s.Close()
	m := map[string]storepath.Path{}
	for _, r := range roots {
		p, err := parseName(r.target)
		if err != nil {
			return err
		}
		m["bench/"+r.name] = p
	}
	if err := s.AddRoots(m); err != nil {
		return err
	}
	if !settle {
		return nil
	}
	return s.Settle()
}

func readList(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

func floorList(root, dead, out string) error {
	names, err := readList(dead)
	if err != nil {
		return err
	}
	s, err := store.Open(storeDir(root), store.Options{LogicalDir: logicalDir, ReadOnly: true})
	if err != nil {
		return err
	}
	defer s.Close()
	left := map[store.ContentRef]uint64{}
	var b bytes.Buffer
	for _, n := range names {
		p, err := parseName(n)
		if err != nil {
			return err
		}
		b.WriteString(s.Physical(p))
		b.WriteByte(0)
		nodes, err := s.GCNodes([]string{p.Hash})
		if err != nil || nodes[0] == nil {
			return fmt.Errorf("%s: not registered (%v)", n, err)
		}
		for _, c := range nodes[0].Contents {
			k := store.ContentRef{Digest: c.Digest, Type: c.Type}
			v, ok := left[k]
			if !ok {
				vs, err := s.ContentCounts([]store.ContentRef{c})
				if err != nil {
					return err
				}
				v = vs[0]
			}
			left[k] = v - 1
		}
	}
	pool := 0
	for c, v := range left {
		if v == 0 {
			if _, err := os.Lstat(s.PoolEntry(c)); err == nil {
				b.WriteString(s.PoolEntry(c))
				b.WriteByte(0)
				pool++
			}
		}
	}
	fmt.Fprintf(os.Stderr, "floor list: %d directories, %d pool entries\n", len(names), pool)
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// Result is one measured run: a line of the table.
type Result struct {
	Label string `json:"label"`
	What  string `json:"what"`
	// Wall is the time the command made its caller wait; Full adds the
	// background deletion (nexis gc only).
	Wall  float64         `json:"wall_seconds"`
	Full  float64         `json:"full_seconds,omitempty"`
	Paths int             `json:"paths,omitempty"`
	Stats json.RawMessage `json:"nexis_stats,omitempty"`
}

func runGC(root, dead, live, nexis, label, what string, verify bool, flags []string) error {
	nexis, err := filepath.Abs(nexis)
	if err != nil {
		return err
	}
	deadNames, err := readList(dead)
	if err != nil {
		return err
	}
	liveNames, err := readList(live)
	if err != nil {
		return err
	}
	sd := storeDir(root)
	exec.Command("sync").Run()
	t0 := time.Now()
	cmd := exec.Command(nexis, append([]string{"--root", root, "--store", logicalDir, "gc", "--json"}, flags...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("nexis gc: %v", err)
	}
	wall := time.Since(t0)
	// The worker holds trash.lock from before `nexis gc` returns until the
	// trash is empty.
	lk, err := os.OpenFile(filepath.Join(sd, ".nexis", "trash.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	full := time.Since(t0)
	lk.Close()
	var st struct {
		Paths int `json:"paths_deleted"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("nexis gc --json: %v: %s", err, out)
	}
	if st.Paths != len(deadNames) {
		return fmt.Errorf("nexis gc deleted %d paths, the workload has %d dead ones", st.Paths, len(deadNames))
	}
	for _, n := range deadNames {
		p, _ := parseName(n)
		if _, err := os.Lstat(filepath.Join(sd, p.Rel())); err == nil {
			return fmt.Errorf("nexis gc left %s", n)
		}
	}
	for _, n := range liveNames {
		p, _ := parseName(n)
		if _, err := os.Lstat(filepath.Join(sd, p.Rel())); err != nil {
			return fmt.Errorf("nexis gc deleted live %s", n)
		}
	}
	ents, err := os.ReadDir(filepath.Join(sd, ".trash"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(ents) != 0 {
		return fmt.Errorf("the trash is not empty after the worker: %d entries", len(ents))
	}
	if verify {
		vout, err := exec.Command(nexis, "--root", root, "--store", logicalDir, "store", "verify", "--check-contents").CombinedOutput()
		if err != nil {
			return fmt.Errorf("verify after gc: %v: %s", err, vout)
		}
		fmt.Fprintf(os.Stderr, "verify: %s", vout)
	}
	r := Result{Label: label, What: what, Wall: wall.Seconds(), Full: full.Seconds(), Paths: st.Paths, Stats: json.RawMessage(bytes.TrimSpace(out))}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// table prints the results of run.sh: per workload, Nix's gc and floor,
// nexis's gc (visible and full) and floor, and the ratios the targets
// are stated in.
func table(files []string) error {
	type row struct {
		nixGC, nixFloor, nexisGC, nexisFull, nexisFloor float64
		paths                                           int
	}
	rows := map[string]*row{}
	var order []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			var r Result
			if err := json.Unmarshal(l, &r); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			w := rows[r.Label]
			if w == nil {
				w = &row{}
				rows[r.Label] = w
				order = append(order, r.Label)
			}
			switch r.What {
			case "nix gc":
				w.nixGC = r.Wall
			case "nix floor":
				w.nixFloor = r.Wall
			case "nexis gc":
				w.nexisGC, w.nexisFull, w.paths = r.Wall, r.Full, r.Paths
			case "nexis floor":
				w.nexisFloor = r.Wall
			}
		}
	}
	f := func(v float64) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", v)
	}
	ratio := func(a, b float64) string {
		if a == 0 || b == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Println("| workload | garbage | nix-store --gc s | Nix rm -rf floor s | nexis gc visible s | nexis full deletion s | nexis rm -rf floor s | visible / nexis floor | full / nexis floor | nix gc / nexis visible |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, l := range order {
		w := rows[l]
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", l, w.paths, f(w.nixGC), f(w.nixFloor), f(w.nexisGC), f(w.nexisFull), f(w.nexisFloor),
			ratio(w.nexisGC, w.nexisFloor), ratio(w.nexisFull, w.nexisFloor), ratio(w.nixGC, w.nexisGC))
	}
	return nil
}
