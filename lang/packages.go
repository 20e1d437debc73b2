package lang

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/internal/suggest"
	"github.com/nexisos/nexis/store/treehash"
)

// packages turns [[packages]] into derivations, dependencies first, and
// returns the Starlark steps they took. Ordering and cycle detection live
// here rather than in Starlark, which forbids recursion.
//
// Packages whose dependencies are done are evaluated in parallel, each on
// a thread of its own, and the result never depends on which ran first:
// a package sees only its dependencies, the modules it loads and what it
// makes itself (builtins.Scope); what is printed is printed in the order
// of a sequential evaluation; and the error reported is the one that
// comes first in that order (see schedule).
//
// An entry is made a Starlark value when its package runs, and dropped
// with its thread: a package from the cache needs none, and no package's
// is held while the others run (8 MB at 10,000 packages). It is the value
// config["packages"][i] is for -e and the repl (System.Globals).
func (ev *evaluator) packages(sys *System, lock *Lock, printed map[string]bool) (uint64, error) {
	r := <-ev.graphed
	if r.err != nil {
		return 0, r.err
	}
	entries, deps, order := r.g.entries, r.g.deps, r.g.order
	raw, _ := ev.cfg.data["packages"].([]any)
	var err error
	if len(entries) > 0 {
		prelude := newUnit()
		t := ev.newThread("nexis eval", prelude)
		done := ev.track(t)
		_, err = ev.load(t, stdlibPrefix+"packages.star")
		done()
		ev.flush(prelude, printed)
		if err != nil {
			return 0, err
		}
	}
	if ev.openCache != nil {
		ev.openCache()
	}
	built := make([]*builtins.Derivation, len(entries))
	ev.ids = make([]treehash.Digest, len(entries))
	run := func(i int, started func(*starlark.Thread)) (*unit, error) {
		d, u, err := ev.onePackage(entries[i], i, deps[i], built, lock, started)
		built[i] = d
		return u, err
	}
	// Once a package is counted, nothing reads its entry again: it is
	// not run again (see schedule), and its key in the package cache is
	// made.
	counted := func(i int) {
		if ev.opts.NoGlobals {
			entries[i], raw[i] = nil, nil
		}
	}
	steps, err := ev.schedule(order, deps, run, counted, printed)
	if err != nil {
		return 0, err
	}
	if ev.opts.PlanTree {
		sys.plan = make(chan *treePlan, 1)
		go func() { sys.plan <- planTree(built) }()
	}
	pkgs := starlark.NewDict(len(entries))
	for i, name := range r.g.names {
		_ = pkgs.SetKey(starlark.String(name), built[i])
	}
	pkgs.Freeze()
	sys.Packages = pkgs
	return steps, nil
}

// packageGraph is what ordering makes of [[packages]]: the entries,
// each one's dependencies (by index) and an order in which each comes
// after them.
type packageGraph struct {
	entries []map[string]any
	names   []string // each entry's name, which outlives it (see Options.NoGlobals)
	deps    [][]int
	order   []int
}

type graphResult struct {
	g   *packageGraph
	err error
}

// errUnchecked is graphOf's when an entry is not of the shape the schema
// gives it: only for a config Check refuses, with its own error.
var errUnchecked = errors.New("[[packages]] is not of its schema's shape")

