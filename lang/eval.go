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
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/builtins"
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
	System   string // target platform; "x86_64-linux" if empty
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
		opts.System = "x86_64-linux"
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
	Globals  starlark.StringDict // what -e expressions and the repl see

	ev *evaluator
}

// stdlibPrefix names embedded modules: load("@stdlib//packages.star", ...).
const stdlibPrefix = "@stdlib//"

var fileOptions = &syntax.FileOptions{Set: true, TopLevelControl: true, GlobalReassign: false}

type module struct {
	globals starlark.StringDict
	err     error
	done    bool
}

type evaluator struct {
	cfg     *Config
	opts    Options
	thread  *starlark.Thread
	ctx     *builtins.Context
	modules map[string]*module
	loading []string
	pre     starlark.StringDict
}

// Eval evaluates the config at configPath.
func Eval(configPath string, opts Options) (*System, error) {
	opts = withDefaults(opts)
	cfg, err := loadConfig(configPath, opts.Inputs, opts.MaxDepth)
	if err != nil {
		return nil, err
	}
	if err := cfg.Check(ConfigSchema); err != nil {
		return nil, err
	}
	lock, err := loadLock(cfg.dir, LockFile)
	if err != nil {
		return nil, err
	}
	ev := newEvaluator(cfg, opts)
	sys := &System{Config: cfg, Lock: lock, ev: ev}
	if err := ev.run(func() error { return ev.system(sys, lock) }); err != nil {
		return nil, ev.wrap(err)
	}
	sys.Globals = starlark.StringDict{"config": sys.Globals["config"], "packages": sys.Packages, "system": sys.Drv}
	for k, v := range ev.pre {
		sys.Globals[k] = v
	}
	return sys, nil
}

