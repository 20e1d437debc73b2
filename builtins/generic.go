package builtins

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"go.starlark.net/starlark"
)

// The generic builder of @stdlib//build.star, made in Go: every
// [[packages]] entry is one of its derivations, and a config of 100,000
// packages made them in Starlark at some 700 steps and 250 allocations
// each, the largest part of evaluating it. build.star still says what
// the builder does (its shell script, the stdenv, the tool layers) and
// keeps the functions modules call (build_package, stdenv_derivation);
// their bodies are the methods here, and a value of this type holds
// once what every package shares.

// The variables the generic builder sets, which the builder script reads:
// an env of the user's may not set them (reservedEnv).
const (
	envBuildSystem    = "buildSystem"
	envBuildFlags     = "buildFlags"
	envBuildInputs    = "buildInputs"
	envPatches        = "patches"
	envLibc           = "libc"
	envSourceSubdir   = "sourceSubdir"
	envPreBuild       = "preBuildScript"
	envPostBuild      = "postBuildScript"
	envBuildScript    = "buildScript"
	envLayers         = "NEXIS_FHS_LAYERS"
	envSandboxPaths   = "NEXIS_SANDBOX_PATHS"
	sandboxShell      = "/bin/sh"
	derivationBuiltin = "derivation"
)

var (
	// buildSystems are the values of build_system.
	buildSystems = []string{"make", "configure", "cmake", "meson", "custom", "none"}
	// makeSystems run make themselves: make_flags, build_targets,
	// install_flags and install_targets apply to these only.
	makeSystems = []string{"make", "configure"}
	// systemTools are the tool layers a build system needs besides the
	// core stdenv.
	systemTools = map[string][]string{"cmake": {"cmake"}, "meson": {"meson"}}
	// makeKeys are the arguments that reach make, in the order they are
	// checked and set, with the variables they set.
	makeKeys = [...]struct{ arg, env string }{
		{"make_flags", "makeFlags"},
		{"build_targets", "buildTargets"},
		{"install_flags", "installFlags"},
		{"install_targets", "installTargets"},
	}
	// reservedEnv is every variable the generic builder (or realise)
	// reads.
	reservedEnv = []string{
		EnvSrc, "out", envPatches, envBuildSystem, envBuildFlags, envBuildInputs,
		"makeFlags", "buildTargets", "installFlags", "installTargets",
		envSourceSubdir, envPreBuild, envPostBuild, envBuildScript, envLibc,
		envLayers, envSandboxPaths,
	}
)

// GenericBuilder is the value generic_builder(...) returns: the stdenv a
// build runs in, its tool layers, the libc path and the builder script,
// with the methods build (build_package), sandboxed
// (stdenv_derivation) and package (packages.star's common case).
type GenericBuilder struct {
	stdenv    *Derivation // nil when there is no stdenv for this system
	stdenvErr string      // why, then
	// stdenvLayer is (stdenv,), the layers of a build that names no
	// tools: one tuple serves them all, its capacity its length so that
	// adding a tool copies it.
	stdenvLayer starlark.Tuple
	tools       *starlark.Dict
	toolNames   string // for errors: the layers there are
	sandbox     starlark.Value
	hasPaths    bool // sandbox holds paths
	libc        starlark.Value
	builder     starlark.Value
	attrs       starlark.StringDict
	// empty is the frozen empty list and dict every entry that leaves a
	// key out shares, and passthru its passthru when it gives neither
	// runtime_dirs nor env.
	emptyList *starlark.List
	emptyDict *starlark.Dict
	passthru  *starlark.Dict
}

var _ starlark.HasAttrs = (*GenericBuilder)(nil)

func (g *GenericBuilder) String() string        { return "<generic_builder>" }
func (g *GenericBuilder) Type() string          { return "generic_builder" }
func (g *GenericBuilder) Freeze()               {}
func (g *GenericBuilder) Truth() starlark.Bool  { return starlark.True }
func (g *GenericBuilder) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: generic_builder") }
func (g *GenericBuilder) AttrNames() []string   { return g.attrs.Keys() }

func (g *GenericBuilder) Attr(name string) (starlark.Value, error) { return g.attrs[name], nil }

