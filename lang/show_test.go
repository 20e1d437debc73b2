package lang

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/nexisos/nexis/builtins"
)

// refWriteTree is WriteTree as it was first written: one depth-first
// walk that prints as it goes, a map of the derivations shown by id. The
// fast WriteTree must print the same bytes.
func refWriteTree(w io.Writer, root *builtins.Derivation) error {
	t := refTree{w: bufio.NewWriterSize(w, 256<<10), shown: map[string]bool{}}
	t.walk(root, true, true)
	return t.w.Flush()
}

type refTree struct {
	w      *bufio.Writer
	shown  map[string]bool
	prefix []byte
	named  []refNamed
}

type refNamed struct {
	name, out string
	d         *builtins.Derivation
}

func (t *refTree) walk(d *builtins.Derivation, last, top bool) {
	w := t.w
	w.Write(t.prefix)
	mark := len(t.prefix)
	if !top {
		if last {
			w.WriteString("└── ")
			t.prefix = append(t.prefix, "    "...)
		} else {
			w.WriteString("├── ")
			t.prefix = append(t.prefix, "│   "...)
		}
	}
	defer func() { t.prefix = t.prefix[:mark] }()
	w.WriteString(d.FullName())
	w.WriteString("  ")
	w.WriteString(d.Out())
	if d.Fixed != nil {
		w.WriteString("  (fetch ")
		w.WriteString(fetchedFrom(d))
		w.WriteByte(')')
	}
	n := len(d.Drvs) + len(d.Srcs)
	if n > 0 {
		if t.shown[d.ID()] {
			w.WriteString("  (inputs shown above)\n")
			return
		}
		t.shown[d.ID()] = true
	}
	w.WriteByte('\n')
	if len(d.Drvs) > 0 {
		start := len(t.named)
		for _, in := range d.Drvs {
			t.named = append(t.named, refNamed{in.FullName(), in.Out(), in})
		}
		slices.SortFunc(t.named[start:], func(a, b refNamed) int {
			if c := strings.Compare(a.name, b.name); c != 0 {
				return c
			}
			return strings.Compare(a.out, b.out)
		})
		for i := range len(d.Drvs) {
			t.walk(t.named[start+i].d, i == n-1, false)
		}
		t.named = t.named[:start]
	}
	for i, s := range d.Srcs {
		w.Write(t.prefix)
		if len(d.Drvs)+i == n-1 {
			w.WriteString("└── ")
		} else {
			w.WriteString("├── ")
		}
		w.WriteString(s.Name)
		w.WriteString("  ")
		w.WriteString(s.Path)
		w.WriteString("  (source ")
		w.WriteString(s.Display)
		w.WriteString(")\n")
	}
}

// refClosureJSON is what --json prints: the root's id and
// every derivation of its closure by id, with its output paths and its
// canonical encoding; every source with its tree hash.
type refClosureJSON struct {
	Root        string                       `json:"root"`
	Out         string                       `json:"out"`
	Derivations map[string]refDerivationJSON `json:"derivations"`
	Sources     map[string]refSourceJSON     `json:"sources"`
}

// refDerivationJSON is one derivation in refClosureJSON.
type refDerivationJSON struct {
	Name     string            `json:"name"`
	Outputs  map[string]string `json:"outputs"`
	Encoding json.RawMessage   `json:"drv"`
	// Redacted is set for a secret file: its content is replaced in
	// "drv", so the encoding shown no longer hashes to the id.
	Redacted bool `json:"redacted,omitempty"`
}

// refSourceJSON is one source in refClosureJSON.
type refSourceJSON struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	From string `json:"from"`
}

