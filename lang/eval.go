// Package lang evaluates a NexisOS system description: a TOML config (with
// its [includes]) and the Starlark modules it uses, into a graph of
// derivations rooted at the system derivation.
//
// Evaluation is pure: it reads only the config, the files the config and
// its modules name (each hashed by content into what uses it), the
// embedded stdlib and nexis.lock beside the config. Display names of files
// are relative to the config's directory, so no absolute path enters an
// identity or an error message.
package lang

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/internal/gcpace"
	"github.com/nexisos/nexis/stdlib"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// DefaultMaxSteps bounds an evaluation; a config of 10,000 packages takes
// well under a tenth of it.
const DefaultMaxSteps = 500_000_000

// DefaultMaxDepth bounds how deeply TOML values and the Starlark values
// given to builtins nest. Configs nest a handful of levels; Go code that
// walks a value recurses once per level, and thousands of levels are
// where a crafted value starts to cost memory and time.
const DefaultMaxDepth = 100

// Options configure an evaluation.
type Options struct {
	StoreDir string // logical store directory; storepath.DefaultDir if empty
	System   string // target platform; DefaultSystem if empty
	MaxSteps uint64 // DefaultMaxSteps if zero
	MaxDepth int    // DefaultMaxDepth if zero
	// MaxMemory bounds the memory the evaluation allocates;
	// DefaultMaxMemory if zero.
	MaxMemory int64
	// Runaway, when set, is called from another goroutine if one step
	// of the evaluation runs past twice MaxMemory or nests Go calls
	// toward a stack overflow, which nothing in the evaluation can stop
	// any more: it should report msg and end the process (see guard.go).
	Runaway func(msg string)
	Print   func(msg string)
	// Inputs, when set, records every file the evaluation reads (see
	// LookupEval).
	Inputs *Inputs
	// Cache, when set, keeps each package's derivation on disk and
	// takes it from there while what it was given and read is unchanged
	// (see pkgcache.go).
	Cache bool
	// CacheDir, when set, is where the package cache is kept instead of
	// the user's cache directory (tests).
	CacheDir string
	// PlanTree, when set, says the system's tree will be printed
	// (System.WriteTree): its walk is planned while system() runs.
	PlanTree bool
	// NoGlobals says System.Globals will not be asked for (nexis eval
	// without -e, build without -A, switch; not the repl, nor
	// System.Derivation of an expression): each [[packages]] entry is
	// let go once its package is evaluated and counted, and Globals'
	// config has no packages. The entries are 90 MB of 100,000
	// packages, held through every collection of the evaluation.
	NoGlobals bool
	// Stdenv, when set, replaces the config's [nexis] stdenv (same
	// shape: version, url, sha256, tools): `--stdenv FILE`, and tests
	// that build with the stdenv CI made (scripts/make-stdenv).
	Stdenv map[string]any
}

func withDefaults(opts Options) Options {
	if opts.StoreDir == "" {
		opts.StoreDir = storepath.DefaultDir
	}
	if opts.System == "" {
		opts.System = DefaultSystem
	}
	if opts.MaxSteps == 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	return opts
}

// System is an evaluated config.
type System struct {
	Config   *Config
	Lock     *Lock
	Packages *starlark.Dict // name → *builtins.Derivation
	Drv      *builtins.Derivation

	ev          *evaluator
	plan        chan *treePlan // with Options.PlanTree
	globalsOnce sync.Once
	globals     starlark.StringDict
}

// stdlibPrefix names embedded modules: load("@stdlib//packages.star", ...).
const stdlibPrefix = "@stdlib//"

var fileOptions = &syntax.FileOptions{Set: true, TopLevelControl: true, GlobalReassign: false}

type module struct {
	globals starlark.StringDict
	err     error
	done    bool
	unit    *unit // what its load made, printed and loaded

	printedOnce sync.Once
	printed     bool // it, or a module it loaded, printed (see evaluator.printed)
}