func frozenStrings(ss []string) *starlark.List {
	l := starlark.NewList(nil)
	for _, s := range ss {
		_ = l.Append(starlark.String(s))
	}
	l.Freeze()
	return l
}

// genericBuilder is generic_builder(stdenv, tools, sandbox_paths,
// stdenv_error, libc_script, builder).
func genericBuilder(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	var (
		stdenv, builder  starlark.Value
		tools            *starlark.Dict
		sandbox          *starlark.List
		stdenvErr, libcS string
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "stdenv", &stdenv, "tools", &tools,
		"sandbox_paths", &sandbox, "stdenv_error", &stdenvErr, "libc_script", &libcS, "builder", &builder); err != nil {
		return nil, err
	}
	g := &GenericBuilder{stdenvErr: stdenvErr, tools: tools, sandbox: sandbox, hasPaths: sandbox.Len() > 0, builder: builder, libc: starlark.None}
	switch s := stdenv.(type) {
	case *Derivation:
		g.stdenv = s
		g.stdenvLayer = starlark.Tuple{s}[:1:1]
	case starlark.NoneType:
	default:
		return nil, fmt.Errorf("%s: stdenv: got %s, want a derivation or None", b.Name(), stdenv.Type())
	}
	names := make([]string, 0, tools.Len())
	for k, v := range tools.Entries() {
		s, ok := starlark.AsString(k)
		if _, isDrv := v.(*Derivation); !ok || !isDrv {
			return nil, fmt.Errorf("%s: tools: want names of tool layers to their derivations", b.Name())
		}
		names = append(names, s)
	}
	slices.Sort(names)
	g.toolNames = strings.Join(names, ", ")
	if g.toolNames == "" {
		g.toolNames = "none"
	}
	tools.Freeze()
	sandbox.Freeze()
	g.emptyList = starlark.NewList(nil)
	g.emptyList.Freeze()
	g.emptyDict = starlark.NewDict(0)
	g.emptyDict.Freeze()
	g.passthru = starlark.NewDict(2)
	_ = g.passthru.SetKey(starlark.String("runtime_dirs"), g.emptyList)
	_ = g.passthru.SetKey(starlark.String("runtime_env"), g.emptyDict)
	g.passthru.Freeze()
	if g.stdenv != nil {
		// The C runtime every build links against, from the stdenv.
		libc, err := g.sandboxed(ctx, "libc", "stdenv", []starlark.Value{starlark.String("-e"), starlark.String("-c"), starlark.String(libcS)},
			nil, nil, nil, nil, 0)
		if err != nil {
			return nil, err
		}
		g.libc = libc
	}
	method := func(name string, fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, fn).BindReceiver(g)
	}
	g.attrs = starlark.StringDict{
		"libc":                g.libc,
		"build":               method("build", g.buildFn),
		"sandboxed":           method("sandboxed", g.sandboxedFn),
		"package":             method("package", g.packageFn),
		"check_source_subdir": starlark.NewBuiltin("check_source_subdir", checkSourceSubdirFn),
		"build_systems":       frozenStrings(buildSystems),
		"make_systems":        frozenStrings(makeSystems),
		"reserved_env":        frozenStrings(reservedEnv),
	}
	return g, nil
}

// sandboxedFn is sandboxed(name, version, args, env, inputs, tools,
// passthru, timeout): stdenv_derivation's body.
func (g *GenericBuilder) sandboxedFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(ctx.Limits, args, kwargs); err != nil {
		return nil, fmt.Errorf("%s: %w", derivationBuiltin, err)
	}
	var (
		name, version, argv, env, inputs starlark.Value
		tools, passthru, timeout         starlark.Value
	)
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 8, &name, &version, &argv, &env, &inputs, &tools, &passthru, &timeout); err != nil {
		return nil, err
	}
	d, ok := env.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("dict(%s): want a dict", env.Type())
	}
	// Room for the two variables sandboxed sets.
	items := make([]envItem, 0, d.Len()+2)
	for k, v := range d.Entries() {
		items = append(items, envItem{k, v})
	}
	argList, err := elements(argv)
	if err != nil {
		return nil, err
	}
	inList, err := elements(inputs)
	if err != nil {
		return nil, err
	}
	toolList, err := elements(tools)
	if err != nil {
		return nil, err
	}
	n, v, p, t, err := derivationArgs(name, version, passthru, timeout)
	if err != nil {
		return nil, err
	}
	return g.sandboxed(ctx, n, v, argList, items, inList, toolList, p, t)
}