// refWriteJSON is WriteJSON as it was first written: the closure
// collected into maps, encoded by encoding/json and indented whole. The
// fast WriteJSON must print the same bytes.
func refWriteJSON(w io.Writer, root *builtins.Derivation) error {
	out := refClosureJSON{Root: root.ID(), Out: root.Out(), Derivations: map[string]refDerivationJSON{}, Sources: map[string]refSourceJSON{}}
	for _, d := range builtins.Closure(root) {
		outs := map[string]string{}
		for _, o := range d.Outputs {
			outs[o], _ = d.OutputPath(o)
		}
		dj := refDerivationJSON{Name: d.FullName(), Outputs: outs, Encoding: d.Encoding()}
		if d.IsSecret() {
			enc, err := redact(d.Encoding())
			if err != nil {
				return err
			}
			dj.Encoding, dj.Redacted = enc, true
		}
		out.Derivations[d.ID()] = dj
		for _, s := range d.Srcs {
			out.Sources[s.Path] = refSourceJSON{Name: s.Name, Hash: "blake3:" + s.TreeHash, From: s.Display}
		}
	}
	enc, err := builtins.CanonicalJSON(out)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, enc, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// graph makes derivations without evaluating anything: ids and paths
// are made up (builtins.Restore), the tree only reads them.
type graph struct{ n int }

func (g *graph) drv(name, version string, inputs ...*builtins.Derivation) *builtins.Derivation {
	g.n++
	sum := sha256.Sum256(fmt.Appendf(nil, "%d %s %s", g.n, name, version))
	id := hex.EncodeToString(sum[:])
	full := name
	if version != "" {
		full += "-" + version
	}
	// The hash part of a store path: 32 characters, as storepath has it.
	h := strings.NewReplacer("e", "y", "u", "z").Replace(id[:32])
	d := &builtins.Derivation{Name: name, Version: version, Outputs: []string{"out"}, Drvs: slices.Clone(inputs)}
	slices.SortFunc(d.Drvs, func(a, b *builtins.Derivation) int { return strings.Compare(a.ID(), b.ID()) })
	builtins.Restore(d, id, []string{"/store/" + h[:2] + "/" + h[2:4] + "/" + h + "-" + full})
	return d
}

func (g *graph) fetch(name, url, rev string) *builtins.Derivation {
	d := g.drv(name, "")
	d.Fixed = &builtins.Fixed{Algo: "sha256", Hash: strings.Repeat("0", 64)}
	env := map[string]string{builtins.EnvURL: url}
	if rev != "" {
		env[builtins.EnvRev] = rev
	}
	d.Env = builtins.EnvFromMap(env)
	return d
}

func (g *graph) src(name string) *builtins.Source {
	g.n++
	return &builtins.Source{Name: name, Path: fmt.Sprintf("/store/aa/bb/%032d-%s", g.n, name), Display: "./" + name, TreeHash: "00"}
}

// workload is the shape of the 10,000-package evaluation bench/evalcmp
// makes: every package with its own fetched source, a shared stdenv
// (fetched) and libc (built from it), a builder script and up to three
// earlier packages; under a system with a few files of its own.
func workload(n int) *builtins.Derivation {
	g := &graph{}
	stdenv := g.fetch("stdenv", "https://example.org/stdenv.tar.gz", "")
	stdenv.Version = ""
	libc := g.drv("libc-stdenv", "", stdenv)
	builder := g.drv("nexis-builder.sh", "")
	var top, pkgs []*builtins.Derivation
	for i := range 10 {
		top = append(top, g.drv(fmt.Sprintf("etc-file%d", i), ""))
	}
	for i := range n {
		in := []*builtins.Derivation{libc, builder, stdenv, g.fetch(fmt.Sprintf("pkg%d-src", i), fmt.Sprintf("https://example.org/pkg%d-1.%d.tar.gz", i, i), "")}
		for k := 1; k <= 3 && i-k*7 >= 0; k++ {
			in = append(in, pkgs[i-k*7])
		}
		pkgs = append(pkgs, g.drv(fmt.Sprintf("pkg%d", i), fmt.Sprintf("1.%d", i), in...))
	}
	return g.drv("nexis-system-bench", "", append(top, pkgs...)...)
}

// randomGraph makes a graph of n derivations, each with inputs among the
// ones made before it: shared inputs met at different depths, fetches
// by url and by git revision, derivations with no inputs, sources, names
// that tie (the output path decides), long chains and diamonds.
func randomGraph(r *rand.Rand, n int) *builtins.Derivation {
	g := &graph{}
	var all []*builtins.Derivation
	names := []string{"a", "b", "lib", "lib", "zlib", "tool", "x"}
	for i := range n {
		name := names[r.IntN(len(names))]
		version := ""
		if r.IntN(2) == 0 {
			version = fmt.Sprint(r.IntN(3))
		}
		var d *builtins.Derivation
		switch k := r.IntN(10); {
		case k == 0:
			d = g.fetch(name+"-src", "https://e.org/"+name, "")
		case k == 1:
			d = g.fetch(name+"-git", "https://e.org/"+name+".git", fmt.Sprintf("%040x", i))
		case k == 2 || len(all) == 0:
			d = g.drv(name, version)
		default:
			var in []*builtins.Derivation
			switch r.IntN(3) {
			case 0: // a chain
				in = append(in, all[len(all)-1])
			case 1: // a diamond's top
				if len(all) >= 3 {
					in = append(in, all[len(all)-1], all[len(all)-2])
				}
			}
			for range r.IntN(5) {
				c := all[r.IntN(len(all))]
				if !slices.Contains(in, c) {
					in = append(in, c)
				}
			}
			d = g.drv(name, version, in...)
		}
		switch r.IntN(8) {
		case 0: // strings encoding/json escapes, or not
			d.Env = builtins.EnvFromMap(map[string]string{"a": weird[r.IntN(len(weird))], weird[r.IntN(len(weird))]: "b"})
		case 1: // a secret file: its content is not shown
			d.Builder = builtins.BuilderWriteFile
			d.Env = builtins.EnvFromMap(map[string]string{builtins.EnvSecret: "1", builtins.EnvContent: weird[r.IntN(len(weird))]})
		case 2:
			d.Outputs = append(d.Outputs, "dev", "bin")
			builtins.Restore(d, d.ID(), []string{d.Out(), d.Out() + "-dev", d.Out() + "-bin"})
		}
		for range r.IntN(4) / 3 * (1 + r.IntN(2)) {
			src := g.src(fmt.Sprintf("s%d", r.IntN(3)))
			if r.IntN(3) == 0 && len(all) > 0 && len(all[len(all)-1].Srcs) > 0 {
				// The same path named again, from elsewhere.
				src = &builtins.Source{Name: "again", Path: all[len(all)-1].Srcs[0].Path, Display: weird[r.IntN(len(weird))], TreeHash: "11"}
			}
			d.Srcs = append(d.Srcs, src)
		}
		slices.SortFunc(d.Srcs, func(a, b *builtins.Source) int { return strings.Compare(a.Path, b.Path) })
		all = append(all, d)
	}
	// Many roots: the system names a random part of what was made.
	var top []*builtins.Derivation
	for _, d := range all {
		if r.IntN(3) == 0 {
			top = append(top, d)
		}
	}
	return g.drv("system", "", top...)
}

// weird holds strings encoding/json escapes (or, without HTML
// escaping, does not).
var weird = []string{"", "plain", "<b>&amp;</b>", "quote\" back\\slash", "tab\tnl\ncr\r", "\x00\x01\x1f\x7f", "é ü 日本", "\u2028\u2029", "bad \xff\xfe utf-8", "emoji 😀", "ends in a backslash\\", "\\\"\\\\\""}

func TestWriteJSONMatchesReference(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	check := func(name string, root *builtins.Derivation) {
		t.Helper()
		var want, got bytes.Buffer
		if err := refWriteJSON(&want, root); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(want.Bytes()) {
			t.Fatalf("%s: the reference is not JSON", name)
		}
		for _, procs := range []int{1, 2, 5} {
			runtime.GOMAXPROCS(procs)
			got.Reset()
			if err := WriteJSON(&got, root); err != nil {
				t.Fatal(err)
			}
			if d := firstDifference(got.Bytes(), want.Bytes()); d != "" {
				t.Fatalf("%s, GOMAXPROCS %d: the JSON differs from the reference %s", name, procs, d)
			}
		}
	}
	g := &graph{}
	check("one derivation", g.drv("leaf", "1"))
	check("workload", workload(300))
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		check(fmt.Sprint("random graph ", i), randomGraph(r, 1+r.IntN(40*(1+i%10))))
	}
}