// graphOf orders cfg's packages. It runs while cfg is checked (see
// eval), so it asks each value's type rather than relying on the check.
func graphOf(cfg *Config) (*packageGraph, error) {
	raw, _ := cfg.data["packages"].([]any)
	entries := make([]map[string]any, len(raw))
	names := make([]string, len(raw))
	byName := make(map[string]int, len(raw))
	for i, r := range raw {
		e, ok := r.(map[string]any)
		if !ok {
			return nil, errUnchecked
		}
		entries[i] = e
		name, _ := e["name"].(string)
		names[i] = name
		if name == "" {
			return nil, cfg.Errorf(KeyPath("packages", index(i)), "a package needs a name")
		}
		if j, dup := byName[name]; dup {
			return nil, cfg.Errorf(KeyPath("packages", index(i), "name"), "package %q is declared twice (first at %s)", name, cfg.Pos(KeyPath("packages", index(j))))
		}
		byName[name] = i
	}
	deps := make([][]int, len(entries))
	for i, e := range entries {
		list, _ := e["dependencies"].([]any)
		if len(list) > 0 {
			deps[i] = make([]int, 0, len(list))
		}
		for j, d := range list {
			name, ok := d.(string)
			if !ok {
				return nil, errUnchecked
			}
			k, ok := byName[name]
			if !ok {
				msg := fmt.Sprintf("unknown package %q", name)
				if m := closestName(name, byName); m != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", m)
				} else {
					msg += ": declare it in [[packages]]"
				}
				return nil, cfg.Errorf(KeyPath("packages", index(i), "dependencies", index(j)), "%s", msg)
			}
			deps[i] = append(deps[i], k)
		}
	}
	order, err := topoOrder(cfg, entries, deps)
	if err != nil {
		return nil, err
	}
	return &packageGraph{entries, names, deps, order}, nil
}

// schedule runs run(i) for every package i, each after its dependencies,
// on as many goroutines as Go runs threads, lowest position in order
// first, and returns the steps they took in all.
//
// It gives the outcome of running them one after the other in order:
// when one fails, those after it in order are not started (or are
// stopped), those before it all finish, and the error reported is the
// first in order. The steps of the packages are added up in order as
// they finish: the package where the sum passes --max-steps is run once
// more, starting from that sum, to fail where a sequential evaluation
// would have. counted(i) is called once package i is counted, and so
// will not be run again.
func (ev *evaluator) schedule(order []int, deps [][]int, run func(int, func(*starlark.Thread)) (*unit, error), counted func(int), printed map[string]bool) (uint64, error) {
	n := len(order)
	pos := make([]int, n)
	for k, i := range order {
		pos[i] = k
	}
	pending := make([]int, n)
	dependents := make([][]int, n)
	for i, ds := range deps {
		pending[i] = len(ds)
		for _, d := range ds {
			dependents[d] = append(dependents[d], i)
		}
	}
	type job struct {
		u       *unit
		err     error
		done    bool
		running *starlark.Thread
	}
	jobs := make([]job, n)
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		ready    = &posHeap{pos: pos}
		inflight int
		failedAt = n  // position of the first failure in order
		byLimit  bool // the failure at failedAt is the sum of steps
		prefix   int  // positions before it are done
		sum      uint64
		total    uint64 // steps of all done, in any order
	)
	for i := range n {
		if pending[i] == 0 {
			ready.push(i)
		}
	}
	fail := func(p int) {
		if p >= failedAt {
			return
		}
		failedAt = p
		for i := range jobs {
			if t := jobs[i].running; t != nil && pos[i] > p {
				t.Cancel("stopped: an earlier package failed")
			}
		}
	}
	// advance adds up, in order, the steps of the packages done, and
	// prints what they printed.
	advance := func() {
		for prefix < failedAt && jobs[order[prefix]].done {
			i := order[prefix]
			if jobs[i].err != nil {
				return
			}
			if sum+jobs[i].u.steps > ev.opts.MaxSteps {
				byLimit = true
				fail(prefix)
				return
			}
			sum += jobs[i].u.steps
			ev.flush(jobs[i].u, printed)
			counted(i)
			prefix++
		}
	}
	worker := func() {
		mu.Lock()
		defer mu.Unlock()
		for {
			for ready.len() == 0 && inflight > 0 {
				cond.Wait()
			}
			if ready.len() == 0 {
				cond.Broadcast()
				return
			}
			i := ready.pop()
			// Past --max-steps in all, only the first package not done
			// runs, until the sum in order says where it was passed.
			if pos[i] > failedAt || (total > ev.opts.MaxSteps && pos[i] > prefix) {
				if pos[i] > failedAt {
					continue
				}
				ready.push(i)
				cond.Wait()
				continue
			}
			inflight++
			mu.Unlock()
			u, err := runSafely(i, run, func(t *starlark.Thread) {
				mu.Lock()
				jobs[i].running = t
				if pos[i] > failedAt {
					t.Cancel("stopped: an earlier package failed")
				}
				mu.Unlock()
			})
			mu.Lock()
			inflight--
			jobs[i] = job{u: u, err: err, done: true}
			if u != nil {
				total += u.steps
			}
			if err != nil {
				fail(pos[i])
			} else {
				for _, d := range dependents[i] {
					if pending[d]--; pending[d] == 0 {
						ready.push(d)
					}
				}
			}
			advance()
			cond.Broadcast()
		}
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(worker)
	}
	wg.Wait()
	if failedAt == n {
		return sum, nil
	}
	i := order[failedAt]
	if byLimit {
		// Run it again from the sum before it: it stops where, and with
		// the error that, a sequential evaluation would.
		u, err := ev.again(i, sum, run)
		if err == nil {
			err = fmt.Errorf("evaluation took more than %d steps", ev.opts.MaxSteps)
		}
		jobs[i].u, jobs[i].err = u, err
	}
	if jobs[i].u != nil {
		ev.flush(jobs[i].u, printed)
	}
	return 0, jobs[i].err
}

