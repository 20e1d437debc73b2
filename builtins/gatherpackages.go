package builtins

import (
	"sync/atomic"
	"unsafe"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// The system derivation (stdlib/system.star) takes four things from each
// package: its manifest entry, its runtime env (the wrappers), its
// runtime_dirs (environment.star) and its context_file (selinux.star).
// At 10,000 packages those Starlark loops, the manifest's 10,000 dicts
// and their JSON were half of what a warm evaluation spent in system(),
// on one thread. gather_packages gathers all four in one Go loop and
// writes the manifest entries as JSON text, which json.encode splices;
// environment() and selinux() then loop over the few packages that
// have runtime_dirs or a context_file. A package system.star's loops
// could fail on (not a derivation, runtime_dirs not a list of strings)
// makes it return None, and system.star takes the Starlark way, which
// is the reference.

// noGatherPackages makes gather_packages return None: the tests compare
// the Starlark way with it.
var noGatherPackages atomic.Bool

// The passthru keys, as values: a string made one on each call allocates.
var (
	keyRuntimeDirs starlark.Value = starlark.String("runtime_dirs")
	keyRuntimeEnv  starlark.Value = starlark.String("runtime_env")
	keyContextFile starlark.Value = starlark.String("context_file")
)

// gatherPackages is gather_packages(packages).
func gatherPackages(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var packages *starlark.Dict
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &packages); err != nil {
		return nil, err
	}
	if noGatherPackages.Load() {
		return starlark.None, nil
	}
	items := packages.Items()
	wrappers := starlark.NewDict(0)
	withDirs := starlark.NewDict(0)
	withContext := starlark.NewDict(0)
	// The manifest's "packages" list as json.encode writes it (keys
	// sorted: name, path, runtime_dirs, version), and as Measure counts
	// the list of dicts system.star would build.
	text := make([]byte, 0, 2+len(items)*160)
	text = append(text, '[')
	list := measured{depth: 1, size: 2}
	// The generic builder gives every package without runtime_dirs and
	// env one passthru: its three values are looked up once.
	var (
		passthru            *starlark.Dict
		runtimeDirs, runEnv starlark.Value
		contextFile         starlark.Value
	)
	for i, kv := range items {
		name, ok := kv[0].(starlark.String)
		d, isDrv := kv[1].(*Derivation)
		if !ok || !isDrv || d.Passthru == nil || d.paths == nil {
			return starlark.None, nil
		}
		if d.Passthru != passthru {
			passthru = d.Passthru
			runtimeDirs, _, _ = passthru.Get(keyRuntimeDirs)
			runEnv, _, _ = passthru.Get(keyRuntimeEnv)
			contextFile, _, _ = passthru.Get(keyContextFile)
		}
		out := d.Out()
		var dirs []starlark.Value
		if v := runtimeDirs; v != nil && bool(v.Truth()) {
			switch x := v.(type) {
			case *starlark.List:
				dirs = make([]starlark.Value, x.Len())
				for j := range dirs {
					dirs[j] = x.Index(j)
				}
			case starlark.Tuple:
				dirs = x
			default:
				return starlark.None, nil
			}
			_ = withDirs.SetKey(name, d)
		}
		if runEnv != nil && bool(runEnv.Truth()) {
			_ = wrappers.SetKey(starlark.String(out), runEnv)
		}
		if contextFile != nil && contextFile != starlark.None {
			_ = withContext.SetKey(name, d)
		}

		if i > 0 {
			text = append(text, ',')
		}
		text = append(text, `{"name":`...)
		text = AppendJSONQuoted(text, string(name))
		text = append(text, `,"path":`...)
		text = AppendJSONQuoted(text, out)
		text = append(text, `,"runtime_dirs":[`...)
		dm := measured{depth: 1, size: 2}
		for j, e := range dirs {
			s, ok := e.(starlark.String)
			if !ok {
				return starlark.None, nil
			}
			if j > 0 {
				text = append(text, ',')
			}
			text = AppendJSONQuoted(text, string(s))
			dm = combine(dm, measured{size: stringSize(string(s))})
		}
		text = append(text, `],"version":`...)
		text = AppendJSONQuoted(text, d.Version)
		text = append(text, '}')

		// The dict's items in system.star's order.
		entry := measured{depth: 1, size: 2}
		for _, m := range [...]measured{
			{size: stringSize("name")}, {size: stringSize(string(name))},
			{size: stringSize("version")}, {size: stringSize(d.Version)},
			{size: stringSize("path")}, {size: stringSize(out)},
			{size: stringSize("runtime_dirs")}, dm,
		} {
			entry = combine(entry, m)
		}
		list = combine(list, entry)
	}
	text = append(text, ']')
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		// text is not written again: the string is its bytes.
		"manifest":      &JSONText{text: unsafe.String(&text[0], len(text)), n: len(items), m: list},
		"wrappers":      wrappers,
		"runtime_dirs":  withDirs,
		"context_files": withContext,
	}), nil
}
