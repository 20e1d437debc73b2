package lang

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
)

// WriteTree prints a derivation and its closure as a tree: name, version
// and output path per line, each derivation's inputs below it, sorted by
// name. A derivation already shown is named again without its inputs.
//
// The walk that decides what each line is (which occurrence of a
// derivation shows its inputs, in what order) is sequential; making the
// text and writing it is as much work again, and is done beside it: the
// walk hands chunks of lines to other goroutines to render, and the
// chunks are written in order as they are done. A few chunks are in
// flight at a time: a tree of 100,000 packages is 200 MB of text and is
// never held whole.
func WriteTree(w io.Writer, root *builtins.Derivation) error {
	return writeTree(w, root, nil)
}

// WriteTree prints the system's tree as the function WriteTree does,
// from the walk of the packages planned while the system was evaluated
// when Options.PlanTree asked for one.
func (s *System) WriteTree(w io.Writer) error {
	var plan *treePlan
	if s.plan != nil {
		plan = <-s.plan
	}
	return writeTree(w, s.Drv, plan)
}

func writeTree(w io.Writer, root *builtins.Derivation, plan *treePlan) error {
	// The walk is the one sequential part: it keeps a thread to itself,
	// unless it was planned (its replay waits for the text). As many
	// chunks are in flight either way: each is memory.
	workers := max(1, runtime.GOMAXPROCS(0)-1)
	inFlight := 4*workers + 4
	if plan != nil {
		workers = runtime.GOMAXPROCS(0)
	}
	p := treePlanner{
		free:  make(chan *treeChunk, inFlight),
		jobs:  make(chan *treeChunk, inFlight),
		order: make(chan *treeChunk, inFlight),
	}
	for range inFlight {
		p.free <- &treeChunk{done: make(chan struct{}, 1)}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var r treeRenderer
			for c := range p.jobs {
				r.render(c)
				c.done <- struct{}{}
			}
		})
	}
	var werr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		for c := range p.order {
			<-c.done
			if werr == nil {
				if _, werr = w.Write(c.text); werr != nil {
					p.failed.Store(true)
				}
			}
			p.free <- c
		}
	}()
	// A replay decides nothing that needs the walk's maps.
	if plan == nil || !p.replay(root, plan) {
		p.seen, p.shown = walkMaps(len(root.Drvs))
		p.walk(root, len(root.Drvs)+len(root.Srcs), 0, true)
	}
	p.send()
	close(p.jobs)
	close(p.order)
	wg.Wait()
	<-written
	return werr
}

const (
	// A chunk is cut at so many lines or so many bytes of text
	// (estimated), whichever comes first: big enough that handing it
	// over costs nothing beside its text, small enough to keep a few in
	// flight.
	chunkLines = 1024
	chunkBytes = 128 << 10
)

// treeLine is one line of the tree, as the walk decided it: a
// derivation, or a source (s set).
type treeLine struct {
	d     *builtins.Derivation
	s     *builtins.Source
	depth int32
	last  bool // the last input of its parent
	above bool // its inputs are shown above
}

type treeChunk struct {
	// up holds, for the first line's ancestors below the root, whether
	// each is its parent's last input: what the line's prefix is made of.
	up    []bool
	lines []treeLine
	size  int // estimated length of the text
	text  []byte
	done  chan struct{}
}

type treePlanner struct {
	// seen holds the derivations met that have inputs, by pointer
	// (cheap to look up); shown their ids: the same derivation may be
	// held twice, as read back from a cache, and shows its inputs once.
	seen  map[*builtins.Derivation]struct{}
	shown map[string]struct{}
	// lasts holds, for each derivation being walked, by depth, whether
	// it is its parent's last input.
	lasts []bool
	// kids holds the inputs of the derivations being walked, each one's
	// after its parent's: one slice for the whole tree.
	kids              []treeKid
	cur               *treeChunk
	free, jobs, order chan *treeChunk
	failed            atomic.Bool
	// plan, when set, takes the lines instead of the chunks (see
	// planTree).
	plan *treePlan
}