// derivationArgs checks the arguments derivation() unpacks by type.
func derivationArgs(name, version, passthru, timeout starlark.Value) (string, string, *starlark.Dict, int, error) {
	n, ok := starlark.AsString(name)
	if !ok {
		return "", "", nil, 0, fmt.Errorf("%s: for parameter name: got %s, want string", derivationBuiltin, name.Type())
	}
	v, ok := starlark.AsString(version)
	if !ok {
		return "", "", nil, 0, fmt.Errorf("%s: for parameter version: got %s, want string", derivationBuiltin, version.Type())
	}
	p, ok := passthru.(*starlark.Dict)
	if !ok {
		return "", "", nil, 0, fmt.Errorf("%s: for parameter passthru: got %s, want dict", derivationBuiltin, passthru.Type())
	}
	var t int
	if err := starlark.AsInt(timeout, &t); err != nil {
		return "", "", nil, 0, fmt.Errorf("%s: for parameter timeout: %v", derivationBuiltin, err)
	}
	return n, v, p, t, nil
}

// elements are the elements of an iterable, as list(v) has them.
func elements(v starlark.Value) ([]starlark.Value, error) {
	switch x := v.(type) {
	case *starlark.List:
		out := make([]starlark.Value, x.Len())
		for i := range out {
			out[i] = x.Index(i)
		}
		return out, nil
	case starlark.Tuple:
		return x, nil
	}
	it, ok := v.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("got %s, want iterable", v.Type())
	}
	iter := it.Iterate()
	defer iter.Done()
	var out []starlark.Value
	var x starlark.Value
	for iter.Next(&x) {
		out = append(out, x)
	}
	return out, nil
}

// sandboxed makes a derivation built by `/bin/sh args...` in the
// stdenv's sandbox, with the stdenv's tree and the named tool layers
// merged at /usr (realise/sandbox reads NEXIS_FHS_LAYERS).
func (g *GenericBuilder) sandboxed(ctx *Context, name, version string, args []starlark.Value, env []envItem, inputs, tools []starlark.Value, passthru *starlark.Dict, timeout int) (*Derivation, error) {
	if g.stdenv == nil {
		return nil, fmt.Errorf("%s", g.stdenvErr)
	}
	layers := g.stdenvLayer
	for _, t := range tools {
		v, found, err := g.tools.Get(t)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("tool %s: the stdenv has no such layer (it has: %s)", t, g.toolNames)
		}
		layer := v.(*Derivation)
		if !slices.ContainsFunc(layers, func(l starlark.Value) bool { return l.(*Derivation).id == layer.id }) {
			layers = append(layers, layer)
		}
	}
	env = setEnv(env, envLayers, layers)
	if g.hasPaths {
		env = setEnv(env, envSandboxPaths, g.sandbox)
	}
	all := make(starlark.Tuple, 0, len(inputs)+len(layers))
	all = append(append(all, inputs...), layers...)
	if passthru == nil {
		passthru = emptyPassthru
	}
	return newDerivation(ctx, derivationBuiltin, name, version, sandboxShell, args, env, nil, all, passthru, timeout)
}

// setEnv sets k in env as a Starlark dict would: in place when it is
// there, else last.
func setEnv(env []envItem, k string, v starlark.Value) []envItem {
	for i, e := range env {
		if s, ok := e.k.(starlark.String); ok && string(s) == k {
			env[i].v = v
			return env
		}
	}
	return append(env, envItem{starlark.String(k), v})
}

// buildArgs are build_package's arguments.
type buildArgs struct {
	name, version, src, buildSystem, buildFlags, deps, patches          starlark.Value
	preBuild, postBuild, buildScript, env, passthru, timeout, tools     starlark.Value
	makeFlags, buildTargets, installFlags, installTargets, sourceSubdir starlark.Value
}