// appendIndented gives what json.Indent gives, on the encodings of
// derivations and on anything encoding/json makes, compact or not.
func TestAppendIndentedIsJSONIndent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var value func(depth int) any
	value = func(depth int) any {
		switch k := r.IntN(9); {
		case k == 0 || depth > 4:
			return weird[r.IntN(len(weird))]
		case k == 1:
			return r.NormFloat64() * 1e6
		case k == 2:
			return r.IntN(2) == 0
		case k == 3:
			return nil
		case k < 6:
			m := map[string]any{}
			for range r.IntN(4) {
				m[weird[r.IntN(len(weird))]] = value(depth + 1)
			}
			return m
		default:
			var l []any
			for range r.IntN(4) {
				l = append(l, value(depth+1))
			}
			if l == nil && r.IntN(2) == 0 {
				return []any{}
			}
			return l
		}
	}
	var docs [][]byte
	for range 2000 {
		v := value(0)
		compact, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		spaced, err := json.MarshalIndent(v, " ", "\t")
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, compact, spaced)
	}
	for _, d := range builtins.Closure(randomGraph(r, 400)) {
		docs = append(docs, d.Encoding())
	}
	for _, doc := range docs {
		for _, p := range [][2]string{{"", "  "}, {"      ", "  "}, {"> ", "\t"}} {
			var want bytes.Buffer
			if err := json.Indent(&want, doc, p[0], p[1]); err != nil {
				t.Fatal(err)
			}
			if got := appendIndented([]byte("x"), doc, p[0], p[1]); string(got) != "x"+want.String() {
				t.Fatalf("%q indented with %q, %q:\ngot  %q\nwant %q", doc, p[0], p[1], got[1:], want.Bytes())
			}
		}
	}
}