// walkMaps makes the maps of a walk below a root with roots inputs.
// The derivations with inputs are mostly the root's inputs (the
// packages): sized for them, the maps do not grow while the walk waits.
func walkMaps(roots int) (map[*builtins.Derivation]struct{}, map[string]struct{}) {
	return make(map[*builtins.Derivation]struct{}, roots), make(map[string]struct{}, roots)
}

type treeKid struct {
	// key is the first 8 bytes of the name, big-endian, zero-padded: it
	// orders two names as their bytes do when it differs, and most
	// comparisons end there.
	key uint64
	n   int // inputs
	d   *builtins.Derivation
}

func (p *treePlanner) walk(d *builtins.Derivation, n int, depth int32, last bool) {
	first := n > 0 && p.first(d)
	p.emit(treeLine{d: d, depth: depth, last: last, above: n > 0 && !first})
	if !first {
		return
	}
	p.lasts = append(p.lasts, last)
	// Inputs are kept in id order for the encoding; people read names.
	if len(d.Drvs) > 0 {
		start := len(p.kids)
		// What the walk reads of each input is read here, in one
		// pass over all of them: it is likely not in the cache, and
		// the loads of different inputs overlap.
		for _, in := range d.Drvs {
			p.kids = append(p.kids, treeKid{nameKey(in), len(in.Drvs) + len(in.Srcs), in})
		}
		slices.SortFunc(p.kids[start:], byName)
		for k := range len(d.Drvs) {
			kid := &p.kids[start+k]
			p.walk(kid.d, kid.n, depth+1, k == n-1)
		}
		p.kids = p.kids[:start]
	}
	for k, s := range d.Srcs {
		p.emit(treeLine{s: s, depth: depth + 1, last: len(d.Drvs)+k == n-1})
	}
	p.lasts = p.lasts[:len(p.lasts)-1]
}

// first reports whether d, which has inputs, is met for the first time:
// whether its inputs are to be shown here.
//
// Each map is asked once, by inserting and seeing whether it grew: a
// lookup and then an insert hash the key twice, and the walk is the
// sequential part of printing.
func (p *treePlanner) first(d *builtins.Derivation) bool {
	n := len(p.seen)
	p.seen[d] = struct{}{}
	if len(p.seen) == n {
		return false
	}
	n = len(p.shown)
	p.shown[d.ID()] = struct{}{}
	return len(p.shown) > n
}

// nameKey is the key of d's FullName, made from its Name and Version
// (of which FullName is made) rather than from FullName: that is sliced
// from the output path, two loads further from d, each likely a cache
// miss, on the one thread that decides the tree.
func nameKey(d *builtins.Derivation) uint64 {
	var b [8]byte
	n := copy(b[:], d.Name)
	if n < len(b) && d.Version != "" {
		b[n] = '-'
		copy(b[n+1:], d.Version)
	}
	return binary.BigEndian.Uint64(b[:])
}

func byName(a, b treeKid) int {
	if a.key != b.key {
		return cmp.Compare(a.key, b.key)
	}
	if c := strings.Compare(a.d.FullName(), b.d.FullName()); c != 0 {
		return c
	}
	// (name, path) never ties between two derivations: the path holds
	// the identity.
	return strings.Compare(a.d.Out(), b.d.Out())
}

func (p *treePlanner) emit(l treeLine) {
	if p.plan != nil {
		p.plan.add(l)
		return
	}
	c := p.cur
	if c == nil {
		if p.failed.Load() {
			return
		}
		c = <-p.free
		c.lines, c.size = c.lines[:0], 0
		c.up = c.up[:0]
		if len(p.lasts) > 1 {
			c.up = append(c.up, p.lasts[1:]...)
		}
		p.cur = c
	}
	c.lines = append(c.lines, l)
	// Each level of prefix is at most 6 bytes; names, paths and URLs
	// are guessed: this only bounds what a chunk holds.
	c.size += 6*int(l.depth) + 128
	if len(c.lines) >= chunkLines || c.size >= chunkBytes {
		p.send()
	}
}