type evaluator struct {
	cfg  *Config
	opts Options
	pre  starlark.StringDict
	// base is the context every thread's is copied from.
	base builtins.Context

	// Modules load one at a time (a load that loads another goes on
	// on the same thread), so a load cycle is always on one thread's
	// chain of loads, and a module is loaded once.
	loadMu sync.Mutex
	// modMu guards modules. Every package asks for the modules it
	// loaded, twice: those lookups only read, and do not wait for each
	// other.
	modMu   sync.RWMutex
	modules map[string]*module

	// threads are the running threads, for the memory watchdog.
	threadMu sync.Mutex
	threads  map[*starlark.Thread]bool
	stopped  string // why the watchdog stopped the evaluation

	// thread is the system's thread, which -e expressions and the
	// repl use after the evaluation.
	thread *starlark.Thread
	sys    *unit

	cache     *pkgCache         // nil without Options.Cache
	openCache func()            // sets cache once the packages are about to run
	ids       []treehash.Digest // each package's identity (see identity)
	written   chan struct{}     // closed when the package cache is written
	graphed   chan graphResult  // the packages' order, made beside the check

	// generic is the generic builder packages.star's package() asks
	// first, and timeout the timeout it passes (see commonPackage).
	genericOnce sync.Once
	generic     *builtins.GenericBuilder
	timeout     starlark.Value
}

// Eval evaluates the config at configPath.
func Eval(configPath string, opts Options) (*System, error) {
	sys, err := eval(configPath, opts)
	if err != nil {
		withSource(err, filepath.Dir(configPath))
	}
	return sys, err
}

func eval(configPath string, opts Options) (*System, error) {
	opts = withDefaults(opts)
	// The modules compile from the same names, whatever the config
	// holds: while it is read.
	precompiled := precompileStdlib((&evaluator{opts: opts}).predeclared(starlark.None))
	defer func() { <-precompiled }()
	var cached chan *pkgCacheFileData
	if opts.Cache {
		// The package cache is read while the config is.
		cached = make(chan *pkgCacheFileData, 1)
		go func() { cached <- readPkgCache(pkgCacheFile(configPath, opts)) }()
	}
	var tc *tomlCache
	if opts.Cache {
		if f := pkgCacheFile(configPath, opts); f != "" {
			tc = openTOMLCache(strings.TrimSuffix(f, ".pkgs") + ".toml")
		}
	}
	cfg, err := loadConfig(configPath, opts.Inputs, opts.MaxDepth, tc)
	if err != nil {
		return nil, err
	}
	// A failed evaluation returns no System to close: it closes the
	// directory itself, once what runs beside it has ended.
	failed := true
	var graphDone chan struct{}
	defer func() {
		if failed {
			if graphDone != nil {
				<-graphDone
			}
			cfg.Close()
		}
	}()
	if tc == nil || len(tc.fresh) > len(tc.now) {
		// The config was decoded rather than taken from the cache: most
		// of what that allocated is garbage, and what is kept small (see
		// gcpace.Now).
		gcpace.Now()
	}
	tomlWritten := make(chan struct{})
	go func() {
		defer close(tomlWritten)
		tc.write()
	}()
	defer func() { <-tomlWritten }()
	// The packages are ordered while the config is checked: packages()
	// takes the order, or the error, once the check has passed.
	graphed := make(chan graphResult, 1)
	graphDone = make(chan struct{})
	go func() {
		defer close(graphDone)
		g, err := graphOf(cfg)
		graphed <- graphResult{g, err}
	}()
	if err := cfg.Check(ConfigSchema); err != nil {
		return nil, err
	}
	lock, err := loadLock(cfg.dir, LockFile)
	if err != nil {
		return nil, err
	}
	ev := newEvaluator(cfg, opts)
	ev.graphed = graphed
	if opts.Cache {
		// Packages are ordered before the cache file is needed, which
		// may still be being read then.
		var opened *pkgCache
		ev.openCache = func() { ev.cache = openPkgCache(ev, configPath, <-cached); opened = ev.cache }
		// What it encodes ahead ends with the evaluation, whether or
		// not the file is written (a failure, a package run again).
		defer func() {
			if opened != nil {
				opened.stop()
			}
		}()
	}
	sys := &System{Config: cfg, Lock: lock, ev: ev}
	err = ev.run(func() error { return ev.system(sys, lock) })
	if ev.written != nil {
		<-ev.written
	}
	if err != nil {
		return nil, ev.wrap(err)
	}
	failed = false
	return sys, nil
}