// A failed write stops the printing and is what WriteJSON returns.
func TestWriteJSONStopsAtAFailedWrite(t *testing.T) {
	w := &failingWriter{after: 3}
	if err := WriteJSON(w, workload(3000)); err != errFailedWrite {
		t.Fatalf("WriteJSON returned %v, want the writer's error", err)
	}
	if w.writes != 4 {
		t.Fatalf("%d writes, want 4: none after the one that failed", w.writes)
	}
	w = &failingWriter{after: 3}
	if err := WriteTree(w, workload(3000)); err != errFailedWrite {
		t.Fatalf("WriteTree returned %v, want the writer's error", err)
	}
	if w.writes != 4 {
		t.Fatalf("%d writes, want 4: none after the one that failed", w.writes)
	}
}

var errFailedWrite = fmt.Errorf("disk full")

type failingWriter struct{ after, writes int }

func (w *failingWriter) Write(b []byte) (int, error) {
	w.writes++
	if w.writes > w.after {
		return 0, errFailedWrite
	}
	return len(b), nil
}

func TestWriteTreeMatchesReference(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	check := func(name string, root *builtins.Derivation) {
		t.Helper()
		var want, got bytes.Buffer
		if err := refWriteTree(&want, root); err != nil {
			t.Fatal(err)
		}
		for _, procs := range []int{1, 2, 5} {
			runtime.GOMAXPROCS(procs)
			got.Reset()
			if err := WriteTree(&got, root); err != nil {
				t.Fatal(err)
			}
			if d := firstDifference(got.Bytes(), want.Bytes()); d != "" {
				t.Fatalf("%s, GOMAXPROCS %d: the tree differs from the reference %s", name, procs, d)
			}
		}
	}
	g := &graph{}
	leaf := g.drv("leaf", "1")
	check("one derivation", leaf)
	check("no inputs below", g.drv("top", "", leaf, g.drv("leaf", "0")))
	// A chain deeper than any chunk the tree is cut into.
	chain := leaf
	for i := range 3000 {
		chain = g.drv(fmt.Sprint("c", i%10), "", chain, g.fetch("f", "https://e.org/f", ""))
	}
	check("deep chain", chain)
	a := g.drv("a", "", leaf)
	b, c := g.drv("b", "", a), g.drv("c", "", a)
	check("diamond", g.drv("d", "", b, c))
	// The same derivation held twice (as read back from a cache): shown
	// once, by its id.
	twin := *a
	check("twins", g.drv("t", "", b, &twin, g.drv("u", "", &twin)))
	check("workload", workload(300))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		check(fmt.Sprint("random graph ", i), randomGraph(r, 1+r.IntN(40*(1+i%10))))
	}
}