// buildFn is build(name, version, src, build_system, build_flags, deps,
// patches, pre_build, post_build, build_script, env, passthru, timeout,
// tools, make_flags, build_targets, install_flags, install_targets,
// source_subdir): build_package's body.
func (g *GenericBuilder) buildFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(ctx.Limits, args, kwargs); err != nil {
		return nil, fmt.Errorf("%s: %w", derivationBuiltin, err)
	}
	var a buildArgs
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 19,
		&a.name, &a.version, &a.src, &a.buildSystem, &a.buildFlags, &a.deps, &a.patches,
		&a.preBuild, &a.postBuild, &a.buildScript, &a.env, &a.passthru, &a.timeout, &a.tools,
		&a.makeFlags, &a.buildTargets, &a.installFlags, &a.installTargets, &a.sourceSubdir); err != nil {
		return nil, err
	}
	return g.build(ctx, &a)
}

func isNone(v starlark.Value) bool { return v == starlark.None }

// build makes the derivation of the generic builder: the builder script
// run by sh in the stdenv's sandbox, told what to do by its env.
func (g *GenericBuilder) build(ctx *Context, a *buildArgs) (*Derivation, error) {
	bs, _ := starlark.AsString(a.buildSystem)
	if _, isStr := a.buildSystem.(starlark.String); !isStr || !slices.Contains(buildSystems, bs) {
		return nil, fmt.Errorf("build_system %s: want one of %s", a.buildSystem, strings.Join(buildSystems, ", "))
	}
	if bs == "custom" && isNone(a.buildScript) {
		return nil, fmt.Errorf("build_system \"custom\" needs a build_script")
	}
	makeVals := [...]starlark.Value{a.makeFlags, a.buildTargets, a.installFlags, a.installTargets}
	if !slices.Contains(makeSystems, bs) {
		for i, v := range makeVals {
			if v.Truth() {
				return nil, fmt.Errorf("%s: only make-based builds (build_system %s) run make; this one is %s",
					makeKeys[i].arg, strings.Join(makeSystems, " or "), a.buildSystem)
			}
		}
	}
	if a.sourceSubdir.Truth() {
		d, ok := a.sourceSubdir.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("%s has no .startswith field or method", a.sourceSubdir.Type())
		}
		if msg := CheckSourceSubdir(string(d)); msg != "" {
			return nil, fmt.Errorf("source_subdir %s", msg)
		}
	}
	if g.stdenv == nil {
		return nil, fmt.Errorf("%s", g.stdenvErr)
	}
	flags, err := shellWords(a.buildFlags)
	if err != nil {
		return nil, err
	}
	env := make([]envItem, 0, 16)
	env = append(env,
		envItem{starlark.String(envBuildSystem), a.buildSystem},
		envItem{starlark.String(envBuildFlags), flags},
		envItem{starlark.String(envBuildInputs), a.deps},
		envItem{starlark.String(envPatches), a.patches},
		envItem{starlark.String(envLibc), g.libc},
	)
	for i, v := range makeVals {
		if v.Truth() {
			w, err := shellWords(v)
			if err != nil {
				return nil, err
			}
			env = append(env, envItem{starlark.String(makeKeys[i].env), w})
		}
	}
	if a.sourceSubdir.Truth() {
		env = append(env, envItem{starlark.String(envSourceSubdir), a.sourceSubdir})
	}
	for _, o := range [...]struct {
		k string
		v starlark.Value
	}{{EnvSrc, a.src}, {envPreBuild, a.preBuild}, {envPostBuild, a.postBuild}, {envBuildScript, a.buildScript}} {
		if !isNone(o.v) {
			env = append(env, envItem{starlark.String(o.k), o.v})
		}
	}
	user, ok := a.env.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("%s has no .items field or method", a.env.Type())
	}
	for _, kv := range user.Items() {
		k, v := kv[0], kv[1]
		if s, ok := k.(starlark.String); ok && slices.Contains(reservedEnv, string(s)) {
			return nil, fmt.Errorf("env %s is set by the builder; pick another name", k)
		}
		// No two keys of a dict are equal, and none of the user's is
		// one set above.
		env = append(env, envItem{k, v})
	}
	var tools []starlark.Value
	for _, t := range systemTools[bs] {
		tools = append(tools, starlark.String(t))
	}
	given, err := elements(a.tools)
	if err != nil {
		return nil, err
	}
	for _, t := range given {
		if !slices.ContainsFunc(tools, func(x starlark.Value) bool { eq, _ := starlark.Equal(x, t); return eq }) {
			tools = append(tools, t)
		}
	}
	inputs, err := elements(a.deps)
	if err != nil {
		return nil, err
	}
	name, version, passthru, timeout, err := derivationArgs(a.name, a.version, a.passthru, a.timeout)
	if err != nil {
		return nil, err
	}
	return g.sandboxed(ctx, name, version, []starlark.Value{starlark.String("-e"), g.builder}, env, inputs, tools, passthru, timeout)
}

