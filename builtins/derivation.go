package builtins

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/store/contentaddr"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Fixed describes a fixed-output derivation: its output is known in
// advance by hash, so it may use the network and its path does not depend
// on how it is produced.
type Fixed struct {
	Algo   string `json:"algo"`
	Hash   string `json:"hash"`
	Unpack bool   `json:"unpack"`
}

// Derivation is a frozen build step. Every field is set by newDerivation
// and never changed afterwards.
type Derivation struct {
	Name     string
	Version  string
	System   string
	Store    string
	Builder  string
	Args     []string
	Env      []EnvVar      // sorted by name, each name once (EnvFromMap)
	Drvs     []*Derivation // input derivations, sorted by ID
	Srcs     []*Source     // input sources, sorted by path
	Outputs  []string
	Fixed    *Fixed
	Passthru *starlark.Dict // frozen; not part of the identity
	Timeout  int            // seconds, 0 for the default; not part of the identity

	id    string
	paths []string // store paths of Outputs, in order
}

// EnvVar is a variable of a derivation's environment. A derivation
// holds its variables in a slice sorted by name, the order the encoding
// writes them in: a map of them cost twice the bytes of the strings it
// pointed to, and a sort at every encoding.
type EnvVar struct{ Name, Value string }

// Getenv returns the value of the variable k, or "" if d does not set
// it.
func (d *Derivation) Getenv(k string) string {
	v, _ := d.LookupEnv(k)
	return v
}

// LookupEnv returns the value of the variable k and whether d sets it.
// A derivation has a few variables: a look at each beats a search.
func (d *Derivation) LookupEnv(k string) (string, bool) {
	for _, e := range d.Env {
		if e.Name == k {
			return e.Value, true
		}
	}
	return "", false
}

// EnvFromMap returns env's variables as a Derivation holds them.
func EnvFromMap(env map[string]string) []EnvVar {
	if len(env) == 0 {
		return nil
	}
	vars := make([]EnvVar, 0, len(env))
	for k, v := range env {
		vars = append(vars, EnvVar{k, v})
	}
	slices.SortFunc(vars, cmpEnv)
	return vars
}

func cmpEnv(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) }

// sortEnv sorts vars by name in place and keeps, of variables set more
// than once, the last, as assigning them to a map in turn would.
func sortEnv(vars []EnvVar) []EnvVar {
	if slices.IsSortedFunc(vars, cmpEnv) {
		// Sorted, and a name set twice would be side by side.
		dup := false
		for i := 1; i < len(vars) && !dup; i++ {
			dup = vars[i].Name == vars[i-1].Name
		}
		if !dup {
			return vars
		}
	}
	slices.SortStableFunc(vars, cmpEnv)
	out := vars[:0]
	for i, e := range vars {
		if i+1 < len(vars) && vars[i+1].Name == e.Name {
			continue
		}
		out = append(out, e)
	}
	return out
}

var (
	_ starlark.HasAttrs   = (*Derivation)(nil)
	_ starlark.Comparable = (*Derivation)(nil)
)

// FullName is "<name>-<version>", or the name alone without a version.
func (d *Derivation) FullName() string {
	if d.paths != nil {
		// The end of the main output's path, sliced rather than held:
		// printing a closure asks for every name many times, and a
		// field would be 16 bytes more on every derivation held.
		p := d.paths[0]
		return p[strings.LastIndexByte(p, '/')+storepath.HashLen+2:]
	}
	if d.Version == "" {
		return d.Name
	}
	return d.Name + "-" + d.Version
}

// ID is the hex BLAKE3 identity of the canonical encoding.
func (d *Derivation) ID() string { return d.id }

// Encoding returns the canonical encoding the identity is computed from.
// It is built again on each call (see encode.go).
func (d *Derivation) Encoding() []byte {
	return d.appendEncoding(make([]byte, 0, d.encodedSize()), nil)
}

// Out returns the store path of the main output.
func (d *Derivation) Out() string { return d.paths[0] }

// OutputPath returns the store path of output name.
func (d *Derivation) OutputPath(name string) (string, bool) {
	for i, o := range d.Outputs {
		if o == name {
			return d.paths[i], true
		}
	}
	return "", false
}

// seal computes the identity and the output paths. It is called once,
// after all fields are set, with the full name (FullName, which builds
// it until the paths are set).
func (d *Derivation) seal(name string) {
	d.sealChecked(name, nil)
}