// runSafely is run with a panic made an internal error, as ev.run does
// on the evaluation's own goroutine.
func runSafely(i int, run func(int, func(*starlark.Thread)) (*unit, error), started func(*starlark.Thread)) (u *unit, err error) {
	defer func() {
		if r := recover(); r != nil {
			u, err = nil, &Error{Msg: fmt.Sprintf("internal error: nexis failed while evaluating (%v); please report it with the config that caused it", r)}
		}
	}()
	return run(i, started)
}

// again runs package i, never from the cache, with its thread's steps
// starting at from. Nothing else runs by then.
func (ev *evaluator) again(i int, from uint64, run func(int, func(*starlark.Thread)) (*unit, error)) (*unit, error) {
	ev.cache = nil
	return run(i, func(t *starlark.Thread) { t.Steps = from })
}

// posHeap is a min-heap of package indices by their position in order.
type posHeap struct {
	pos []int
	h   []int
}

func (p *posHeap) len() int { return len(p.h) }

func (p *posHeap) push(i int) {
	p.h = append(p.h, i)
	for c := len(p.h) - 1; c > 0; {
		par := (c - 1) / 2
		if p.pos[p.h[par]] <= p.pos[p.h[c]] {
			break
		}
		p.h[par], p.h[c] = p.h[c], p.h[par]
		c = par
	}
}

func (p *posHeap) pop() int {
	top := p.h[0]
	last := len(p.h) - 1
	p.h[0] = p.h[last]
	p.h = p.h[:last]
	for c := 0; ; {
		l, r, m := 2*c+1, 2*c+2, c
		if l < len(p.h) && p.pos[p.h[l]] < p.pos[p.h[m]] {
			m = l
		}
		if r < len(p.h) && p.pos[p.h[r]] < p.pos[p.h[m]] {
			m = r
		}
		if m == c {
			break
		}
		p.h[c], p.h[m] = p.h[m], p.h[c]
		c = m
	}
	return top
}