// Close lets go of the config directory (see Config.Close): the System
// reads no file after it.
func (s *System) Close() { s.Config.Close() }

// Globals is what -e expressions and the repl see: the whole config as
// Starlark values, the packages, the system and every builtin. The
// config is made when first asked: evaluating needs a package's entry
// only while the package runs, and system() none (see system). With
// Options.NoGlobals the entries are gone, and so is config's packages.
func (s *System) Globals() starlark.StringDict {
	s.globalsOnce.Do(func() {
		data := s.Config.data
		if s.ev.opts.NoGlobals {
			data = withoutPackages(data)
		}
		s.globals = starlark.StringDict{"config": ToStarlark(data), "packages": s.Packages, "system": s.Drv}
		for k, v := range s.ev.pre {
			s.globals[k] = v
		}
	})
	return s.globals
}

// system evaluates the packages and the system derivation into sys.
func (ev *evaluator) system(sys *System, lock *Lock) error {
	printed := map[string]bool{}
	steps, err := ev.packages(sys, lock, printed)
	if err != nil {
		return err
	}
	// system() is given the packages as derivations: the config it
	// reads is the rest, as frozen Starlark values.
	config := ToStarlark(withoutPackages(ev.cfg.data))
	if c := ev.cache; c != nil {
		// The packages are final: they are written while the system is
		// evaluated.
		ev.written = make(chan struct{})
		go func() {
			defer close(ev.written)
			c.write()
		}()
	}
	u := newUnit()
	if sys.Packages != nil {
		u.scope.See(sys.Packages)
	}
	t := ev.newThread("nexis eval", u)
	// The system's budget is what the packages left of --max-steps.
	t.Steps = steps
	ev.thread, ev.sys = t, u
	done := ev.track(t)
	defer func() {
		done()
		ev.flush(u, printed)
		// -e expressions and the repl print as they go.
		t.Print = func(_ *starlark.Thread, msg string) {
			if ev.opts.Print != nil {
				ev.opts.Print(msg)
			}
		}
	}()
	if sys.Packages == nil {
		sys.Packages = starlark.NewDict(0)
		sys.Packages.Freeze()
	}
	mod, err := ev.load(t, stdlibPrefix+"system.star")
	if err != nil {
		return err
	}
	v, err := callFn(t, mod, "@stdlib//system.star", "system", nil,
		[]starlark.Tuple{{starlark.String("config"), config}, {starlark.String("packages"), sys.Packages}})
	if err != nil {
		return err
	}
	drv, ok := v.(*builtins.Derivation)
	if !ok {
		return &Error{Pos: Pos{File: "@stdlib//system.star"}, Msg: fmt.Sprintf("system() returned a %s, want a derivation", v.Type())}
	}
	sys.Drv = drv
	return nil
}

func newEvaluator(cfg *Config, opts Options) *evaluator {
	ev := &evaluator{cfg: cfg, opts: opts, modules: map[string]*module{}, threads: map[*starlark.Thread]bool{}}
	ev.base = builtins.Context{
		StoreDir: opts.StoreDir,
		System:   opts.System,
		Resolve:  ev.resolveFile,
		Local:    ev.localFile,
		Limits:   builtins.Limits{MaxDepth: opts.MaxDepth, MaxBytes: opts.MaxMemory},
	}
	ev.pre = ev.predeclared(buildSettings(cfg, opts))
	return ev
}

// predeclared is what every module sees besides its loads.
func (ev *evaluator) predeclared(settings starlark.Value) starlark.StringDict {
	pre := builtins.Predeclared()
	pre["config_error"] = starlark.NewBuiltin("config_error", ev.configError)
	pre["declared_in"] = starlark.NewBuiltin("declared_in", ev.declaredIn)
	pre["default"] = DefaultBuiltin
	pre["nexis_command"] = NexisCommandBuiltin
	pre["try_call"] = builtins.Checks()["try_call"]
	pre["target_system"] = starlark.String(ev.opts.System)
	for k, v := range guardedBuiltins(ev.base.Limits) {
		pre[k] = v
	}
	pre["build_settings"] = settings
	return pre
}