// treePlan is the walk of a system's packages, made beside system()
// (which leaves a core idle) for the walk of the system's tree, which is
// the sequential part of printing it: the lines of each package's
// subtree, as shown below the root in name order, each package's after
// the ones before it. Which lines show their inputs depends only on
// what came before; below the system, before each package, came the
// packages before it and inputs of the system that have none (what
// replay checks).
type treePlan struct {
	kids []treeKid // the packages, sorted as the walk sorts inputs
	ends []int     // where each one's lines end
	// blocks hold the lines, planBlock at a time: none is copied as
	// they grow. A line of a source is kept as its depth and lasts,
	// the source in srcs, in the order of the lines: nearly every line
	// is a derivation's, and the plan is memory held beside
	// everything system() makes.
	blocks [][]planLine
	n      int
	srcs   []*builtins.Source
}

type planLine struct {
	d           *builtins.Derivation // nil for a source
	depth       int32
	last, above bool
}

const planBlock = 1 << 13

func (t *treePlan) add(l treeLine) {
	if t.n%planBlock == 0 {
		t.blocks = append(t.blocks, make([]planLine, 0, planBlock))
	}
	if l.s != nil {
		t.srcs = append(t.srcs, l.s)
	}
	b := &t.blocks[len(t.blocks)-1]
	*b = append(*b, planLine{l.d, l.depth, l.last, l.above})
	t.n++
}

// planTree walks pkgs as the inputs of a system would be walked, none of
// them its last.
func planTree(pkgs []*builtins.Derivation) *treePlan {
	plan := &treePlan{kids: make([]treeKid, len(pkgs)), ends: make([]int, len(pkgs))}
	for i, d := range pkgs {
		plan.kids[i] = treeKid{nameKey(d), len(d.Drvs) + len(d.Srcs), d}
	}
	slices.SortFunc(plan.kids, byName)
	p := treePlanner{plan: plan}
	p.seen, p.shown = walkMaps(len(pkgs))
	p.lasts = append(p.lasts, true)
	for i, k := range plan.kids {
		p.walk(k.d, k.n, 1, false)
		plan.ends[i] = plan.n
	}
	return plan
}

// replay emits root's tree from plan and says so, or emits nothing and
// says it cannot: when root's inputs are not the planned packages and
// inputs that have none.
func (p *treePlanner) replay(root *builtins.Derivation, plan *treePlan) bool {
	n := len(root.Drvs) + len(root.Srcs)
	kids := make([]treeKid, len(root.Drvs))
	for i, in := range root.Drvs {
		kids[i] = treeKid{nameKey(in), len(in.Drvs) + len(in.Srcs), in}
	}
	slices.SortFunc(kids, byName)
	// Both are in name order: the packages are met in plan's order, and
	// an input met between them changes nothing the walk decides if it
	// has no inputs.
	j := 0
	for _, k := range kids {
		if j < len(plan.kids) && k.d == plan.kids[j].d {
			j++
		} else if k.n > 0 {
			return false
		}
	}
	if j < len(plan.kids) || n == 0 {
		return false
	}
	p.emit(treeLine{d: root, last: true})
	p.lasts = append(p.lasts[:0], true)
	j, from, src := 0, 0, 0
	for k, kid := range kids {
		last := k == n-1
		if j == len(plan.kids) || kid.d != plan.kids[j].d {
			p.walk(kid.d, kid.n, 1, last)
			continue
		}
		// The lines' depths and lasts say what their prefixes are
		// made of, which the chunks need where they start (see emit);
		// only the package's own line changes, when it is the last.
		for i := from; i < plan.ends[j]; i++ {
			pl := plan.blocks[i/planBlock][i%planBlock]
			l := treeLine{d: pl.d, depth: pl.depth, last: pl.last, above: pl.above}
			if pl.d == nil {
				l.s = plan.srcs[src]
				src++
			}
			if i == from {
				l.last = last
			}
			p.lasts = p.lasts[:l.depth]
			p.emit(l)
			p.lasts = append(p.lasts, l.last)
		}
		p.lasts = p.lasts[:1]
		from = plan.ends[j]
		j++
	}
	for k, s := range root.Srcs {
		p.emit(treeLine{s: s, depth: 1, last: len(root.Drvs)+k == n-1})
	}
	return true
}

