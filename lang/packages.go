package lang

import (
	"fmt"
	"path"
	"strings"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
)

// packages turns [[packages]] into derivations, dependencies first.
// Ordering and cycle detection live here rather than in Starlark, which
// forbids recursion.
func (ev *evaluator) packages(sys *System, lock *Lock, config *starlark.Dict) error {
	raw, _ := ev.cfg.Data["packages"].([]any)
	// The entries as Starlark values are those of config["packages"]:
	// one frozen copy of the config, shared.
	var values *starlark.List
	if v, ok, _ := config.Get(starlark.String("packages")); ok {
		values, _ = v.(*starlark.List)
	}
	entries := make([]map[string]any, len(raw))
	byName := map[string]int{}
	for i, r := range raw {
		e := r.(map[string]any)
		entries[i] = e
		key := KeyPath("packages", index(i))
		name, _ := e["name"].(string)
		if name == "" {
			return ev.cfg.Errorf(key, "a package needs a name")
		}
		if j, dup := byName[name]; dup {
			return ev.cfg.Errorf(key+".name", "package %q is declared twice (first at %s)", name, ev.cfg.Pos(KeyPath("packages", index(j))))
		}
		byName[name] = i
	}
	deps := make([][]int, len(entries))
	for i, e := range entries {
		list, _ := e["dependencies"].([]any)
		for j, d := range list {
			name := d.(string)
			k, ok := byName[name]
			if !ok {
				msg := fmt.Sprintf("unknown package %q", name)
				if m := closestName(name, byName); m != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", m)
				} else {
					msg += ": declare it in [[packages]]"
				}
				return ev.cfg.Errorf(KeyPath("packages", index(i), "dependencies", index(j)), "%s", msg)
			}
			deps[i] = append(deps[i], k)
		}
	}
	order, err := ev.topoOrder(entries, deps)
	if err != nil {
		return err
	}
	var std starlark.StringDict
	if len(entries) > 0 {
		if std, err = ev.load(stdlibPrefix + "packages.star"); err != nil {
			return err
		}
	}
	built := make([]*builtins.Derivation, len(entries))
	for _, i := range order {
		d, err := ev.onePackage(std, entries[i], values.Index(i), i, deps[i], built, lock)
		if err != nil {
			return err
		}
		built[i] = d
	}
	pkgs := starlark.NewDict(len(entries))
	for i, e := range entries {
		_ = pkgs.SetKey(starlark.String(e["name"].(string)), built[i])
	}
	pkgs.Freeze()
	sys.Packages = pkgs
	return nil
}

func (ev *evaluator) topoOrder(entries []map[string]any, deps [][]int) ([]int, error) {
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
			return ev.cfg.Errorf(KeyPath("packages", index(stack[len(stack)-1]), "dependencies"),
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

func (ev *evaluator) onePackage(std starlark.StringDict, e map[string]any, value starlark.Value, i int, depIdx []int, built []*builtins.Derivation, lock *Lock) (*builtins.Derivation, error) {
	key := KeyPath("packages", index(i))
	name := e["name"].(string)
	depDict := starlark.NewDict(len(depIdx))
	for _, d := range depIdx {
		_ = depDict.SetKey(starlark.String(built[d].Name), built[d])
	}
	depDict.Freeze()
	file := ev.cfg.FileOf(key)

	var v starlark.Value
	var err error
	var what string
	if modPath, ok := e["module"].(string); ok {
		modName := path.Clean(path.Join(path.Dir(file), modPath))
		what = modName + ": package()"
		mod, lerr := ev.load(modName)
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
		var kwargs []starlark.Tuple
		if args, ok := e["args"].(map[string]any); ok {
			for _, k := range sortedKeys(args) {
				kwargs = append(kwargs, starlark.Tuple{starlark.String(k), ToStarlark(args[k])})
			}
		}
		if hasParam(fn, "deps") {
			kwargs = append(kwargs, starlark.Tuple{starlark.String("deps"), depDict})
		}
		v, err = starlark.Call(ev.thread, fn, nil, kwargs)
	} else {
		what = "@stdlib//packages.star: package()"
		var locked starlark.Value = starlark.None
		if l, ok := lock.Packages[name]; ok {
			locked = ToStarlark(map[string]any{
				"version": l.Version, "tag": l.Tag, "rev": l.Rev, "source_hash": l.SourceHash,
				"prebuilt_url": l.PrebuiltURL, "prebuilt_hash": l.PrebuiltHash,
			})
		}
		v, err = ev.call(std, "@stdlib//packages.star", "package", nil, []starlark.Tuple{
			{starlark.String("entry"), value},
			{starlark.String("deps"), depDict},
			{starlark.String("key"), starlark.String(key)},
			{starlark.String("file"), starlark.String(file)},
			{starlark.String("lock"), locked},
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