// A unit is one part of an evaluation on a thread of its own: a
// module's load, a package, the system. It keeps what the part made (its
// scope), printed, loaded and read, so that parts running in parallel
// give what running them one after the other gives, and so that a
// package's result can be kept with what it depended on.
type unit struct {
	scope   *builtins.Scope
	prints  []string
	loaded  []string          // modules asked for, in order, once each
	loading []string          // on a module's thread: the chain of loads
	reads   []Input           // files read, resolved and hashed
	keys    map[string]string // declared_in answers: key → file
	steps   uint64
}

func newUnit() *unit { return &unit{scope: builtins.NewScope()} }

func (u *unit) asked(name string) {
	if !slices.Contains(u.loaded, name) {
		u.loaded = append(u.loaded, name)
	}
}

// uses records that u depends on what loaded module m made and read.
func (u *unit) uses(m *module) {
	u.scope.Use(m.unit.scope)
	for _, r := range m.unit.reads {
		u.read(r)
	}
}

// printed says whether u, or a module it asked for, printed. What a
// loaded module says is final, and every package asks: it is kept.
func (ev *evaluator) printed(u *unit) bool {
	if len(u.prints) > 0 {
		return true
	}
	for _, name := range u.loaded {
		m := ev.loaded(name)
		if m == nil {
			return true
		}
		m.printedOnce.Do(func() { m.printed = ev.printed(m.unit) })
		if m.printed {
			return true
		}
	}
	return false
}

func (u *unit) read(i Input) {
	if !slices.Contains(u.reads, i) {
		u.reads = append(u.reads, i)
	}
}

const unitKey = "nexis.lang.unit"

func unitOf(thread *starlark.Thread) *unit {
	u, _ := thread.Local(unitKey).(*unit)
	return u
}

// newThread returns a thread for u with its own step budget and context.
func (ev *evaluator) newThread(name string, u *unit) *starlark.Thread {
	t := &starlark.Thread{Name: name, Load: ev.loadFromThread}
	t.Print = func(t *starlark.Thread, msg string) {
		if u := unitOf(t); u != nil {
			u.prints = append(u.prints, msg)
		}
	}
	limitSteps(t, ev.opts.MaxSteps)
	ctx := ev.base
	ctx.Scope = u.scope
	ctx.ReadFile = func(f builtins.File) ([]byte, error) {
		b, err := ev.cfg.dir.readFile(f.Display)
		u := unitOf(t)
		u.read(fileInput(f.Display, b, err))
		return b, err
	}
	ctx.TreeHash = func(f builtins.File) (treehash.Digest, error) {
		d, err := ev.cfg.dir.treeHash(f.Display)
		unitOf(t).read(treeInput(f.Display, d, err))
		return d, err
	}
	ctx.Attach(t)
	t.SetLocal(unitKey, u)
	return t
}

// track registers a running thread with the watchdog, until done.
func (ev *evaluator) track(t *starlark.Thread) (done func()) {
	ev.threadMu.Lock()
	ev.threads[t] = true
	if ev.stopped != "" {
		t.Cancel(ev.stopped)
	}
	ev.threadMu.Unlock()
	return func() {
		ev.threadMu.Lock()
		delete(ev.threads, t)
		ev.threadMu.Unlock()
	}
}

// cancelAll stops every running thread, and every thread started after.
func (ev *evaluator) cancelAll(reason string) {
	ev.threadMu.Lock()
	defer ev.threadMu.Unlock()
	if ev.stopped == "" {
		ev.stopped = reason
	}
	for t := range ev.threads {
		t.Cancel(reason)
	}
}

// buildSettings is what the stdlib's builders read of [nexis]: the
// stdenv (Options.Stdenv winning over the config) and sandbox_paths.
func buildSettings(cfg *Config, opts Options) starlark.Value {
	var stdenv starlark.Value = starlark.None
	if s := cfg.Stdenv(); s != nil {
		stdenv = ToStarlark(s)
	}
	if opts.Stdenv != nil {
		stdenv = ToStarlark(opts.Stdenv)
	}
	var paths []starlark.Value
	for _, p := range cfg.SandboxPaths() {
		paths = append(paths, starlark.String(p))
	}
	d := starlark.NewDict(2)
	_ = d.SetKey(starlark.String("stdenv"), stdenv)
	_ = d.SetKey(starlark.String("sandbox_paths"), starlark.NewList(paths))
	d.Freeze()
	return d
}