// CheckSourceSubdir says what is wrong with d as a source_subdir, or "".
func CheckSourceSubdir(d string) string {
	if strings.HasPrefix(d, "/") || strings.ContainsAny(d, "\n\x00") {
		return fmt.Sprintf("%s: want a directory relative to the top of the source, such as \"expat\"", starlark.String(d))
	}
	for p := range strings.SplitSeq(d, "/") {
		if p == "" || p == "." || p == ".." {
			return fmt.Sprintf("%s: want a clean relative path without \".\", \"..\" or empty parts", starlark.String(d))
		}
	}
	return ""
}

func checkSourceSubdirFn(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var d string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &d); err != nil {
		return nil, err
	}
	return starlark.String(CheckSourceSubdir(d)), nil
}

// shellWords is " ".join([shell_quote(w) for w in words]): each word
// quoted for sh, so the builder's eval gives it back intact.
func shellWords(words starlark.Value) (starlark.String, error) {
	list, err := elements(words)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, w := range list {
		s, ok := w.(starlark.String)
		if !ok {
			return "", fmt.Errorf("%s has no .replace field or method", w.Type())
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(string(s), "'", `'\''`))
		b.WriteByte('\'')
	}
	return starlark.String(b.String()), nil
}

// packageFn is package(entry, deps, pin, timeout): the derivation of a
// [[packages]] entry (packages.star's package() has the arguments'
// meaning) when it is of the common kind, the one a config has by the
// thousand: a source fetched by URL and hash, a build system with its
// flags, dependencies, an env, and nothing else. It returns None for
// any other entry, and for one that is wrong in any way: package()
// then does what it always does, and says what is wrong, where.
func (g *GenericBuilder) packageFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	var entry, deps, pin *starlark.Dict
	var timeout starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 4, &entry, &deps, &pin, &timeout); err != nil {
		return nil, err
	}
	items := make([]EntryItem, 0, entry.Len())
	for _, kv := range entry.Items() {
		// A key that is not a string is no key Common knows.
		key, _ := starlark.AsString(kv[0])
		items = append(items, EntryItem{Key: key, Value: kv[1]})
	}
	pinned := func(k string) starlark.Value {
		v, _, _ := pin.Get(starlark.String(k))
		return v
	}
	p := EntryPin{Locked: pinned("locked"), Version: pinned("version"), Git: pinned("git"), SourceHash: pinned("source_hash")}
	if d := g.Common(ctx, items, deps, p, timeout); d != nil {
		return d, nil
	}
	return starlark.None, nil
}

// An EntryItem is a key of a [[packages]] entry and its value: Value,
// or the string Str when Value is nil (most of an entry's values are
// strings, and a string made a Starlark value is an allocation).
type EntryItem struct {
	Key   string
	Value starlark.Value
	Str   string
}

// value is the item's value as a Starlark value.
func (it EntryItem) value() starlark.Value {
	if it.Value == nil {
		return starlark.String(it.Str)
	}
	return it.Value
}

// str is the item's value, if it is a string.
func (it EntryItem) str() (string, bool) {
	if it.Value == nil {
		return it.Str, true
	}
	s, ok := it.Value.(starlark.String)
	return string(s), ok
}

