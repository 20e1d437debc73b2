package gc

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/trash"
	"github.com/nexisos/nexis/store/treehash"
)

func fakePath(name string) storepath.Path {
	d := blake3.Sum256([]byte("gc test " + name))
	return storepath.Path{Hash: storepath.EncodeHash(d[:20]), Name: name}
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// graph builds store paths from a compact description: "a:b,c" is a path
// a referring to b and c (which come earlier); "a:a,b" refers to itself.
// Every path has a file of its own, one shared by all, and one shared by
// its first letter's family, so that content counts matter.
type graph struct {
	t     *testing.T
	s     *store.Store
	tmp   string
	paths map[string]storepath.Path
}

func newGraph(t *testing.T, s *store.Store) *graph {
	return &graph{t: t, s: s, tmp: t.TempDir(), paths: map[string]storepath.Path{}}
}

func (g *graph) add(specs ...string) {
	g.t.Helper()
	for _, spec := range specs {
		name, refs, _ := strings.Cut(spec, ":")
		p := fakePath(name)
		g.paths[name] = p
		var cands []storepath.Path
		body := "path " + name + "\n"
		for _, r := range strings.Split(refs, ",") {
			if r == "" {
				continue
			}
			rp, ok := g.paths[r]
			if !ok {
				g.t.Fatalf("%s refers to unknown %s", name, r)
			}
			cands = append(cands, rp)
			body += "uses " + g.s.Logical(rp) + "/bin\n"
		}
		src := filepath.Join(g.tmp, name)
		os.MkdirAll(filepath.Join(src, "sub"), 0o755)
		os.WriteFile(filepath.Join(src, "own"), []byte(body), 0o644)
		os.WriteFile(filepath.Join(src, "shared"), []byte("shared by every path"), 0o644)
		os.WriteFile(filepath.Join(src, "sub", "family"), []byte("family "+name[:1]), 0o755)
		if _, err := g.s.Ingest(src, p, store.IngestOptions{RefCandidates: cands}); err != nil {
			g.t.Fatal(err)
		}
	}
}

func (g *graph) valid() []string {
	g.t.Helper()
	var out []string
	for n, p := range g.paths {
		ok, err := g.s.IsValid(p)
		if err != nil {
			g.t.Fatal(err)
		}
		if ok {
			out = append(out, n)
			if _, err := os.Lstat(g.s.Physical(p)); err != nil {
				g.t.Errorf("%s is valid but its directory is gone: %v", n, err)
			}
		} else if _, err := os.Lstat(g.s.Physical(p)); err == nil {
			g.t.Errorf("%s was collected but its directory is still in its bucket", n)
		}
	}
	sort.Strings(out)
	return out
}

// mustVerify is the check every GC test ends with: contents re-hashed,
// counts exact, no unregistered directory, no orphan pool entry.
func mustVerify(t *testing.T, s *store.Store) {
	t.Helper()
	rep, err := s.Verify(store.VerifyOptions{CheckContents: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("verify: %v", rep.Errors)
	}
	if len(rep.Garbage) > 0 {
		t.Fatalf("verify found garbage: %v", rep.Garbage)
	}
	ents, _ := os.ReadDir(s.TrashDir())
	for _, e := range ents {
		sub, _ := os.ReadDir(filepath.Join(s.TrashDir(), e.Name()))
		if !e.IsDir() || len(sub) > 0 {
			t.Fatalf("trash not empty: %s", e.Name())
		}
	}
}

func run(t *testing.T, s *store.Store, opts Options) *Stats {
	t.Helper()
	st, err := Run(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type step struct {
	roots   map[string]string // root name -> path name to add
	unroot  []string
	gc      bool
	live    []string // after gc
	deleted int      // paths the gc deletes (-1: unchecked)
}

func TestCollectTable(t *testing.T) {
	cases := []struct {
		name  string
		graph []string
		steps []step
	}{
		{
			name:  "unrooted paths are garbage",
			graph: []string{"a", "b:a", "c"},
			steps: []step{{gc: true, live: nil, deleted: 3}},
		},
		{
			name:  "chain",
			graph: []string{"c", "b:c", "a:b"},
			steps: []step{
				{roots: map[string]string{"r": "a"}, gc: true, live: []string{"a", "b", "c"}, deleted: 0},
				{unroot: []string{"r"}, gc: true, live: nil, deleted: 3},
			},
		},
		{
			name:  "diamond",
			graph: []string{"d", "b:d", "c:d", "a:b,c"},
			steps: []step{
				{roots: map[string]string{"top": "a", "mid": "b"}, gc: true, live: []string{"a", "b", "c", "d"}, deleted: 0},
				{unroot: []string{"top"}, gc: true, live: []string{"b", "d"}, deleted: 2},
				{unroot: []string{"mid"}, gc: true, live: nil, deleted: 2},
			},
		},
		{
			name:  "shared dependency",
			graph: []string{"s", "x:s", "y:s", "z"},
			steps: []step{
				{roots: map[string]string{"x": "x", "y": "y"}, gc: true, live: []string{"s", "x", "y"}, deleted: 1},
				{unroot: []string{"x"}, gc: true, live: []string{"s", "y"}, deleted: 1},
				{unroot: []string{"y"}, gc: true, live: nil, deleted: 2},
			},
		},
		{
			name:  "a root removed while another root still needs the path",
			graph: []string{"lib", "app:lib"},
			steps: []step{
				{roots: map[string]string{"one": "lib", "two": "app"}, gc: true, live: []string{"app", "lib"}, deleted: 0},
				{unroot: []string{"one"}, gc: true, live: []string{"app", "lib"}, deleted: 0},
				{roots: map[string]string{"three": "lib"}, unroot: []string{"two"}, gc: true, live: []string{"lib"}, deleted: 1},
			},
		},
		{
			name:  "two roots on one path",
			graph: []string{"p"},
			steps: []step{
				{roots: map[string]string{"r1": "p", "r2": "p"}, gc: true, live: []string{"p"}, deleted: 0},
				{unroot: []string{"r1"}, gc: true, live: []string{"p"}, deleted: 0},
				{unroot: []string{"r2"}, gc: true, live: nil, deleted: 1},
			},
		},
		{
			name:  "self references",
			graph: []string{"b", "a:a,b", "c:c"},
			steps: []step{
				{roots: map[string]string{"c": "c"}, gc: true, live: []string{"c"}, deleted: 2},
				{unroot: []string{"c"}, gc: true, live: nil, deleted: 1},
			},
		},
		{
			name:  "deep cascade",
			graph: []string{"p0", "p1:p0", "p2:p1", "p3:p2", "p4:p3,p1", "p5:p4,p0", "p6:p5"},
			steps: []step{
				{roots: map[string]string{"mid": "p3"}, gc: true, live: []string{"p0", "p1", "p2", "p3"}, deleted: 3},
				{unroot: []string{"mid"}, gc: true, live: nil, deleted: 4},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "store"))
			g := newGraph(t, s)
			g.add(c.graph...)
			for i, st := range c.steps {
				names := make([]string, 0, len(st.roots))
				for n := range st.roots {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					if err := s.AddRoot(n, g.paths[st.roots[n]]); err != nil {
						t.Fatal(err)
					}
				}
				for _, n := range st.unroot {
					if err := s.RemoveRoot(n); err != nil {
						t.Fatal(err)
					}
				}
				if !st.gc {
					continue
				}
				stats := run(t, s, Options{Workers: 2, BatchSize: 2})
				if st.deleted >= 0 && stats.Paths != st.deleted {
					t.Errorf("step %d: deleted %d paths, want %d", i, stats.Paths, st.deleted)
				}
				if got := g.valid(); !slices.Equal(got, st.live) {
					t.Errorf("step %d: live %v, want %v", i, got, st.live)
				}
				mustVerify(t, s)
			}
		})
	}
}

func TestPlanOrderAndDryRun(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	g.add("d", "b:d", "c:d", "a:b,c", "e")
	before, _ := s.Stats()
	st, err := Collect(s, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Plan == nil || len(st.Plan.Paths) != 5 || st.Paths != 5 {
		t.Fatalf("dry run plan: %+v", st.Plan)
	}
	// Every path comes after all its referrers.
	pos := map[string]int{}
	for i, pp := range st.Plan.Paths {
		pos[pp.Path.Name] = i
	}
	for _, e := range [][2]string{{"a", "b"}, {"a", "c"}, {"b", "d"}, {"c", "d"}} {
		if pos[e[0]] > pos[e[1]] {
			t.Errorf("%s planned after %s, which it refers to", e[0], e[1])
		}
	}
	// Nothing changed.
	after, _ := s.Stats()
	if before != after || len(g.valid()) != 5 {
		t.Fatalf("dry run changed the store: %+v -> %+v", before, after)
	}
	if _, err := os.Stat(s.GCMarker()); err == nil {
		t.Errorf("dry run wrote the marker")
	}
	// "shared" and the "b…"/"c…" family contents are shared: the plan's
	// freed bytes count each content once.
	var sum int64
	for _, pp := range st.Plan.Paths {
		sum += pp.Freed
	}
	if sum != st.Bytes || st.Bytes <= 0 {
		t.Errorf("freed %d, plan paths sum to %d", st.Bytes, sum)
	}
	stats := run(t, s, Options{})
	if stats.Paths != 5 || stats.Bytes != st.Bytes {
		t.Errorf("collection %+v does not match its dry run %+v", stats, st)
	}
	after, _ = s.Stats()
	if after.Paths != 0 || after.Contents != 0 || after.ContentBytes != 0 {
		t.Errorf("stats after collecting everything: %+v", after)
	}
	mustVerify(t, s)
}

func TestMaxFreedAndOlderThan(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	g.add("a", "b", "c", "d")
	st := run(t, s, Options{MaxFreed: 1})
	if st.Paths != 1 || !st.Limited {
		t.Fatalf("--max-freed 1 collected %d paths (limited %v), want 1", st.Paths, st.Limited)
	}
	mustVerify(t, s)
	st = run(t, s, Options{OlderThan: time.Hour})
	if st.Paths != 0 || st.KeptYoung != 3 {
		t.Fatalf("--older-than 1h collected %d, kept %d young", st.Paths, st.KeptYoung)
	}
	st = run(t, s, Options{OlderThan: time.Hour, Now: time.Now().Add(2 * time.Hour)})
	if st.Paths != 3 {
		t.Fatalf("--older-than 1h, two hours later: collected %d, want 3", st.Paths)
	}
	mustVerify(t, s)
	if len(g.valid()) != 0 {
		t.Fatal("paths left")
	}
}

func TestYoungPathKeepsItsReferences(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	g.add("old")
	// Age "old" by planning from the future: it is garbage, but the young
	// path registered later refers to it, so it is held.
	g.add("young:old")
	st := run(t, s, Options{OlderThan: time.Minute})
	if st.Paths != 0 || st.KeptYoung != 1 {
		t.Fatalf("collected %d, kept young %d", st.Paths, st.KeptYoung)
	}
	if got := g.valid(); !slices.Equal(got, []string{"old", "young"}) {
		t.Fatalf("live %v", got)
	}
	mustVerify(t, s)
}

func TestTempRootsAndGenerations(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openStore(t, dir)
	g := newGraph(t, s)
	g.add("dep", "tool:dep", "sys:dep", "junk")
	if err := s.AddTempRoots(g.paths["tool"]); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGeneration(store.Generation{Profile: "system", Number: 1, Path: g.paths["sys"], Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st := run(t, s, Options{})
	if st.Paths != 1 || st.KeptTemp != 1 {
		t.Fatalf("collected %d (kept temp %d), want only junk", st.Paths, st.KeptTemp)
	}
	if got := g.valid(); !slices.Equal(got, []string{"dep", "sys", "tool"}) {
		t.Fatalf("live %v", got)
	}
	// Why-alive names the generation and the temporary root.
	l, err := WhyAlive(s, g.paths["dep"])
	if err != nil {
		t.Fatal(err)
	}
	if !l.Alive || len(l.Chain) != 2 || l.Chain[1] != s.Logical(g.paths["dep"]) {
		t.Fatalf("why-alive dep: %+v", l)
	}
	l, err = WhyAlive(s, g.paths["tool"])
	if err != nil {
		t.Fatal(err)
	}
	if !l.Alive || !strings.HasPrefix(l.Root, "temporary root of process") {
		t.Fatalf("why-alive tool: %+v", l)
	}
	if err := s.DeleteGeneration("system", 1); err != nil {
		t.Fatal(err)
	}
	l, _ = WhyAlive(s, g.paths["sys"])
	if l.Alive || l.Cycle {
		t.Fatalf("why-alive of an unrooted path: %+v", l)
	}
	run(t, s, Options{})
	if got := g.valid(); !slices.Equal(got, []string{"dep", "tool"}) {
		t.Fatalf("live %v", got)
	}
	mustVerify(t, s)
}

func TestOutLinkRoots(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	g.add("kept", "dropped", "moved")
	links := t.TempDir()
	for _, n := range []string{"kept", "dropped", "moved"} {
		l := filepath.Join(links, n)
		if err := os.Symlink(s.Physical(g.paths[n]), l); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRoot(OutLinkRootPrefix+l, g.paths[n]); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(links, "dropped"))
	os.Remove(filepath.Join(links, "moved"))
	os.Symlink("/elsewhere", filepath.Join(links, "moved"))
	dry, err := Collect(s, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.DroppedRoots) != 2 || dry.Paths != 2 {
		t.Fatalf("dry run: %+v", dry)
	}
	if rs, _ := s.Roots(); len(rs) != 3 {
		t.Fatalf("dry run dropped roots")
	}
	st := run(t, s, Options{})
	if len(st.DroppedRoots) != 2 || st.Paths != 2 {
		t.Fatalf("collection: %+v", st)
	}
	for _, d := range st.DroppedRoots {
		if !strings.Contains(d.Reason, "gone") && !strings.Contains(d.Reason, "/elsewhere") {
			t.Errorf("reason %q", d.Reason)
		}
	}
	if got := g.valid(); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("live %v", got)
	}
	mustVerify(t, s)
}

func TestCyclesNeedFull(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	tmp := t.TempDir()
	a, b := fakePath("cyc-a"), fakePath("cyc-b")
	for _, x := range []struct {
		p, other storepath.Path
	}{{a, b}, {b, a}} {
		os.MkdirAll(filepath.Join(tmp, x.p.Name), 0o755)
		os.WriteFile(filepath.Join(tmp, x.p.Name, "f"), []byte("see "+s.Logical(x.other)), 0o644)
	}
	_, err := s.IngestBatch([]store.IngestRequest{
		{Src: filepath.Join(tmp, a.Name), Target: a, IngestOptions: store.IngestOptions{RefCandidates: []storepath.Path{b}}},
		{Src: filepath.Join(tmp, b.Name), Target: b, IngestOptions: store.IngestOptions{RefCandidates: []storepath.Path{a}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g := newGraph(t, s)
	g.paths["cyc-a"], g.paths["cyc-b"] = a, b
	g.add("root", "loose")
	if err := s.AddRoot("r", g.paths["root"]); err != nil {
		t.Fatal(err)
	}
	st := run(t, s, Options{})
	if st.Paths != 1 {
		t.Fatalf("refcount collection took %d paths, want only loose", st.Paths)
	}
	l, err := WhyAlive(s, a)
	if err != nil {
		t.Fatal(err)
	}
	if l.Alive || !l.Cycle {
		t.Fatalf("why-alive of a cycle: %+v", l)
	}
	rep, err := Full(s, FullOptions{Options: Options{DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unreachable != 2 || rep.InCycles != 2 || rep.Collected != nil || len(rep.RefcountErrors) > 0 {
		t.Fatalf("full dry run: %+v", rep)
	}
	rep, err = Full(s, FullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Collected == nil || rep.Collected.Paths != 2 {
		t.Fatalf("full: %+v", rep)
	}
	if _, err := trash.Empty(s.Dir(), trash.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if got := g.valid(); !slices.Equal(got, []string{"root"}) {
		t.Fatalf("live %v", got)
	}
	mustVerify(t, s)
}

func TestFullFindsUnregisteredAndRepairs(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	g.add("a", "b:a")
	s.AddRoot("r", g.paths["b"])
	stray := s.Physical(fakePath("stray"))
	os.MkdirAll(stray, 0o755)
	os.WriteFile(filepath.Join(stray, "f"), []byte("left by a crash"), 0o644)
	rep, err := Full(s, FullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unregistered) != 1 || rep.Unregistered[0] != stray || rep.Live != 2 {
		t.Fatalf("full: %+v", rep)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Fatalf("full without --repair moved the stray directory")
	}
	rep, err = Full(s, FullOptions{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Repaired) == 0 {
		t.Fatalf("nothing repaired: %+v", rep)
	}
	if _, err := trash.Empty(s.Dir(), trash.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if got := g.valid(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("live %v", got)
	}
	mustVerify(t, s)
}

func TestResumeAfterCommit(t *testing.T) {
	// A collection that committed its batch and died before moving
	// anything: the records are finished by the next command.
	dir := filepath.Join(t.TempDir(), "store")
	s := openStore(t, dir)
	g := newGraph(t, s)
	g.add("a", "b:a", "keep")
	s.AddRoot("k", g.paths["keep"])
	if err := writeMarker(s.GCMarker()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CollectBatch([]storepath.Path{g.paths["b"], g.paths["a"]}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Physical(g.paths["a"])); err != nil {
		t.Fatal("directory moved too early")
	}
	s.Close()
	ran, err := FinishInterrupted(dir, store.Options{}, 2)
	if err != nil || !ran {
		t.Fatalf("FinishInterrupted: %v %v", ran, err)
	}
	if _, err := os.Stat(store.GCMarkerIn(dir)); err == nil {
		t.Errorf("marker left")
	}
	if !trash.Pending(dir) {
		t.Errorf("nothing moved to the trash")
	}
	if _, err := trash.Empty(dir, trash.Options{}); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	g.s = s
	if got := g.valid(); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("live %v", got)
	}
	mustVerify(t, s)
	if ran, _ := FinishInterrupted(dir, store.Options{}, 2); ran {
		t.Errorf("ran without a marker")
	}
}

func TestReregisteredWhileRecordPending(t *testing.T) {
	// A path collected (record pending), then ingested again before the
	// record was finished: the record must not move the new copy.
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	g.add("x")
	if _, err := s.CollectBatch([]storepath.Path{g.paths["x"]}, nil); err != nil {
		t.Fatal(err)
	}
	g.add("x")
	if _, err := s.FinishCollect(2); err != nil {
		t.Fatal(err)
	}
	if got := g.valid(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("live %v", got)
	}
	if _, err := trash.Empty(s.Dir(), trash.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s)
}

func TestCollectBatchRefusesHeldPaths(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	g.add("a", "b:a")
	if _, err := s.CollectBatch([]storepath.Path{g.paths["a"]}, nil); err == nil {
		t.Fatal("collected a referenced path")
	}
	s.AddRoot("r", g.paths["b"])
	if _, err := s.CollectBatch([]storepath.Path{g.paths["b"], g.paths["a"]}, nil); err == nil {
		t.Fatal("collected a rooted path")
	}
	if got := g.valid(); len(got) != 2 {
		t.Fatalf("a refused batch changed something: %v", got)
	}
	mustVerify(t, s)
}

func TestParallelDeletersManyPaths(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store"))
	g := newGraph(t, s)
	var specs []string
	for i := 0; i < 120; i++ {
		spec := fmt.Sprintf("n%03d", i)
		if i > 0 {
			spec += fmt.Sprintf(":n%03d", i/2)
		}
		specs = append(specs, spec)
	}
	g.add(specs...)
	s.AddRoot("half", g.paths["n060"])
	st := run(t, s, Options{Workers: 4, BatchSize: 7})
	live := g.valid()
	// n060 and its chain of halvings to n000.
	want := []string{"n000", "n001", "n003", "n007", "n015", "n030", "n060"}
	if !slices.Equal(live, want) {
		t.Fatalf("live %v, want %v", live, want)
	}
	if st.Paths != 120-len(want) || st.Trash == nil || st.Trash.Deleted == nil || st.Trash.Deleted.Entries != st.Paths {
		t.Fatalf("stats %+v", st)
	}
	mustVerify(t, s)
}

// Right after a collection, before the trash's worker ran, the pool
// entries that a release list names are on their way out, not garbage:
// verify must not report them (nor plan to remove them), and a repair
// must leave them to the worker.
func TestVerifyBeforeTheWorkerReleases(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "store"), store.Options{Dedup: store.DedupHardlink})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g := newGraph(t, s)
	g.add("lib", "app:lib", "tool")
	if err := s.AddRoot("keep", g.paths["tool"]); err != nil {
		t.Fatal(err)
	}
	st, err := Collect(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Paths != 2 || st.PoolReleased == 0 {
		t.Fatalf("collected %d paths, %d pool entries to release; want 2 and some", st.Paths, st.PoolReleased)
	}
	lists, _ := filepath.Glob(filepath.Join(s.TrashDir(), store.ReleaseListPrefix+"*"))
	if len(lists) != 1 {
		t.Fatalf("release lists in the trash: %v, want one", lists)
	}
	rep, err := s.Verify(store.VerifyOptions{CheckContents: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || len(rep.Garbage) > 0 || len(rep.Plan.RemovePool) > 0 {
		t.Fatalf("verify before the worker: errors %v, garbage %v, remove_pool %v; want none", rep.Errors, rep.Garbage, rep.Plan.RemovePool)
	}
	// An entry nothing counts and no list names is still garbage.
	stray := s.PoolEntry(store.ContentRef{Digest: treehash.Digest{1, 2, 3}, Type: treehash.Regular})
	if err := os.MkdirAll(filepath.Dir(stray), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stray, []byte("stray"), 0o444); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Verify(store.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Garbage, []string{stray}) || !slices.Equal(rep.Plan.RemovePool, []string{stray}) {
		t.Fatalf("verify: garbage %v, remove_pool %v; want only %s", rep.Garbage, rep.Plan.RemovePool, stray)
	}
	if _, err := s.Repair(rep.Plan); err != nil {
		t.Fatal(err)
	}
	if _, err := trash.Empty(s.Dir(), trash.Options{}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s)
}