// configError lets a module report a problem at a config key's position:
// config_error("users.root.password_hash", "is plaintext").
func (ev *evaluator) configError(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key, msg string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &key, &msg); err != nil {
		return nil, err
	}
	return nil, ev.cfg.Errorf(key, "%s", msg)
}

// NexisCommandBuiltin is nexis_command("update", name): a command an
// error message suggests, as the user must type it (hint.Command). It
// changes no value the evaluation makes, only what its errors say.
var NexisCommandBuiltin = starlark.NewBuiltin("nexis_command", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 || len(args) == 0 {
		return nil, fmt.Errorf("%s: want the verb and its arguments, as strings", b.Name())
	}
	words := make([]string, len(args))
	for i, a := range args {
		s, ok := starlark.AsString(a)
		if !ok {
			return nil, fmt.Errorf("%s: argument %d is a %s, want a string", b.Name(), i+1, a.Type())
		}
		words[i] = s
	}
	return starlark.String(hint.Command(words[0], words[1:]...)), nil
})

// DefaultBuiltin is default("system.locale.lang"): the value the schema
// declares for a key the config leaves out, so the stdlib never writes
// a default of its own.
var DefaultBuiltin = starlark.NewBuiltin("default", schemaDefault)

func schemaDefault(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &key); err != nil {
		return nil, err
	}
	if v, ok := declaredDefaults()[key]; ok {
		return v, nil
	}
	if _, err := ConfigSchema.DefaultOf(key); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return nil, fmt.Errorf("%s(%q): name the key as the schema declares it (<name> for a table's names, [] for an array's elements)", b.Name(), key)
}

// declaredDefaults maps each declared key with a default to it, frozen.
var declaredDefaults = sync.OnceValue(func() map[string]starlark.Value {
	m := map[string]starlark.Value{}
	for _, o := range ConfigSchema.Options() {
		if o.Schema.Default != nil {
			m[o.Key] = ToStarlark(o.Schema.Default)
		}
	}
	return m
})

// declaredIn returns the display name of the config file that defines a
// key, so modules can resolve file names relative to it.
func (ev *evaluator) declaredIn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &key); err != nil {
		return nil, err
	}
	file := ev.cfg.FileOf(key)
	if u := unitOf(thread); u != nil {
		if u.keys == nil {
			u.keys = map[string]string{}
		}
		u.keys[key] = file
	}
	return starlark.String(file), nil
}

// resolveFile resolves a file name written in the module running on
// thread (or relative to a config file given as relative_to), inside the
// config directory.
func (ev *evaluator) resolveFile(thread *starlark.Thread, rel, relativeTo string) (builtins.File, error) {
	from := relativeTo
	if from == "" {
		from = thread.CallFrame(1).Pos.Filename()
	}
	if strings.HasPrefix(from, stdlibPrefix) {
		return builtins.File{}, fmt.Errorf("a stdlib module must name files relative_to a config file (declared_in(key))")
	}
	display, err := localName(from, rel)
	if err != nil {
		return builtins.File{}, err
	}
	resolved, fi, err := ev.cfg.dir.stat(display)
	if u := unitOf(thread); u != nil {
		u.read(statOf(display, resolved, fi, err))
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return builtins.File{}, fmt.Errorf("%s does not exist (resolved relative to %s)", display, from)
		}
		return builtins.File{}, err
	}
	return ev.cfg.dir.file(display, resolved), nil
}

// localFile resolves the absolute path of a file:// URL inside the config
// directory (as its real path, or as the path the config was named by).
func (ev *evaluator) localFile(abs string) (builtins.File, error) {
	outside := fmt.Errorf("%s is outside the config directory %s: evaluation reads only inside it (move the file there)", abs, ev.cfg.Dir)
	rel, err := filepath.Rel(ev.cfg.Dir, filepath.Clean(abs))
	if err != nil || !filepath.IsLocal(rel) {
		if ev.cfg.given == "" {
			return builtins.File{}, outside
		}
		if rel, err = filepath.Rel(ev.cfg.given, filepath.Clean(abs)); err != nil || !filepath.IsLocal(rel) {
			return builtins.File{}, outside
		}
	}
	display := filepath.ToSlash(rel)
	resolved, _, err := ev.cfg.dir.stat(display)
	if err != nil {
		return builtins.File{}, err
	}
	return ev.cfg.dir.file(display, resolved), nil
}

