package lang

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/internal/suggest"
)

// Derivation is what the attribute attr names: a package of the config
// by its name, else a Starlark expression that gives a derivation
// (nexis build -A).
func (s *System) Derivation(attr string) (*builtins.Derivation, error) {
	if v, ok, _ := s.Packages.Get(starlark.String(attr)); ok {
		return v.(*builtins.Derivation), nil
	}
	v, err := s.EvalExpr(attr)
	if err != nil {
		if m := suggest.Closest(attr, s.PackageNames()); m != "" {
			return nil, fmt.Errorf("%s: no such package (did you mean %s?)", attr, m)
		}
		return nil, fmt.Errorf("%s: not a package of the config, and as an expression: %w", attr, err)
	}
	d, ok := v.(*builtins.Derivation)
	if !ok {
		return nil, fmt.Errorf("%s gives a %s, want a derivation", attr, v.Type())
	}
	return d, nil
}

// PackageNames are the names of the config's packages: what -A
// completes and suggests.
func (s *System) PackageNames() []string {
	var names []string
	for _, k := range s.Packages.Keys() {
		if n, ok := starlark.AsString(k); ok {
			names = append(names, n)
		}
	}
	return names
}

// Roots are the system's derivation and every package's: what may
// rebuild a path of the system's closure.
func (s *System) Roots() []*builtins.Derivation {
	roots := []*builtins.Derivation{s.Drv}
	for _, item := range s.Packages.Items() {
		if d, ok := item[1].(*builtins.Derivation); ok {
			roots = append(roots, d)
		}
	}
	return roots
}

// EvalAndSave evaluates the config at configPath, recording what it
// reads and prints, and keeps the result for LookupEval (SaveEval).
// What the evaluation prints still goes to opts.Print.
func EvalAndSave(configPath string, opts Options) (*System, error) {
	var prints []string
	show := opts.Print
	opts.Print = func(msg string) {
		prints = append(prints, msg)
		show(msg)
	}
	opts.Inputs = &Inputs{}
	sys, err := Eval(configPath, opts)
	if err != nil {
		return nil, err
	}
	SaveEval(configPath, opts, sys, prints)
	return sys, nil
}