// send hands the current chunk to be rendered, and to be written after
// the ones before it.
func (p *treePlanner) send() {
	if p.cur == nil {
		return
	}
	p.jobs <- p.cur
	p.order <- p.cur
	p.cur = nil
}

// treeRenderer makes the text of chunks. prefix holds what is written
// before the lines below the last one rendered, offs[k] how much of it
// is for a line at depth k.
type treeRenderer struct {
	prefix []byte
	offs   []int
	outs   []string
}

func (r *treeRenderer) render(c *treeChunk) {
	r.prefix = r.prefix[:0]
	r.offs = append(r.offs[:0], 0, 0)
	for _, last := range c.up {
		r.prefix = appendSegment(r.prefix, last)
		r.offs = append(r.offs, len(r.prefix))
	}
	// The output paths are read first, in one pass: each is two loads
	// from its derivation, likely not in the cache, and the loads of
	// different lines overlap.
	r.outs = r.outs[:0]
	for i := range c.lines {
		if d := c.lines[i].d; d != nil {
			r.outs = append(r.outs, d.Out())
		}
	}
	outs := r.outs
	b := slices.Grow(c.text[:0], c.size)
	for i := range c.lines {
		l := &c.lines[i]
		if l.depth > 0 {
			b = append(b, r.prefix[:r.offs[l.depth]]...)
			if l.last {
				b = append(b, "└── "...)
			} else {
				b = append(b, "├── "...)
			}
			r.prefix = appendSegment(r.prefix[:r.offs[l.depth]], l.last)
			r.offs = append(r.offs[:l.depth+1], len(r.prefix))
		}
		if l.s != nil {
			b = append(b, l.s.Name...)
			b = append(b, "  "...)
			b = append(b, l.s.Path...)
			b = append(b, "  (source "...)
			b = append(b, l.s.Display...)
			b = append(b, ")\n"...)
			continue
		}
		// FullName, made as it is defined rather than sliced from the
		// output path: that is a backward scan per line.
		b = append(b, l.d.Name...)
		if l.d.Version != "" {
			b = append(b, '-')
			b = append(b, l.d.Version...)
		}
		b = append(b, "  "...)
		b = append(b, outs[0]...)
		outs = outs[1:]
		if l.d.Fixed != nil {
			b = append(b, "  (fetch "...)
			b = append(b, fetchedFrom(l.d)...)
			b = append(b, ')')
		}
		if l.above {
			b = append(b, "  (inputs shown above)"...)
		}
		b = append(b, '\n')
	}
	c.text = b
}

// appendSegment appends the part of the prefix of a line's inputs that
// stands for the line: a bar going on down to its parent's next input.
func appendSegment(b []byte, last bool) []byte {
	if last {
		return append(b, "    "...)
	}
	return append(b, "│   "...)
}

func fetchedFrom(d *builtins.Derivation) string {
	if d.Getenv(builtins.EnvRev) != "" {
		return d.Getenv(builtins.EnvURL) + " @ " + d.Getenv(builtins.EnvRev)[:12]
	}
	return d.Getenv(builtins.EnvURL)
}