// Deps are a package's dependencies by name, as package() is given
// them: a *starlark.Dict, or what stands for one without being made.
type Deps interface {
	Len() int
	Get(name starlark.Value) (v starlark.Value, found bool, err error)
}

// EntryPin is what Common reads of an entry's pin (packages.star's
// package() has its meaning): nil for what the pin lacks.
type EntryPin struct {
	Locked, Version, Git, SourceHash starlark.Value
}

// noCommon makes package() take every entry the long way: the tests
// that compare the two ways set it.
var noCommon atomic.Bool

// Common is package()'s derivation of an entry of the common kind (see
// packageFn), given its keys in any order, or nil. The evaluator calls
// it for every entry without a module before it calls package(), and so
// makes most packages without their entry as a Starlark dict or a
// Starlark call.
func (g *GenericBuilder) Common(ctx *Context, entry []EntryItem, deps Deps, pin EntryPin, timeout starlark.Value) *Derivation {
	if noCommon.Load() {
		return nil
	}
	a := buildArgs{
		src: starlark.None, timeout: timeout, env: g.emptyDict,
		buildFlags: g.emptyList, patches: g.emptyList, tools: g.emptyList,
		makeFlags: g.emptyList, buildTargets: g.emptyList, installFlags: g.emptyList, installTargets: g.emptyList,
		preBuild: starlark.None, postBuild: starlark.None, buildScript: starlark.None,
		sourceSubdir: starlark.String(""),
	}
	var name, version, source string
	var buildSystem, runtimeDirs, dependencies starlark.Value
	// The values package() hands to builtins are made of the entry's
	// and of paths: an entry far from the limits (Measure) keeps them
	// all within. It nests three deep at most, or is not common.
	size := int64(deps.Len()+20) * 128
	for _, it := range entry {
		key := it.Key
		var n int64
		if it.Value == nil {
			n = stringSize(it.Str)
		} else {
			var ok bool
			if n, ok = flatSize(it.Value); !ok {
				return nil
			}
		}
		size += 5 * (n + int64(len(key)) + 4)
		switch key {
		case "name", "version", "source":
			s, ok := it.str()
			if !ok {
				return nil
			}
			switch key {
			case "name":
				name = s
			case "version":
				version = s
			default:
				source = s
			}
		case "hash", "rev", "fallback_to_source", "prebuilt_hash":
			// Read through pin, or for a prebuilt, which is not common.
		default:
			switch v := it.value(); key {
			case "build_system":
				buildSystem = v
			case "build_flags":
				a.buildFlags = v
			case "dependencies":
				dependencies = v
			case "env":
				a.env = v
			case "runtime_dirs":
				runtimeDirs = v
			case "timeout":
				a.timeout = v
			case "tools":
				a.tools = v
			case "make_flags":
				a.makeFlags = v
			case "build_targets":
				a.buildTargets = v
			case "install_flags":
				a.installFlags = v
			case "install_targets":
				a.installTargets = v
			case "source_subdir":
				a.sourceSubdir = v
			case "patches", "pre_build_script", "post_build_script", "build_script", "context_file", "prebuilt":
				// Files of the config, or a prebuilt archive.
				if v.Truth() {
					return nil
				}
			default:
				return nil
			}
		}
	}
	if name == "" || size > ctx.Limits.MaxBytes || ctx.Limits.MaxDepth < 5 {
		return nil
	}
	if version == "latest" && pin.Locked != starlark.True {
		return nil
	}
	a.name, a.version = starlark.String(name), pin.Version
	if source != "" {
		src := g.fetch(ctx, name, source, pin.Git, pin.SourceHash)
		if src == nil {
			return nil
		}
		a.src = src
	}
	if buildSystem == nil {
		buildSystem = starlark.String("none")
		if a.src != starlark.None {
			buildSystem = starlark.String("make")
		}
	}
	bs, ok := buildSystem.(starlark.String)
	if !ok || !slices.Contains(buildSystems, string(bs)) || bs == "custom" {
		return nil
	}
	a.buildSystem = bs
	if !slices.Contains(makeSystems, string(bs)) {
		for _, v := range [...]starlark.Value{a.makeFlags, a.buildTargets, a.installFlags, a.installTargets} {
			if v.Truth() {
				return nil
			}
		}
	}
	if a.sourceSubdir.Truth() {
		d, ok := a.sourceSubdir.(starlark.String)
		if !ok || a.src == starlark.None || CheckSourceSubdir(string(d)) != "" {
			return nil
		}
	}
	env, ok := a.env.(*starlark.Dict)
	if !ok {
		return nil
	}
	for _, kv := range env.Items() {
		k, v := kv[0], kv[1]
		name, ok := k.(starlark.String)
		val, isStr := v.(starlark.String)
		if !ok || !isStr || !envName(string(name)) || slices.Contains(reservedEnv, string(name)) || strings.Contains(string(val), "\x00") {
			return nil
		}
	}
	passthru := g.passthru
	if runtimeDirs != nil || env != g.emptyDict {
		if runtimeDirs == nil {
			runtimeDirs = g.emptyList
		}
		dirs, ok := runtimeDirs.(*starlark.List)
		if !ok {
			return nil
		}
		for i := range dirs.Len() {
			d := dirs.Index(i)
			// An absolute one is checked by packages.star, and made by
			// activation.
			if s, ok := d.(starlark.String); !ok || strings.HasPrefix(string(s), "/") {
				return nil
			}
		}
		passthru = starlark.NewDict(2)
		_ = passthru.SetKey(starlark.String("runtime_dirs"), runtimeDirs)
		_ = passthru.SetKey(starlark.String("runtime_env"), env)
	}
	a.passthru = passthru
	if dependencies != nil {
		names, ok := dependencies.(*starlark.List)
		if !ok {
			return nil
		}
		list := make([]starlark.Value, 0, names.Len())
		for i := range names.Len() {
			d, found, err := deps.Get(names.Index(i))
			if !found || err != nil {
				return nil
			}
			list = append(list, d)
		}
		a.deps = starlark.NewList(list)
	} else {
		a.deps = starlark.NewList(nil)
	}
	d, err := g.build(ctx, &a)
	if err != nil {
		return nil
	}
	return d
}