// system evaluates the packages and the system derivation into sys.
func (ev *evaluator) system(sys *System, lock *Lock) error {
	config := ToStarlark(ev.cfg.Data)
	sys.Globals = starlark.StringDict{"config": config}
	if err := ev.packages(sys, lock, config.(*starlark.Dict)); err != nil {
		return err
	}
	mod, err := ev.load(stdlibPrefix + "system.star")
	if err != nil {
		return err
	}
	v, err := ev.call(mod, "@stdlib//system.star", "system", nil,
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
	ev := &evaluator{cfg: cfg, opts: opts, modules: map[string]*module{}}
	ev.thread = &starlark.Thread{Name: "nexis eval", Load: ev.loadFromThread}
	if opts.Print != nil {
		ev.thread.Print = func(_ *starlark.Thread, msg string) { opts.Print(msg) }
	}
	limitSteps(ev.thread, opts.MaxSteps)
	ev.ctx = &builtins.Context{
		StoreDir: opts.StoreDir,
		System:   opts.System,
		Resolve:  ev.resolveFile,
		Local:    ev.localFile,
		ReadFile: func(f builtins.File) ([]byte, error) { return cfg.dir.readFile(f.Display) },
		TreeHash: func(f builtins.File) (treehash.Digest, error) { return cfg.dir.treeHash(f.Display) },
		Limits:   builtins.Limits{MaxDepth: opts.MaxDepth, MaxBytes: opts.MaxMemory},
	}
	ev.ctx.Attach(ev.thread)
	ev.pre = builtins.Predeclared()
	ev.pre["config_error"] = starlark.NewBuiltin("config_error", ev.configError)
	ev.pre["declared_in"] = starlark.NewBuiltin("declared_in", ev.declaredIn)
	ev.pre["try_call"] = builtins.Checks()["try_call"]
	ev.pre["target_system"] = starlark.String(opts.System)
	for k, v := range guardedBuiltins(ev.ctx.Limits) {
		ev.pre[k] = v
	}
	ev.pre["build_settings"] = buildSettings(cfg, opts)
	return ev
}

// buildSettings is what the stdlib's builders read of [nexis]: the
// stdenv (Options.Stdenv winning over the config) and sandbox_paths.
func buildSettings(cfg *Config, opts Options) starlark.Value {
	nexis, _ := cfg.Data["nexis"].(map[string]any)
	var stdenv any
	if v, ok := nexis["stdenv"]; ok {
		stdenv = v
	}
	if opts.Stdenv != nil {
		stdenv = opts.Stdenv
	}
	paths, _ := nexis["sandbox_paths"].([]any)
	if paths == nil {
		paths = []any{}
	}
	d := starlark.NewDict(2)
	if stdenv == nil {
		_ = d.SetKey(starlark.String("stdenv"), starlark.None)
	} else {
		_ = d.SetKey(starlark.String("stdenv"), ToStarlark(stdenv))
	}
	_ = d.SetKey(starlark.String("sandbox_paths"), ToStarlark(paths))
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

// declaredIn returns the display name of the config file that defines a
// key, so modules can resolve file names relative to it.
func (ev *evaluator) declaredIn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &key); err != nil {
		return nil, err
	}
	return starlark.String(ev.cfg.FileOf(key)), nil
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
	resolved, _, err := ev.cfg.dir.stat(display)
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
	return ev.load(target)
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

// load evaluates a module once per evaluation and reports load cycles
// with their chain.
func (ev *evaluator) load(name string) (starlark.StringDict, error) {
	if m, ok := ev.modules[name]; ok {
		if !m.done {
			i := indexOf(ev.loading, name)
			return nil, fmt.Errorf("load cycle: %s", strings.Join(append(ev.loading[i:], name), " → "))
		}
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
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("module %s does not exist", name)
			}
			return nil, err
		}
	}
	m := &module{}
	ev.modules[name] = m
	ev.loading = append(ev.loading, name)
	if prog, err := compileModule(name, src, ev.pre); err != nil {
		m.err = err
	} else {
		m.globals, m.err = prog.Init(ev.thread, ev.pre)
	}
	ev.loading = ev.loading[:len(ev.loading)-1]
	m.done = true
	if m.globals != nil && m.err == nil {
		// Freezing walks every value, recursively.
		for _, k := range m.globals.Keys() {
			if err := builtins.Measure(m.globals[k], ev.ctx.Limits); err != nil {
				m.err = fmt.Errorf("%s: global %s: %w", name, k, err)
			}
		}
	}
	if m.globals != nil && m.err == nil {
		m.globals.Freeze()
	}
	return m.globals, m.err
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return 0
}

// call calls function fn of a loaded module.
func (ev *evaluator) call(mod starlark.StringDict, modName, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	f, ok := mod[fn].(starlark.Callable)
	if !ok {
		return nil, &Error{Pos: Pos{File: modName}, Msg: fmt.Sprintf("%s defines no function %s()", modName, fn)}
	}
	return starlark.Call(ev.thread, f, args, kwargs)
}

// FormatError renders an evaluation error as nexis prints it: "error:",
// the position and message, then the stack of user frames (or, with
// trace, the whole Starlark backtrace).
func FormatError(err error, trace bool) string {
	var le *Error
	if !errors.As(err, &le) {
		return fmt.Sprintf("error: %v\n", err)
	}
	out := "error: " + le.Error() + "\n"
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
		v, err = starlark.EvalExprOptions(fileOptions, s.ev.thread, LowerExpr(e), s.Globals)
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
	t := &starlark.Thread{Name: "nexis repl", Load: s.ev.loadFromThread, Print: s.ev.thread.Print}
	limitSteps(t, s.ev.opts.MaxSteps)
	s.ev.ctx.Attach(t)
	return t
}

// ToStarlark converts a TOML value to frozen Starlark values: tables
// become dicts with sorted keys, arrays lists.
func ToStarlark(v any) starlark.Value {
	var out starlark.Value
	switch x := v.(type) {
	case map[string]any:
		d := starlark.NewDict(len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_ = d.SetKey(starlark.String(k), ToStarlark(x[k]))
		}
		out = d
	case []any:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			elems[i] = ToStarlark(e)
		}
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