// WriteJSON prints the closure of root as indented canonical JSON, the
// same bytes for the same config on any machine:
//
//	{"root": id, "out": path,
//	 "derivations": {id: {"name", "outputs": {output: path}, "drv": encoding, "redacted"?}},
//	 "sources": {path: {"name", "hash": "blake3:…", "from"}}}
//
// objects' keys sorted, as encoding/json and json.Indent give it. "drv"
// is the canonical encoding the id is computed from, except for a secret
// file: its content is replaced, and "redacted": true says the encoding
// no longer hashes to the id.
//
// Each derivation is made into text on its own: GOMAXPROCS goroutines
// make batches of them, written in order as they are done (a 10,000
// package closure is 37 MB of text).
func WriteJSON(w io.Writer, root *builtins.Derivation) error {
	drvs := builtins.Closure(root)
	// A path's source is the last one the closure names, as when the
	// sources were collected into a map.
	srcs := map[string]*builtins.Source{}
	redacted := map[*builtins.Derivation][]byte{}
	for _, d := range drvs {
		for _, s := range d.Srcs {
			srcs[s.Path] = s
		}
		if d.IsSecret() {
			enc, err := redact(d.Encoding())
			if err != nil {
				return err
			}
			redacted[d] = enc
		}
	}
	slices.SortFunc(drvs, func(a, b *builtins.Derivation) int { return strings.Compare(a.ID(), b.ID()) })
	paths := slices.Sorted(maps.Keys(srcs))

	head := appendJSONString([]byte("{\n  \"root\": "), root.ID())
	head = append(head, ",\n  \"out\": "...)
	head = appendJSONString(head, root.Out())
	head = append(head, ",\n  \"derivations\": {"...)
	if _, err := w.Write(head); err != nil {
		return err
	}
	err := writeInOrder(w, len(drvs), 64, func(b []byte, i int) []byte {
		d := drvs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    "...)
		b = appendJSONString(b, d.ID())
		b = append(b, ": {\n      \"name\": "...)
		b = appendJSONString(b, d.FullName())
		b = append(b, ",\n      \"outputs\": {"...)
		outs := slices.Clone(d.Outputs)
		slices.Sort(outs)
		for k, o := range outs {
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n        "...)
			b = appendJSONString(b, o)
			b = append(b, ": "...)
			p, _ := d.OutputPath(o)
			b = appendJSONString(b, p)
		}
		if len(outs) > 0 {
			b = append(b, "\n      "...)
		}
		b = append(b, "},\n      \"drv\": "...)
		enc, secret := redacted[d]
		if !secret {
			enc = d.Encoding()
		}
		b = appendIndented(b, enc, "      ", "  ")
		if secret {
			b = append(b, ",\n      \"redacted\": true"...)
		}
		return append(b, "\n    }"...)
	})
	if err != nil {
		return err
	}
	b := []byte("\n  },\n  \"sources\": {")
	for i, p := range paths {
		s := srcs[p]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    "...)
		b = appendJSONString(b, p)
		b = append(b, ": {\n      \"name\": "...)
		b = appendJSONString(b, s.Name)
		b = append(b, ",\n      \"hash\": "...)
		b = appendJSONString(b, "blake3:"+s.TreeHash)
		b = append(b, ",\n      \"from\": "...)
		b = appendJSONString(b, s.Display)
		b = append(b, "\n    }"...)
	}
	if len(paths) > 0 {
		b = append(b, "\n  "...)
	}
	b = append(b, "}\n}\n"...)
	_, err = w.Write(b)
	return err
}