func (ev *evaluator) loadFromThread(thread *starlark.Thread, name string) (starlark.StringDict, error) {
	from := thread.CallFrame(0).Pos.Filename()
	target, err := resolveModule(from, name)
	if err != nil {
		return nil, err
	}
	return ev.load(thread, target)
}

// resolveModule turns a load() argument into a module display name.
func resolveModule(from, name string) (string, error) {
	if !strings.HasSuffix(name, ".star") {
		return "", fmt.Errorf("load(%q): module names end in .star", name)
	}
	if strings.HasPrefix(name, stdlibPrefix) {
		return stdlibPrefix + path.Clean(strings.TrimPrefix(name, stdlibPrefix)), nil
	}
	if strings.HasPrefix(name, "@") {
		return "", fmt.Errorf("load(%q): unknown repository; only @stdlib// is built in", name)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("load(%q): absolute module paths depend on this machine; write it relative to %s", name, from)
	}
	if strings.HasPrefix(from, stdlibPrefix) {
		return stdlibPrefix + path.Clean(path.Join(path.Dir(strings.TrimPrefix(from, stdlibPrefix)), name)), nil
	}
	display, err := localName(from, name)
	if err != nil {
		return "", fmt.Errorf("load(%q): %w", name, err)
	}
	return display, nil
}

// load evaluates a module once per evaluation, for the unit on thread,
// and reports load cycles with their chain. A module asked for by a
// package or the system loads on a thread of its own; one asked for by a
// module's load() loads on that module's thread, as its part.
func (ev *evaluator) load(thread *starlark.Thread, name string) (starlark.StringDict, error) {
	u := unitOf(thread)
	u.asked(name)
	nested := len(u.loading) > 0
	if m := ev.loaded(name); m != nil {
		u.uses(m)
		return m.globals, m.err
	}
	if !nested {
		ev.loadMu.Lock()
		defer ev.loadMu.Unlock()
	}
	ev.modMu.RLock()
	m, ok := ev.modules[name]
	done := ok && m.done
	ev.modMu.RUnlock()
	if ok {
		if !done {
			i := indexOf(u.loading, name)
			return nil, fmt.Errorf("load cycle: %s", strings.Join(append(u.loading[i:], name), " → "))
		}
		u.uses(m)
		return m.globals, m.err
	}
	var src []byte
	var err error
	if rest, ok := strings.CutPrefix(name, stdlibPrefix); ok {
		src, err = fs.ReadFile(stdlib.FS, rest)
		if err != nil {
			return nil, fmt.Errorf("no stdlib module %s", name)
		}
	} else {
		src, err = ev.cfg.dir.readFile(name)
		if err != nil {
			u.read(fileInput(name, src, err))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("module %s does not exist", name)
			}
			return nil, err
		}
	}
	m = &module{unit: newUnit()}
	m.unit.loading = append(slices.Clone(u.loading), name)
	if !strings.HasPrefix(name, stdlibPrefix) {
		m.unit.read(fileInput(name, src, nil))
	}
	ev.modMu.Lock()
	ev.modules[name] = m
	ev.modMu.Unlock()
	if prog, err := compileModule(name, src, ev.pre); err != nil {
		m.err = err
	} else if nested {
		// The module's part runs on the loading module's thread, with
		// its own scope and prints.
		ctx, _ := builtins.FromThread(thread)
		saved := ctx.Scope
		ctx.Scope = m.unit.scope
		thread.SetLocal(unitKey, m.unit)
		m.globals, m.err = prog.Init(thread, ev.pre)
		thread.SetLocal(unitKey, u)
		ctx.Scope = saved
	} else {
		t := ev.newThread("load "+name, m.unit)
		done := ev.track(t)
		m.globals, m.err = prog.Init(t, ev.pre)
		done()
		m.unit.steps = t.Steps
	}
	if m.globals != nil && m.err == nil {
		// Freezing walks every value, recursively.
		for _, k := range m.globals.Keys() {
			if err := builtins.Measure(m.globals[k], ev.base.Limits); err != nil {
				m.err = fmt.Errorf("%s: global %s: %w", name, k, err)
			}
		}
	}
	if m.globals != nil && m.err == nil {
		m.globals.Freeze()
	}
	ev.modMu.Lock()
	m.done = true
	ev.modMu.Unlock()
	u.uses(m)
	return m.globals, m.err
}