// TestPlannedTreeMatchesReference checks the tree printed from a plan
// made beside system() (System.WriteTree) against the reference: with
// the packages the plan has and the system's inputs as they come, in
// the workload and in random graphs, where the plan is usable (the
// system's inputs are the packages and inputs that have none) and where
// it is not (another input with inputs, a package not among the
// system's inputs, one named twice).
func TestPlannedTreeMatchesReference(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	replayed := 0
	check := func(name string, root *builtins.Derivation, pkgs []*builtins.Derivation, usable bool) {
		t.Helper()
		var want, got bytes.Buffer
		if err := refWriteTree(&want, root); err != nil {
			t.Fatal(err)
		}
		plan := planTree(pkgs)
		p := treePlanner{plan: &treePlan{}}
		if ok := p.replay(root, plan); ok != usable && usable {
			t.Fatalf("%s: the plan was not used", name)
		} else if ok {
			replayed++
		}
		for _, procs := range []int{1, 2, 5} {
			runtime.GOMAXPROCS(procs)
			got.Reset()
			if err := writeTree(&got, root, plan); err != nil {
				t.Fatal(err)
			}
			if d := firstDifference(got.Bytes(), want.Bytes()); d != "" {
				t.Fatalf("%s, GOMAXPROCS %d: the tree differs from the reference %s", name, procs, d)
			}
		}
	}
	root := workload(300)
	var pkgs []*builtins.Derivation
	for _, d := range root.Drvs {
		if strings.HasPrefix(d.Name, "pkg") {
			pkgs = append(pkgs, d)
		}
	}
	check("workload", root, pkgs, true)
	// The last input of the system is a package: its line ends the
	// tree, and its inputs' prefixes say so.
	last := slices.MaxFunc(pkgs, func(a, b *builtins.Derivation) int { return strings.Compare(a.FullName(), b.FullName()) })
	check("workload, a package last", (&graph{n: 1 << 20}).drv("system", "", pkgs...), pkgs, true)
	check("workload, a source last", withSrcs(root, &builtins.Source{Name: "z", Path: "/store/z", Display: "./z"}), pkgs, true)
	check("a package not an input", root, append(slices.Clone(pkgs), workload(3).Drvs[10]), false)
	check("an input with inputs", root, slices.DeleteFunc(slices.Clone(pkgs), func(d *builtins.Derivation) bool { return d == last }), false)
	check("a package named twice", root, append(slices.Clone(pkgs), last), false)
	check("no packages", root, nil, false)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		root := randomGraph(r, 1+r.IntN(40*(1+i%10)))
		// The packages: the system's inputs with inputs and some of
		// the others; in every other graph, at times not all of the
		// first, or one that is not an input.
		var pkgs []*builtins.Derivation
		for _, d := range root.Drvs {
			if len(d.Drvs)+len(d.Srcs) > 0 && (i%2 == 0 || r.IntN(10) > 0) || r.IntN(4) == 0 {
				pkgs = append(pkgs, d)
			}
		}
		if i%2 == 1 && r.IntN(5) == 0 && len(root.Drvs) > 0 && len(root.Drvs[0].Drvs) > 0 {
			pkgs = append(pkgs, root.Drvs[0].Drvs[0])
		}
		check(fmt.Sprint("random graph ", i), root, pkgs, false)
	}
	if replayed < 100 {
		t.Fatalf("the plan was used %d times: the random graphs do not test it", replayed)
	}
}