// appendJSONString appends s quoted as encoding/json quotes it without
// HTML escaping: printable ASCII as it is, anything else as the encoder
// makes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			enc, err := builtins.CanonicalJSON(s)
			if err != nil {
				panic(err) // a string always encodes
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendIndented appends src, valid JSON, indented as json.Indent
// indents it, 3.7 times faster on derivations' encodings: it does not
// check src. It is given only what the derivations' encoder or
// encoding/json made.
func appendIndented(b, src []byte, prefix, indent string) []byte {
	newline := func(b []byte, depth int) []byte {
		b = append(b, '\n')
		b = append(b, prefix...)
		for range depth {
			b = append(b, indent...)
		}
		return b
	}
	// As json.Indent, the line break after { or [ waits for what
	// follows: an empty object or array stays {} or [].
	open, depth := false, 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if open && c != '}' && c != ']' {
			open = false
			depth++
			b = newline(b, depth)
		}
		switch c {
		case '"':
			// The closing quote is the first not escaped: not after
			// an odd number of backslashes.
			j := i + 1
			for {
				j += bytes.IndexByte(src[j:], '"')
				k := j
				for src[k-1] == '\\' {
					k--
				}
				if (j-k)%2 == 0 {
					break
				}
				j++
			}
			b = append(b, src[i:j+1]...)
			i = j
		case '{', '[':
			open = true
			b = append(b, c)
		case ',':
			b = append(b, c)
			b = newline(b, depth)
		case ':':
			b = append(b, ':', ' ')
		case '}', ']':
			if open {
				open = false
			} else {
				depth--
				b = newline(b, depth)
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return b
}

// writeInOrder makes the text of pieces 0..n-1 with render, batch pieces
// at a time on GOMAXPROCS goroutines, and writes the batches in order as
// they are done, a few in flight. After a write fails, nothing more is
// written, and its error is returned.
func writeInOrder(w io.Writer, n, batch int, render func(b []byte, i int) []byte) error {
	workers := runtime.GOMAXPROCS(0)
	inFlight := 2 * workers
	type slot struct {
		text []byte
		done chan struct{}
	}
	slots := make([]slot, inFlight)
	free := make(chan int, inFlight)
	for i := range slots {
		slots[i].done = make(chan struct{}, 1)
		free <- i
	}
	batches := (n + batch - 1) / batch
	jobs := make(chan int, inFlight)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range jobs {
				s := &slots[k%inFlight]
				b := s.text[:0]
				// After a failure the batches left are passed
				// through empty, cheaply: the writer frees each
				// batch's slot in order.
				for i := k * batch; i < min(n, (k+1)*batch) && !failed.Load(); i++ {
					b = render(b, i)
				}
				s.text = b
				s.done <- struct{}{}
			}
		})
	}
	var werr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		for k := range batches {
			s := &slots[k%inFlight]
			<-s.done
			if werr == nil {
				_, werr = w.Write(s.text)
				failed.Store(werr != nil)
			}
			free <- k % inFlight
		}
	}()
	for k := range batches {
		<-free
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	<-written
	return werr
}

// WriteFiles prints the content of every file the closure of root
// writes (write_file derivations), sorted by name then path, so a reader
// sees exactly what a machine will get. Secrets show only their size.
func WriteFiles(w io.Writer, root *builtins.Derivation) error {
	var files []*builtins.Derivation
	for _, d := range builtins.Closure(root) {
		if d.Builder == builtins.BuilderWriteFile {
			files = append(files, d)
		}
	}
	sort.SliceStable(files, func(i, j int) bool {
		if files[i].Name != files[j].Name {
			return files[i].Name < files[j].Name
		}
		return files[i].Out() < files[j].Out()
	})
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "\n=== %s (mode %s) %s\n", f.Name, f.Getenv(builtins.EnvMode), f.Out())
		content := f.Getenv(builtins.EnvContent)
		switch {
		case f.IsSecret():
			fmt.Fprintf(&b, "(secret: %d bytes, readable by root only)\n", len(content))
		case content == "":
			b.WriteString("(empty)\n")
		default:
			b.WriteString(content)
			if !strings.HasSuffix(content, "\n") {
				b.WriteString("\n(no newline at end of file)\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// redact replaces the content of a secret write_file in its encoding:
// eval output lands in terminals, logs and bug reports.
func redact(enc []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(enc, &m); err != nil {
		return nil, err
	}
	if env, ok := m["env"].(map[string]any); ok {
		if c, ok := env["content"].(string); ok {
			env["content"] = fmt.Sprintf("(secret: %d bytes, not shown)", len(c))
		}
	}
	return builtins.CanonicalJSON(m)
}

// WriteValue writes what `nexis eval -e` prints of v: a string raw (so
// $(nexis eval -e ...) is a path), a derivation as its tree, anything
// else as Starlark would; with asJSON, a derivation as WriteJSON and
// anything else as indented JSON.
func WriteValue(w io.Writer, v starlark.Value, asJSON bool) error {
	if asJSON {
		if d, ok := v.(*builtins.Derivation); ok {
			return WriteJSON(w, d)
		}
		g, err := builtins.ToGo(v)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(g)
	}
	switch x := v.(type) {
	case starlark.String:
		_, err := fmt.Fprintln(w, string(x))
		return err
	case *builtins.Derivation:
		return WriteTree(w, x)
	}
	_, err := fmt.Fprintln(w, v.String())
	return err
}