// loaded returns module name if it has finished loading.
func (ev *evaluator) loaded(name string) *module {
	ev.modMu.RLock()
	defer ev.modMu.RUnlock()
	if m, ok := ev.modules[name]; ok && m.done {
		return m
	}
	return nil
}

// flush prints what u printed, after what the modules it asked for
// printed when they loaded (each once, a module's own loads first): the
// order of a sequential evaluation, whichever thread ran first.
func (ev *evaluator) flush(u *unit, printed map[string]bool) {
	if ev.opts.Print == nil {
		return
	}
	for _, name := range u.loaded {
		if printed[name] {
			continue
		}
		printed[name] = true
		if m := ev.loaded(name); m != nil {
			ev.flush(m.unit, printed)
		}
	}
	for _, msg := range u.prints {
		ev.opts.Print(msg)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return 0
}

// callFn calls function fn of a loaded module on thread.
func callFn(thread *starlark.Thread, mod starlark.StringDict, modName, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	f, ok := mod[fn].(starlark.Callable)
	if !ok {
		return nil, &Error{Pos: Pos{File: modName}, Msg: fmt.Sprintf("%s defines no function %s()", modName, fn)}
	}
	return starlark.Call(thread, f, args, kwargs)
}

// FormatError renders an evaluation error as nexis prints it: "error:",
// the position and message, then the stack of user frames (or, with
// trace, the whole Starlark backtrace).
func FormatError(err error, trace bool) string {
	var le *Error
	if !errors.As(err, &le) {
		return fmt.Sprintf("error: %v\n", err)
	}
	out := "error: " + le.Error() + "\n" + le.caret()
	switch {
	case trace && le.Trace != "":
		out += le.Trace + "\n"
	case le.Stack != "":
		out += le.Stack + "\n"
	}
	return out
}

// AsError turns an error from Starlark evaluation into an *Error with
// positions (see wrap); other errors pass through.
func AsError(err error) error { return (*evaluator)(nil).wrap(err) }

// wrap turns an evaluation error into an *Error with the position of the
// innermost frame in a user file (or a config key for config_error), a
// short stack of user frames, and the full trace for --show-trace.
func (ev *evaluator) wrap(err error) error {
	var cfgErr *Error
	var evalErr *starlark.EvalError
	if !errors.As(err, &evalErr) {
		if errors.As(err, &cfgErr) {
			return cfgErr
		}
		return &Error{Msg: err.Error()}
	}
	out := &Error{Msg: evalErr.Msg, Trace: evalErr.Backtrace()}
	if errors.As(err, &cfgErr) {
		out.Pos, out.Msg = cfgErr.Pos, cfgErr.Msg
	}
	var frames []string
	for i := len(evalErr.CallStack) - 1; i >= 0; i-- {
		fr := evalErr.CallStack[i]
		file := fr.Pos.Filename()
		if file == "<builtin>" || strings.HasPrefix(file, stdlibPrefix) {
			continue
		}
		if out.Pos.File == "" {
			out.Pos = Pos{File: file, Line: int(fr.Pos.Line), Col: int(fr.Pos.Col)}
		}
		frames = append(frames, fmt.Sprintf("  %s: in %s", fr.Pos, fr.Name))
	}
	if out.Pos.File == "" && len(evalErr.CallStack) > 0 {
		fr := evalErr.CallStack[len(evalErr.CallStack)-1]
		if fr.Pos.Filename() == "<builtin>" && len(evalErr.CallStack) > 1 {
			fr = evalErr.CallStack[len(evalErr.CallStack)-2]
		}
		out.Pos = Pos{File: fr.Pos.Filename(), Line: int(fr.Pos.Line), Col: int(fr.Pos.Col)}
	}
	if len(frames) > 1 || (len(frames) == 1 && cfgErr != nil) {
		out.Stack = "Starlark stack, innermost first:\n" + strings.Join(frames, "\n")
	}
	out.Msg = strings.TrimPrefix(out.Msg, "fail: ")
	return out
}

// EvalExpr evaluates a Starlark expression in the config's environment.
func (s *System) EvalExpr(expr string) (starlark.Value, error) {
	e, err := fileOptions.ParseExpr("<expr>", expr, 0)
	if err != nil {
		return nil, s.ev.wrap(err)
	}
	var v starlark.Value
	err = s.ev.run(func() (err error) {
		v, err = starlark.EvalExprOptions(fileOptions, s.ev.thread, LowerExpr(e), s.Globals())
		return err
	})
	if err != nil {
		return nil, s.ev.wrap(err)
	}
	return v, nil
}

// NewThread returns a fresh thread in this evaluation, with its own step
// budget: the repl runs each input on one, so a long session never runs
// out of steps, while derivations made there still see the evaluation's.
func (s *System) NewThread() *starlark.Thread {
	t := s.ev.newThread("nexis repl", s.ev.sys)
	t.Print = s.ev.thread.Print
	return t
}

// withoutPackages is data without its [[packages]], sharing the rest.
func withoutPackages(data map[string]any) map[string]any {
	if _, ok := data["packages"]; !ok {
		return data
	}
	rest := maps.Clone(data)
	delete(rest, "packages")
	return rest
}

// convertEach sets elems[i] to ToStarlark(x[i]): on every core for a
// long array ([[packages]] of a large config), the values being
// independent and frozen.
func convertEach(elems []starlark.Value, x []any) {
	workers := min(runtime.GOMAXPROCS(0), len(x)/parallelArray)
	if workers < 2 {
		for i, e := range x {
			elems[i] = ToStarlark(e)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(x)/workers, (w+1)*len(x)/workers
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				elems[i] = ToStarlark(x[i])
			}
		})
	}
	wg.Wait()
}