// withSrcs is d, made again with srcs.
func withSrcs(d *builtins.Derivation, srcs ...*builtins.Source) *builtins.Derivation {
	c := *d
	c.Srcs = append(slices.Clone(d.Srcs), srcs...)
	return &c
}

// BenchmarkWriteTree10k prints the closure of the 10,000-package
// workload (80,000 lines, 10 MB). Its floor, in the same run: copying
// the same bytes, already made, to the same writer; and the first,
// sequential walk.
func BenchmarkWriteTree10k(b *testing.B) {
	root := workload(10_000)
	var out bytes.Buffer
	if err := WriteTree(&out, root); err != nil {
		b.Fatal(err)
	}
	b.Run("tree", func(b *testing.B) {
		b.SetBytes(int64(out.Len()))
		for b.Loop() {
			if err := WriteTree(io.Discard, root); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sequential", func(b *testing.B) {
		b.SetBytes(int64(out.Len()))
		for b.Loop() {
			if err := refWriteTree(io.Discard, root); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor-copy", func(b *testing.B) {
		b.SetBytes(int64(out.Len()))
		for b.Loop() {
			if _, err := io.Copy(io.Discard, bytes.NewReader(out.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWriteJSON10k prints the closure of the 10,000-package
// workload as --json does (20,000 derivations, 30 MB). Its floor, in the
// same run: the first way, encoding/json over maps, indented whole.
func BenchmarkWriteJSON10k(b *testing.B) {
	root := workload(10_000)
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if err := WriteJSON(io.Discard, root); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if err := refWriteJSON(io.Discard, root); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSystemWriteTreeIsWriteTree: the tree nexis eval prints, planned
// while system() runs (Options.PlanTree), is the tree of the system's
// derivation, for the examples and a generated config (run it with
// -race: the plan reads the packages while system() uses them).
func TestSystemWriteTreeIsWriteTree(t *testing.T) {
	configs, err := filepath.Glob("../examples/*/config.toml")
	if err != nil || len(configs) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	// The generated config's system has packages and files as inputs:
	// the plan is used. Some examples' have inputs with inputs of their
	// own (services, users): their trees are walked.
	generated := generate(t, 300)
	configs = append(configs, generated)
	for _, config := range configs {
		sys, err := Eval(config, Options{PlanTree: true})
		if err != nil {
			t.Fatalf("eval %s: %v", config, err)
		}
		p := treePlanner{plan: &treePlan{}}
		if plan := planOf(sys); plan == nil || !p.replay(sys.Drv, plan) && config == generated {
			t.Errorf("%s: the plan is not used", config)
		}
		var want, got bytes.Buffer
		if err := WriteTree(&want, sys.Drv); err != nil {
			t.Fatal(err)
		}
		if err := sys.WriteTree(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s: the planned tree differs from the system's", config)
		}
	}
}

// planOf is the plan sys.WriteTree will take, left for it.
func planOf(sys *System) *treePlan {
	plan := <-sys.plan
	sys.plan <- plan
	return plan
}

// firstDifference says where got first differs from want, with the bytes
// around it, or "" when they are equal.
func firstDifference(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("at byte %d of %d:\ngot  %q\nwant %q", i, len(want), got[max(0, i-200):min(len(got), i+200)], want[max(0, i-200):min(len(want), i+200)])
}