func topoOrder(cfg *Config, entries []map[string]any, deps [][]int) ([]int, error) {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(entries))
	var order, stack []int
	var visit func(i int) error
	visit = func(i int) error {
		switch color[i] {
		case black:
			return nil
		case grey:
			start := 0
			for k, s := range stack {
				if s == i {
					start = k
				}
			}
			var names []string
			for _, s := range append(stack[start:], i) {
				names = append(names, entries[s]["name"].(string))
			}
			return cfg.Errorf(KeyPath("packages", index(stack[len(stack)-1]), "dependencies"),
				"dependency cycle: %s", strings.Join(names, " → "))
		}
		color[i] = grey
		stack = append(stack, i)
		for _, d := range deps[i] {
			if err := visit(d); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		order = append(order, i)
		return nil
	}
	for i := range entries {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (ev *evaluator) onePackage(e map[string]any, i int, depIdx []int, built []*builtins.Derivation, lock *Lock, started func(*starlark.Thread)) (*builtins.Derivation, *unit, error) {
	// KeyPath("packages", index(i)), without its quoting check, for
	// every package.
	key := "packages" + index(i)
	name := e["name"].(string)
	// What the package may name is needed only to evaluate it: a
	// package from the cache gets no scope.
	u := &unit{}
	file := ev.cfg.FileOf(key)

	var ckey treehash.Digest
	var given string
	keyed := false
	if c := ev.cache; c != nil {
		// On the stack for the few dependencies most packages have:
		// nothing collects while the packages run, and what each
		// makes is memory the evaluation holds (1.4 MB at 10,000).
		var nameBuf [4]string
		var idBuf [4]treehash.Digest
		names, ids := nameBuf[:0], idBuf[:0]
		for _, d := range depIdx {
			names, ids = append(names, built[d].Name), append(ids, ev.ids[d])
		}
		ckey, given, keyed = c.packageKey(e, key, file, lock.Packages[name], names, ids)
		if keyed {
			if hit, ok := c.lookup(ckey); ok {
				u.steps, u.reads, u.keys = hit.steps, hit.reads, hit.keys
				ev.ids[i] = identity(ckey, u.reads, u.keys)
				c.put(ckey, hit, false)
				return hit.drv, u, nil
			}
		}
	}
	u.scope = builtins.NewScope()
	for _, d := range depIdx {
		u.scope.See(built[d])
	}
	d, err := ev.evalPackage(e, i, key, name, file, pkgDeps{depIdx, built}, lock, u, started)
	// What the package could name is of no use once it is made, and
	// its index of what its dependencies reach is as large as the
	// derivations: the unit is kept until every package is done.
	u.scope = nil
	if err == nil && keyed {
		ev.ids[i] = identity(ckey, u.reads, u.keys)
		if !ev.printed(u) {
			ev.cache.put(ckey, &cacheEntry{drv: d, steps: u.steps, reads: u.reads, keys: u.keys, given: given}, true)
		}
	}
	return d, u, err
}

// pinKeys are the keys of the pin a package without a module is given,
// in sorted order as ToStarlark would set them. Made once: a key made
// for each package is an allocation for each.
var pinKeys = [...]starlark.Value{
	starlark.String("git"), starlark.String("locked"),
	starlark.String("prebuilt_hash"), starlark.String("prebuilt_url"),
	starlark.String("rev"), starlark.String("source_hash"),
	starlark.String("version"),
}

// evalPackage evaluates package i for u: an entry of the common kind
// without Starlark (see commonPackage), any other on a thread of its
// own.
func (ev *evaluator) evalPackage(e map[string]any, i int, key, name, file string, deps pkgDeps, lock *Lock, u *unit, started func(*starlark.Thread)) (*builtins.Derivation, error) {
	if _, ok := e["module"]; !ok {
		if d := ev.commonPackage(e, i, name, deps, lock, u); d != nil {
			return d, nil
		}
	}
	depDict := deps.dict()
	t := ev.newThread("package "+name, u)
	started(t)
	done := ev.track(t)
	defer func() {
		done()
		u.steps = t.Steps
	}()
	var v starlark.Value
	var err error
	var what string
	if modPath, ok := e["module"].(string); ok {
		modName := path.Clean(path.Join(path.Dir(file), modPath))
		what = modName + ": package()"
		mod, lerr := ev.load(t, modName)
		if lerr != nil {
			if _, isEval := lerr.(*starlark.EvalError); !isEval {
				return nil, ev.cfg.Errorf(key+".module", "%v", lerr)
			}
			return nil, lerr
		}
		fn, ok := mod["package"].(*starlark.Function)
		if !ok {
			return nil, ev.cfg.Errorf(key+".module", "%s must define a function package(...) that returns a derivation", modName)
		}
		args, _ := e["args"].(map[string]any)
		if err := ev.checkArgs(fn, args, key, modName); err != nil {
			return nil, err
		}
		var kwargs []starlark.Tuple
		if args != nil {
			for _, k := range sortedKeys(args) {
				kwargs = append(kwargs, starlark.Tuple{starlark.String(k), ToStarlark(args[k])})
			}
		}
		if hasParam(fn, "deps") {
			kwargs = append(kwargs, starlark.Tuple{starlark.String("deps"), depDict})
		}
		v, err = starlark.Call(t, fn, nil, kwargs)
	} else {
		what = "@stdlib//packages.star: package()"
		p := packageEntry(i, e).Pin(lock.Packages[name], ev.opts.System)
		// Asked again, so the package's scope holds what the module made.
		std, lerr := ev.load(t, stdlibPrefix+"packages.star")
		if lerr != nil {
			return nil, lerr
		}
		pin := starlark.NewDict(len(pinKeys))
		for k, v := range [len(pinKeys)]starlark.Value{
			starlark.Bool(p.Git), starlark.Bool(p.Locked),
			starlark.String(p.PrebuiltHash), starlark.String(p.PrebuiltURL),
			starlark.String(p.Rev), starlark.String(p.SourceHash),
			starlark.String(p.Version),
		} {
			_ = pin.SetKey(pinKeys[k], v)
		}
		pin.Freeze()
		v, err = callFn(t, std, "@stdlib//packages.star", "package", nil, []starlark.Tuple{
			{starlark.String("entry"), ToStarlark(e)},
			{starlark.String("deps"), depDict},
			{starlark.String("key"), starlark.String(key)},
			{starlark.String("file"), starlark.String(file)},
			{starlark.String("pin"), pin},
		})
	}
	if err != nil {
		return nil, err
	}
	d, ok := v.(*builtins.Derivation)
	if !ok {
		return nil, ev.cfg.Errorf(key, "package %q: %s returned a %s, want a derivation", name, what, v.Type())
	}
	return d, nil
}

// pkgDeps are a package's dependencies: the packages at idx of built.
// package() is given them as a dict (dict); the generic builder reads
// them as one (builtins.Deps) without the dict being made, half a
// kilobyte for each package.
type pkgDeps struct {
	idx   []int
	built []*builtins.Derivation
}

// dict is the frozen dict package() is given: each dependency by name.
func (p pkgDeps) dict() *starlark.Dict {
	d := starlark.NewDict(len(p.idx))
	for _, i := range p.idx {
		_ = d.SetKey(starlark.String(p.built[i].Name), p.built[i])
	}
	d.Freeze()
	return d
}

// Len is the dict's: how many names the dependencies have.
func (p pkgDeps) Len() int {
	n := 0
	for k, i := range p.idx {
		if !slices.ContainsFunc(p.idx[:k], func(j int) bool { return p.built[j].Name == p.built[i].Name }) {
			n++
		}
	}
	return n
}

// Get is the dict's: the dependency of that name, the last of two (as
// SetKey leaves it); an error for a name no dict could hold.
func (p pkgDeps) Get(name starlark.Value) (starlark.Value, bool, error) {
	s, ok := name.(starlark.String)
	if !ok {
		if _, err := name.Hash(); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	for k := len(p.idx) - 1; k >= 0; k-- {
		if d := p.built[p.idx[k]]; d.Name == string(s) {
			return d, true, nil
		}
	}
	return nil, false, nil
}

// commonPackage is what package() would make first of an entry without
// a module: the generic builder's derivation of an entry of the common
// kind (builtins.GenericBuilder.Common, with package()'s timeout), or
// nil for any other, which package() then makes. Made here, the entry
// is never a Starlark dict, and neither package() nor a thread is
// needed: at 10,000 packages those were an eighth of a cold
// evaluation's CPU. The derivation is the same; the package takes no
// Starlark steps. packages() loads packages.star before any package
// runs, so every such entry is made here, whichever runs first.
func (ev *evaluator) commonPackage(e map[string]any, i int, name string, deps pkgDeps, lock *Lock, u *unit) *builtins.Derivation {
	const std = stdlibPrefix + "packages.star"
	m := ev.loaded(std)
	if m == nil || m.err != nil {
		return nil
	}
	ev.genericOnce.Do(func() {
		// build.star is loaded with packages.star.
		if build := ev.loaded(stdlibPrefix + "build.star"); build != nil && build.err == nil {
			if b, ok := build.globals["COMMON_PACKAGE"].(*starlark.Builtin); ok {
				ev.generic, _ = b.Receiver().(*builtins.GenericBuilder)
			}
		}
		ev.timeout = m.globals["_TIMEOUT"]
	})
	if ev.generic == nil || ev.timeout == nil {
		return nil
	}
	// What package()'s load of the module would record: the scope then
	// holds what the stdlib made (the builder, the stdenv). A stdlib
	// module reads no file, so doing it again for an entry left to
	// package() records nothing twice.
	u.asked(std)
	u.uses(m)
	// The builder reads no file of an entry it makes: one that names a
	// file is left to package(), which reads it on the package's thread.
	ctx := ev.base
	ctx.Scope = u.scope
	ctx.ReadFile, ctx.TreeHash = noFile, noTree
	var buf [16]builtins.EntryItem
	items := buf[:0]
	for k, v := range e {
		if s, ok := v.(string); ok {
			items = append(items, builtins.EntryItem{Key: k, Str: s})
		} else {
			items = append(items, builtins.EntryItem{Key: k, Value: ToStarlark(v)})
		}
	}
	p := packageEntry(i, e).Pin(lock.Packages[name], ev.opts.System)
	return ev.generic.Common(&ctx, items, deps, builtins.EntryPin{
		Locked: starlark.Bool(p.Locked), Version: starlark.String(p.Version),
		Git: starlark.Bool(p.Git), SourceHash: starlark.String(p.SourceHash),
	}, ev.timeout)
}

// errNoFile is what the generic builder gets if it asks for a file while
// it makes a package without a thread (see commonPackage): it then
// leaves the entry to package().
var errNoFile = errors.New("no file is read for a package made without a thread")

func noFile(builtins.File) ([]byte, error)          { return nil, errNoFile }
func noTree(builtins.File) (treehash.Digest, error) { return treehash.Digest{}, errNoFile }

// checkArgs holds an entry's args against the parameters of its
// module's package(), before the call: a key it does not take, or a
// parameter without a default that args leaves out, is the TOML's
// mistake, and the error points there rather than into the module.
func (ev *evaluator) checkArgs(fn *starlark.Function, args map[string]any, key, modName string) error {
	n := fn.NumParams()
	if fn.HasKwargs() {
		n--
	}
	if fn.HasVarargs() {
		n--
	}
	params := make([]string, 0, n)
	for i := 0; i < n; i++ {
		p, _ := fn.Param(i)
		params = append(params, p)
	}
	if !fn.HasKwargs() {
		for _, k := range sortedKeys(args) {
			if k == "deps" {
				return ev.cfg.Errorf(key+".args.deps", "deps is what nexis passes package(): the derivations of the entry's dependencies; name them in dependencies = [...]")
			}
			if !slices.Contains(params, k) {
				hint := ""
				if c := suggest.Closest(k, params); c != "" && c != "deps" {
					hint = fmt.Sprintf(" (did you mean %q?)", c)
				}
				return ev.cfg.Errorf(key+".args."+k, "%s: package() takes no argument %q%s; it takes: %s", modName, k, hint, strings.Join(params, ", "))
			}
		}
	}
	for i, p := range params {
		if _, given := args[p]; given || p == "deps" || fn.ParamDefault(i) != nil {
			continue
		}
		where := key + ".args"
		if args == nil {
			where = key + ".module"
		}
		return ev.cfg.Errorf(where, "%s: package() needs %q, which has no default: give it in args", modName, p)
	}
	return nil
}

func hasParam(fn *starlark.Function, name string) bool {
	for i := 0; i < fn.NumParams(); i++ {
		if p, _ := fn.Param(i); p == name {
			return true
		}
	}
	return fn.HasKwargs()
}

func closestName(k string, names map[string]int) string {
	allowed := make(map[string]*Schema, len(names))
	for n := range names {
		allowed[n] = nil
	}
	return didYouMean(k, allowed)
}