// sealChecked is seal that also reports whether the encoding the
// identity is computed from is want: a derivation read back from its
// encoding is checked without encoding it a second time.
func (d *Derivation) sealChecked(name string, want []byte) bool {
	sortInputs(d)
	id, same := d.identity(want)
	d.id = hex.EncodeToString(id[:])
	paths := make([]string, len(d.Outputs))
	ca, fixed := d.ContentAddress()
	for i, o := range d.Outputs {
		n := name
		if i > 0 {
			n += "-" + o
		}
		if fixed {
			paths[i] = joinPath(d.Store, contentaddr.FixedHash(ca.Algo, ca.Hash, ca.Method != contentaddr.Flat, d.Store, name), n)
			continue
		}
		paths[i] = joinPath(d.Store, d.outHash(o), n)
	}
	d.paths = paths
	return same
}

// outHash is the hash part of the path of d's output o: of
// "nexis-out-1:<o>:<id>", spelt in a pooled buffer, as what Sum is given
// goes to the heap.
func (d *Derivation) outHash(o string) string {
	bp := encBufs.Get().(*[]byte)
	b := append((*bp)[:0], "nexis-out-1:"...)
	b = append(append(append(b, o...), ':'), d.id...)
	sum := treehash.Sum(b)
	*bp = b
	encBufs.Put(bp)
	return storepath.EncodeHash(sum[:])
}

// joinPath is storepath.Join, in one allocation when the store
// directory is clean (as it is: the command line cleans it). A name that
// passed storepath.ValidName has nothing to clean.
func joinPath(store, hash, name string) string {
	if store == "" || store == "/" || path.Clean(store) != store {
		return storepath.Join(store, hash, name)
	}
	return store + "/" + hash[0:2] + "/" + hash[2:4] + "/" + hash + "-" + name
}

// sortInputs puts the inputs in the order of the encoding: derivations
// by id, sources by path; and the env too, should it have been given
// unsorted.
func sortInputs(d *Derivation) {
	d.Env = sortEnv(d.Env)
	if !slices.IsSortedFunc(d.Drvs, cmpDrv) {
		sortDrvs(d.Drvs)
	}
	if !slices.IsSortedFunc(d.Srcs, cmpSrc) {
		slices.SortFunc(d.Srcs, cmpSrc)
	}
}

func cmpDrv(a, b *Derivation) int { return strings.Compare(a.id, b.id) }
func cmpSrc(a, b *Source) int     { return strings.Compare(a.Path, b.Path) }

// sortDrvs sorts drvs by id. A system's 10,000 are sorted by the first
// 8 bytes of their ids, held beside them as a number, and by the whole
// id only where those are equal: comparing the strings, each behind a
// pointer, was a tenth of what making its derivation cost.
func sortDrvs(drvs []*Derivation) {
	if len(drvs) < 64 {
		slices.SortFunc(drvs, cmpDrv)
		return
	}
	type keyed struct {
		k uint64
		d *Derivation
	}
	ks := make([]keyed, len(drvs))
	for i, d := range drvs {
		ks[i] = keyed{idPrefix(d.id), d}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if a.k != b.k {
			return cmp.Compare(a.k, b.k)
		}
		return strings.Compare(a.d.id, b.d.id)
	})
	for i, k := range ks {
		drvs[i] = k.d
	}
}

// idPrefix is the first 8 bytes of id (fewer, padded with zeros, if it
// is shorter) as a number that orders as they do.
func idPrefix(id string) uint64 {
	var k uint64
	for i := range 8 {
		k <<= 8
		if i < len(id) {
			k |= uint64(id[i])
		}
	}
	return k
}

// ContentAddress is what a fixed-output derivation's path promises
// about its contents (store/contentaddr): the file a fetch_url
// downloads, the archive it unpacks, or the tree of a fetch_git
// checkout (or of a fixed output a program builds). The path is derived
// from it, and the store checks it wherever the path's bytes arrive.
func (d *Derivation) ContentAddress() (contentaddr.CA, bool) {
	if d.Fixed == nil {
		return contentaddr.CA{}, false
	}
	m := contentaddr.Tree
	if d.Builder == BuilderFetchURL {
		m = contentaddr.Flat
		if d.Fixed.Unpack {
			m = contentaddr.Unpack
		}
	}
	return contentaddr.CA{Method: m, Algo: d.Fixed.Algo, Hash: d.Fixed.Hash}, true
}