// parallelArray is the length from which an array is converted by more
// than one goroutine per this many elements.
const parallelArray = 512

// ToStarlark converts a TOML value to frozen Starlark values: tables
// become dicts with sorted keys, arrays lists.
func ToStarlark(v any) starlark.Value {
	var out starlark.Value
	switch x := v.(type) {
	case map[string]any:
		d := starlark.NewDict(len(x))
		// A [[packages]] entry's few keys are sorted without a heap
		// slice.
		var buf [16]string
		keys := buf[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			_ = d.SetKey(starlark.String(k), ToStarlark(x[k]))
		}
		out = d
	case []any:
		elems := make([]starlark.Value, len(x))
		convertEach(elems, x)
		out = starlark.NewList(elems)
	case string:
		out = starlark.String(x)
	case int64:
		out = starlark.MakeInt64(x)
	case float64:
		out = starlark.Float(x)
	case bool:
		out = starlark.Bool(x)
	default:
		out = starlark.None
	}
	out.Freeze()
	return out
}

// BuiltinDocs are the docstrings of every Go builtin a module sees:
// builtins.Docs and the evaluator's own.
func BuiltinDocs() map[string]string {
	d := map[string]string{
		"config_error": `config_error(key, message)

Stops the evaluation with message, at the position where the config
writes key ("users.alice.shell"): how a module says a value is wrong.`,
		"declared_in": `declared_in(key)

The config file that writes key, for file names relative to it.`,
		"default": `default(key)

The default the schema declares for key ("system.locale.lang",
"users.<name>.files.<path>.mode"): the stdlib's one source of defaults.
` + "`nexis option KEY`" + ` shows it.`,
		"nexis_command": `nexis_command(verb, *args)

The command line ` + "`nexis VERB ARGS...`" + ` as the user must type it to act on
the system being evaluated (with its --root, --state and -c): what an
error message suggests.`,
		"target_system": `target_system

The platform the evaluation is for ("x86_64-linux"; --system).`,
		"build_settings": `build_settings

What the builders read of [nexis]: {"stdenv": ..., "sandbox_paths": [...]}.`,
	}
	for k, v := range builtins.Docs {
		d[k] = v
	}
	return d
}
