package gc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// memGraph is a Graph held in memory: the collector's algorithm tested
// on its own, on graphs (thousands of random ones, wrong counts) that
// would take minutes to ingest into a real store or that a real store
// refuses to hold. The tests on a real store (gc_test.go) cover the
// store's side of the interface.
type memGraph struct {
	nodes map[string]*memNode
	roots []store.Root
	// counts overrides a path's refcount (a damaged store).
	counts map[string]uint64
	pools  bool
	// reads counts the batched reads, to check that the plan batches.
	reads int
}

type memNode struct {
	path       storepath.Path
	refs       []string
	contents   []store.ContentRef
	registered time.Time
}

const memStore = "/mem/store"

func newMemGraph() *memGraph {
	return &memGraph{nodes: map[string]*memNode{}, counts: map[string]uint64{}, pools: true}
}

// add registers a path named name that refers to refs (names added
// before) and holds the contents named in contents (shared by name).
func (g *memGraph) add(name string, refs []string, contents ...string) storepath.Path {
	p := fakePath(name)
	n := &memNode{path: p, registered: time.Unix(1e9, 0)}
	for _, r := range refs {
		n.refs = append(n.refs, fakePath(r).Hash)
	}
	for _, c := range contents {
		var d treehash.Digest
		copy(d[:], fakePath("content "+c).Hash)
		n.contents = append(n.contents, store.ContentRef{Digest: d, Type: treehash.Regular, Size: int64(len(c)) + 100})
	}
	g.nodes[p.Hash] = n
	return p
}

func (g *memGraph) root(name string, p storepath.Path) {
	g.roots = append(g.roots, store.Root{Name: name, Path: p})
	sort.Slice(g.roots, func(i, j int) bool { return g.roots[i].Name < g.roots[j].Name })
}

func (g *memGraph) refcount(h string) uint64 {
	if n, ok := g.counts[h]; ok {
		return n
	}
	var n uint64
	for _, o := range g.nodes {
		for _, r := range o.refs {
			if r == h {
				n++
			}
		}
	}
	for _, r := range g.roots {
		if r.Path.Hash == h {
			n++
		}
	}
	return n
}