// fetch is the source of an entry fetched by URL, or nil when it is
// not (a local path or a git repository) or not as packages.star
// accepts it.
func (g *GenericBuilder) fetch(ctx *Context, name, source string, git, hash starlark.Value) *Derivation {
	h, ok := hash.(starlark.String)
	if !ok || !strings.Contains(source, "://") || git != starlark.False {
		return nil
	}
	algo, digest, found := strings.Cut(string(h), ":")
	if !found || len(digest) != 64 || (algo != "sha256" && algo != "blake3") {
		return nil
	}
	var sha, b3 string
	if algo == "sha256" {
		sha = digest
	} else {
		b3 = digest
	}
	// A zip is unpacked when fetched (see packages.star).
	file, _, _ := strings.Cut(source, "?")
	file, _, _ = strings.Cut(file, "#")
	unpack := strings.HasSuffix(strings.ToLower(file), ".zip")
	d, err := newFetchURL(ctx, "fetch_url", source, sha, b3, unpack, name+"-src", nil)
	if err != nil {
		return nil
	}
	return d
}

// envName says whether packages.star takes k as the name of a variable:
// letters, digits and _, not starting with a digit.
func envName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// flatSize is the printed size of a value of an entry as Measure has
// it, if it is a string, an int, a bool, or a list or dict of strings.
func flatSize(v starlark.Value) (int64, bool) {
	switch x := v.(type) {
	case starlark.String, starlark.Int, starlark.Bool:
		return leafSize(x), true
	case *starlark.List:
		n := int64(2)
		for i := range x.Len() {
			s, ok := x.Index(i).(starlark.String)
			if !ok {
				return 0, false
			}
			n += int64(len(s)) + 4
		}
		return n, true
	case *starlark.Dict:
		n := int64(2)
		for _, kv := range x.Items() {
			k, ok1 := kv[0].(starlark.String)
			e, ok2 := kv[1].(starlark.String)
			if !ok1 || !ok2 {
				return 0, false
			}
			n += int64(len(k)+len(e)) + 8
		}
		return n, true
	}
	return 0, false
}