// FixedOutputPath is the store path of a fixed-output derivation named
// fullName: it depends on what the output is (the hash, and whether the
// fetched file is unpacked), never on where it comes from, so `nexis store
// add-fixed` can put a file there that no URL served.
func FixedOutputPath(storeDir string, f Fixed, fullName string) string {
	return storepath.Join(storeDir, contentaddr.FixedHash(f.Algo, f.Hash, f.Unpack, storeDir, fullName), fullName)
}

// CanonicalJSON encodes v as compact JSON without HTML escaping. Go's
// encoder already sorts map keys and keeps struct field order.
func CanonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// String is the main output path, so "%s/bin/vim" % drv works as in Nix.
func (d *Derivation) String() string        { return d.Out() }
func (d *Derivation) Type() string          { return "derivation" }
func (d *Derivation) Freeze()               {}
func (d *Derivation) Truth() starlark.Bool  { return starlark.True }
func (d *Derivation) Hash() (uint32, error) { return hashString(d.id), nil }

func (d *Derivation) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	o := y.(*Derivation)
	switch op {
	case syntax.EQL:
		return d.id == o.id, nil
	case syntax.NEQ:
		return d.id != o.id, nil
	}
	return false, fmt.Errorf("derivations support only == and !=")
}

var derivationAttrs = []string{"args", "builder", "env", "id", "inputs", "name", "out", "outputs", "passthru", "system", "version"}

func (d *Derivation) AttrNames() []string { return derivationAttrs }

func (d *Derivation) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(d.Name), nil
	case "version":
		return starlark.String(d.Version), nil
	case "system":
		return starlark.String(d.System), nil
	case "out":
		return starlark.String(d.Out()), nil
	case "id":
		return starlark.String(d.id), nil
	case "builder":
		return starlark.String(d.Builder), nil
	case "args":
		return stringTuple(d.Args), nil
	case "env":
		env := starlark.NewDict(len(d.Env))
		for _, e := range d.Env {
			_ = env.SetKey(starlark.String(e.Name), starlark.String(e.Value))
		}
		env.Freeze()
		return env, nil
	case "inputs":
		in := make(starlark.Tuple, 0, len(d.Drvs)+len(d.Srcs))
		for _, x := range d.Drvs {
			in = append(in, x)
		}
		for _, s := range d.Srcs {
			in = append(in, s)
		}
		return in, nil
	case "outputs":
		outs := starlark.NewDict(len(d.Outputs))
		for i, o := range d.Outputs {
			_ = outs.SetKey(starlark.String(o), starlark.String(d.paths[i]))
		}
		outs.Freeze()
		return outs, nil
	case "passthru":
		return d.Passthru, nil
	}
	// Passthru attributes read like fields: pkg.runtime_dirs.
	if v, found, _ := d.Passthru.Get(starlark.String(name)); found {
		return v, nil
	}
	return nil, nil
}

func hashString(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func stringTuple(ss []string) starlark.Tuple {
	t := make(starlark.Tuple, len(ss))
	for i, s := range ss {
		t[i] = starlark.String(s)
	}
	return t
}

// Closure returns d and every derivation it depends on, each once, inputs
// before the derivations that use them.
func Closure(roots ...*Derivation) []*Derivation {
	seen := map[string]bool{}
	var out []*Derivation
	var visit func(*Derivation)
	visit = func(d *Derivation) {
		if seen[d.id] {
			return
		}
		seen[d.id] = true
		for _, in := range d.Drvs {
			visit(in)
		}
		out = append(out, d)
	}
	for _, r := range roots {
		visit(r)
	}
	return out
}

// validOutputName accepts the names Nix users know: out, dev, lib, doc...
func validOutputName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

// Restore gives d, read back from a cache of evaluations, the identity
// and the output paths computed when it was first sealed; its other
// fields must be those it had then. The cache is trusted as the
// evaluation cache is (lang/evalcache.go): it is the user's own, checked
// by a digest of its contents.
func Restore(d *Derivation, id string, paths []string) {
	d.id = id
	d.paths = paths
}

// Paths returns the store paths of the outputs, in the order of Outputs.
func (d *Derivation) Paths() []string { return d.paths }