func (g *memGraph) RootsWithPrefix(prefix string) ([]store.Root, error) {
	var out []store.Root
	for _, r := range g.roots {
		if strings.HasPrefix(r.Name, prefix) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (g *memGraph) ZeroHashes(fn func(string) error) error {
	var hs []string
	for h := range g.nodes {
		if g.refcount(h) == 0 {
			hs = append(hs, h)
		}
	}
	sort.Strings(hs)
	for _, h := range hs {
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

func (g *memGraph) GCNodes(hashes []string) ([]*store.GCNode, error) {
	g.reads++
	out := make([]*store.GCNode, len(hashes))
	for i, h := range hashes {
		n, ok := g.nodes[h]
		if !ok {
			continue
		}
		gn := &store.GCNode{Path: n.path, Registered: n.registered, Refcount: g.refcount(h), Files: len(n.contents)}
		gn.Refs = append(gn.Refs, n.refs...)
		gn.Contents = append(gn.Contents, n.contents...)
		for _, c := range n.contents {
			gn.Size += c.Size
		}
		out[i] = gn
	}
	return out, nil
}

func (g *memGraph) RefcountsOf(hashes []string) ([]uint64, []bool, error) {
	g.reads++
	counts := make([]uint64, len(hashes))
	ok := make([]bool, len(hashes))
	for i, h := range hashes {
		if _, ok[i] = g.nodes[h]; ok[i] {
			counts[i] = g.refcount(h)
		}
	}
	return counts, ok, nil
}

func (g *memGraph) ContentCounts(cs []store.ContentRef) ([]uint64, error) {
	g.reads++
	out := make([]uint64, len(cs))
	for i, c := range cs {
		for _, n := range g.nodes {
			for _, d := range n.contents {
				if d.Digest == c.Digest && d.Type == c.Type {
					out[i]++
				}
			}
		}
	}
	return out, nil
}

func (g *memGraph) ReferrerHashes(h string) ([]string, error) {
	var out []string
	for oh, o := range g.nodes {
		if slices.Contains(o.refs, h) {
			out = append(out, oh)
		}
	}
	return out, nil
}

func (g *memGraph) Logical(p storepath.Path) string  { return p.In(memStore) }
func (g *memGraph) Physical(p storepath.Path) string { return p.In(memStore) }
func (g *memGraph) Dedup() store.DedupMode {
	if g.pools {
		return store.DedupHardlink
	}
	return store.DedupCopy
}

// live marks what the roots and temp reach.
func (g *memGraph) live(temp map[string]store.TempRoot) map[string]bool {
	live := map[string]bool{}
	var stack []string
	for _, r := range g.roots {
		stack = append(stack, r.Path.Hash)
	}
	for h := range temp {
		stack = append(stack, h)
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if live[h] || g.nodes[h] == nil {
			continue
		}
		live[h] = true
		stack = append(stack, g.nodes[h].refs...)
	}
	return live
}

// checkPlan checks a plan of an acyclic graph against a mark from the
// roots: it collects exactly the unmarked paths, each after all its
// referrers, and counts exactly the contents only they hold.
func checkPlan(t *testing.T, g *memGraph, plan *Plan, temp map[string]store.TempRoot) {
	t.Helper()
	live := g.live(temp)
	at := map[string]int{}
	for i, pp := range plan.Paths {
		if live[pp.Path.Hash] {
			t.Fatalf("plan collects %s, which a root reaches", pp.Path.Name)
		}
		if _, dup := at[pp.Path.Hash]; dup {
			t.Fatalf("plan collects %s twice", pp.Path.Name)
		}
		at[pp.Path.Hash] = i
	}
	if want := len(g.nodes) - len(live); len(plan.Paths) != want {
		t.Fatalf("plan collects %d paths, want the %d no root reaches", len(plan.Paths), want)
	}
	for h, i := range at {
		for oh, o := range g.nodes {
			if slices.Contains(o.refs, h) && oh != h && at[oh] > i {
				t.Fatalf("%s planned before its referrer %s", g.nodes[h].path.Name, o.path.Name)
			}
		}
	}
	held := map[treehash.Digest]bool{}
	all := map[treehash.Digest]bool{}
	var freed int64
	for h, n := range g.nodes {
		for _, c := range n.contents {
			all[c.Digest] = true
			if live[h] {
				held[c.Digest] = true
			}
		}
	}
	dead := map[treehash.Digest]int64{}
	for h, n := range g.nodes {
		for _, c := range n.contents {
			if !live[h] && !held[c.Digest] {
				dead[c.Digest] = c.Size
			}
		}
	}
	for _, s := range dead {
		freed += s
	}
	if plan.Contents != len(dead) || plan.Bytes != freed {
		t.Fatalf("plan frees %d contents, %d bytes; want %d, %d", plan.Contents, plan.Bytes, len(dead), freed)
	}
}

func TestPlanOnMemGraphMatchesMarkOfRandomGraphs(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		g := newMemGraph()
		n := 1 + r.IntN(60)
		var names []string
		for i := range n {
			name := fmt.Sprintf("p%d", i)
			var refs []string
			for range r.IntN(4) {
				if i > 0 {
					refs = append(refs, names[r.IntN(i)])
				}
			}
			slices.Sort(refs)
			refs = slices.Compact(refs)
			contents := []string{"own " + name, fmt.Sprintf("shared %d", r.IntN(5))}
			g.add(name, refs, contents...)
			names = append(names, name)
		}
		for range r.IntN(4) {
			nm := names[r.IntN(n)]
			g.root("user/"+nm, fakePath(nm))
		}
		temp := map[string]store.TempRoot{}
		if r.IntN(3) == 0 {
			temp[fakePath(names[r.IntN(n)]).Hash] = store.TempRoot{Owner: 42}
		}
		plan, err := MakePlan(g, temp, Options{DryRun: true})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkPlan(t, g, plan, temp) })
		if t.Failed() {
			return
		}
	}
}

func TestPlanOnMemGraphReadsAWaveAtATime(t *testing.T) {
	// A chain of 200 paths and 300 paths beside it that nothing refers
	// to: the first wave reads the 300 and the chain's head in one batch,
	// then each wave one link: reads follow the chain's depth, never
	// the number of paths.
	g := newMemGraph()
	prev := []string(nil)
	for i := range 200 {
		name := fmt.Sprintf("c%03d", i)
		g.add(name, prev, "c "+name)
		prev = []string{name}
	}
	for i := range 300 {
		g.add(fmt.Sprintf("x%03d", i), nil, "x")
	}
	plan, err := MakePlan(g, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Paths) != 500 {
		t.Fatalf("plan has %d paths, want 500", len(plan.Paths))
	}
	// Per wave: the nodes, and the counts of what they refer to.
	if g.reads > 2*200+2 {
		t.Fatalf("%d batched reads for a chain of 200", g.reads)
	}
}

func TestPlanOnMemGraphKeepsCyclesYoungAndTemp(t *testing.T) {
	g := newMemGraph()
	g.add("lib", nil, "lib")
	a := g.add("a", []string{"lib"}, "a")
	b := g.add("b", []string{"lib"}, "b")
	// a and b refer to each other: neither count reaches zero.
	g.nodes[a.Hash].refs = append(g.nodes[a.Hash].refs, b.Hash)
	g.nodes[b.Hash].refs = append(g.nodes[b.Hash].refs, a.Hash)
	g.add("old", nil, "old")
	young := g.add("young", []string{"tool"}, "young")
	g.nodes[young.Hash].registered = time.Unix(2e9, 0)
	g.add("tool", nil, "tool")
	g.nodes[young.Hash].refs = []string{fakePath("tool").Hash}
	held := g.add("held", []string{"dep"}, "held")
	g.add("dep", nil, "dep")
	g.nodes[held.Hash].refs = []string{fakePath("dep").Hash}

	temp := map[string]store.TempRoot{held.Hash: {Owner: 7}}
	plan, err := MakePlan(g, temp, Options{DryRun: true, OlderThan: time.Hour, Now: time.Unix(2e9, 0).Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pp := range plan.Paths {
		got = append(got, pp.Path.Name)
	}
	if !slices.Equal(got, []string{"old"}) {
		t.Fatalf("plan collects %v, want only old (a and b are a cycle, young is young, held is a temporary root)", got)
	}
	if plan.KeptTemp != 1 || plan.KeptYoung != 1 {
		t.Fatalf("kept %d temporary, %d young; want 1, 1", plan.KeptTemp, plan.KeptYoung)
	}
}

func TestPlanOnMemGraphStopsAtMaxFreedWithAValidPrefix(t *testing.T) {
	g := newMemGraph()
	var prev []string
	for i := range 50 {
		name := fmt.Sprintf("p%02d", i)
		g.add(name, prev, "content of "+name)
		prev = []string{name}
	}
	all, err := MakePlan(g, nil, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	limit := all.Bytes / 3
	plan, err := MakePlan(g, nil, Options{DryRun: true, MaxFreed: limit})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Limited || plan.Bytes < limit || len(plan.Paths) >= len(all.Paths) {
		t.Fatalf("limited=%v, %d bytes of %d, %d paths of %d", plan.Limited, plan.Bytes, all.Bytes, len(plan.Paths), len(all.Paths))
	}
	for i, pp := range plan.Paths {
		if pp.Path != all.Paths[i].Path {
			t.Fatalf("path %d is %s; the limited plan must be a prefix of the whole one", i, pp.Path.Name)
		}
	}
}

func TestPlanOnMemGraphRefusesACountBelowZero(t *testing.T) {
	g := newMemGraph()
	dep := g.add("dep", nil, "dep")
	g.add("a", []string{"dep"}, "a")
	g.add("b", []string{"dep"}, "b")
	g.counts[dep.Hash] = 1 // two referrers, a damaged count of one
	_, err := MakePlan(g, nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "store verify") {
		t.Fatalf("got %v, want an error that says to run store verify --repair", err)
	}
}

func TestPlanOnMemGraphDropsDeadOutLinks(t *testing.T) {
	dir := t.TempDir()
	g := newMemGraph()
	kept := g.add("kept", nil, "kept")
	gone := g.add("gone", []string{"dep"}, "gone")
	g.add("dep", nil, "dep")
	g.nodes[gone.Hash].refs = []string{fakePath("dep").Hash}
	other := g.add("other", nil, "other")
	keptLink := filepath.Join(dir, "kept")
	if err := os.Symlink(g.Logical(kept), keptLink); err != nil {
		t.Fatal(err)
	}
	movedLink := filepath.Join(dir, "moved")
	if err := os.Symlink(g.Logical(kept), movedLink); err != nil {
		t.Fatal(err)
	}
	g.root(OutLinkRootPrefix+keptLink, kept)
	g.root(OutLinkRootPrefix+filepath.Join(dir, "missing"), gone)
	g.root(OutLinkRootPrefix+movedLink, other)
	plan, err := MakePlan(g, nil, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var dropped, collected []string
	for _, d := range plan.DroppedRoots {
		dropped = append(dropped, strings.TrimPrefix(d.Name, OutLinkRootPrefix+dir+"/")+": "+d.Reason)
	}
	for _, pp := range plan.Paths {
		collected = append(collected, pp.Path.Name)
	}
	sort.Strings(collected)
	wantDropped := []string{"missing: the link is gone", "moved: it now points to " + g.Logical(kept)}
	if !slices.Equal(dropped, wantDropped) || !slices.Equal(collected, []string{"dep", "gone", "other"}) {
		t.Fatalf("dropped %q, collected %v", dropped, collected)
	}
}

func TestWhyAliveOnMemGraph(t *testing.T) {
	g := newMemGraph()
	lib := g.add("lib", nil)
	g.add("app", []string{"lib"})
	sys := g.add("sys", []string{"app"})
	g.add("other", []string{"lib"})
	g.root("generation/system/3", sys)
	l, err := whyAlive(g, lib, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{g.Logical(sys), g.Logical(fakePath("app")), g.Logical(lib)}
	if !l.Alive || l.Root != "generation/system/3" || !slices.Equal(l.Chain, want) || l.Refcount != 2 {
		t.Fatalf("got %+v", l)
	}

	a := g.add("a", nil)
	b := g.add("b", []string{"a"})
	g.nodes[a.Hash].refs = []string{b.Hash}
	l, err = whyAlive(g, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Alive || !l.Cycle {
		t.Fatalf("a cycle's path: got %+v", l)
	}
	l, err = whyAlive(g, a, map[string]store.TempRoot{b.Hash: {Owner: 9}})
	if err != nil || !l.Alive || l.Root != "temporary root of process 9" {
		t.Fatalf("a temporary root's path: got %+v, %v", l, err)
	}
	if _, err := whyAlive(g, fakePath("nowhere"), nil); !errors.Is(err, store.ErrNotValid) {
		t.Fatalf("an unregistered path: got %v", err)
	}
}
