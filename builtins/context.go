package builtins

import (
	"fmt"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Context is what the builtins need from the evaluation that runs them:
// where the store is, how to find files named relative to the calling
// module, and the scope that says which derivations and sources a string
// may mention to make them inputs. Each thread has its own Context; the
// functions may be shared.
type Context struct {
	StoreDir string
	System   string

	// Resolve turns a path written in the module calling a builtin on
	// thread (or, when relativeTo is set, in that config file) into a
	// File inside the config directory, or says why it is not one.
	Resolve func(thread *starlark.Thread, rel, relativeTo string) (File, error)
	// Local resolves an absolute path (a file:// URL) inside the config
	// directory, or says why it is not one.
	Local func(abs string) (File, error)
	// ReadFile reads a resolved file; evaluation reads nothing else.
	ReadFile func(f File) ([]byte, error)
	// TreeHash hashes a resolved file or tree that becomes a source.
	TreeHash func(f File) (treehash.Digest, error)
	// Limits bound the values builtins walk (see Measure).
	Limits Limits
	// Scope remembers what the thread makes; Attach sets a new one if
	// it is nil.
	Scope *Scope
}

// File is a file named by a module, resolved inside the config
// directory.
type File struct {
	Display string // as written, relative to the config directory: for errors, hashed nowhere
	Abs     string // where it is on this machine, links resolved: for realise, hashed nowhere
}

const contextKey = "nexis.builtins.context"

// Attach makes c the context of thread.
func (c *Context) Attach(thread *starlark.Thread) {
	if c.Scope == nil {
		c.Scope = NewScope()
	}
	thread.SetLocal(contextKey, c)
}

// FromThread returns the context attached to thread.
func FromThread(thread *starlark.Thread) (*Context, error) {
	c, ok := thread.Local(contextKey).(*Context)
	if !ok {
		return nil, fmt.Errorf("internal error: no nexis evaluation context on this thread")
	}
	return c, nil
}

func (c *Context) remember(path string, v starlark.Value) { c.Scope.remember(hashPart(path), v) }

// lookup returns the derivation or source whose store path has hash h,
// if the thread can see it.
func (c *Context) lookup(h string) starlark.Value { return c.Scope.lookup(h) }

// A Scope is what one part of an evaluation (a module's load, a
// package, the system) can name by path: what it made, what the modules
// it loaded made, and what the values it was given (its dependencies)
// reach. A string that mentions the path of anything else does not make
// it an input. Evaluations of packages run in parallel, and with this
// rule what one sees never depends on which ran first; nor on whether a
// dependency was evaluated or taken from a cache, since what a value
// reaches is the same either way.
//
// A scope is written by one thread; a module's scope is read by others
// once the module has loaded.
//
// A package's scope makes two derivations and is asked about a few
// paths, and there are as many scopes as packages: what it holds is in
// slices, looked through, until there is enough for a map to pay.
type Scope struct {
	made    []scopeEntry              // by hash part: *Derivation or *Source
	madeIdx map[string]starlark.Value // made, once it is long
	parents []*Scope                  // the scopes of the modules loaded
	modules []*Scope                  // parents and theirs, each once (nil: to compute)

	// What the given values reach, indexed as far as lookups needed:
	// nearly every path a package mentions is a direct dependency's.
	indexed bool          // direct is set
	direct  []*Derivation // the derivations given, when few (else in reached)
	reached map[string]starlark.Value
	queue   []starlark.Value
	visited map[any]bool
}

type scopeEntry struct {
	hash string
	v    starlark.Value
}

// fewMade is how many things a scope looks through before it indexes
// them in a map.
const fewMade = 8

// NewScope returns an empty scope.
// Room for the two a package makes: its source and its derivation.
func NewScope() *Scope { return &Scope{made: make([]scopeEntry, 0, 2)} }

// remember makes v, whose path has hash part h, visible in s; made
// again (a module may make one thing twice), the last is kept, as a
// map keeps it.
func (s *Scope) remember(h string, v starlark.Value) {
	if s.madeIdx != nil {
		s.madeIdx[h] = v
		return
	}
	for i := range s.made {
		if s.made[i].hash == h {
			s.made[i].v = v
			return
		}
	}
	s.made = append(s.made, scopeEntry{h, v})
	if len(s.made) > fewMade {
		s.madeIdx = make(map[string]starlark.Value, 2*len(s.made))
		for _, e := range s.made {
			s.madeIdx[e.hash] = e.v
		}
		s.made = nil
	}
}

// madeHere returns what s made whose path has hash part h.
func (s *Scope) madeHere(h string) (starlark.Value, bool) {
	if s.madeIdx != nil {
		v, ok := s.madeIdx[h]
		return v, ok
	}
	for _, e := range s.made {
		if e.hash == h {
			return e.v, true
		}
	}
	return nil, false
}

// Use makes what the scope of a loaded module knows visible in s.
func (s *Scope) Use(m *Scope) {
	if m != s && !slices.Contains(s.parents, m) {
		s.parents = append(s.parents, m)
		s.modules = nil
	}
}

// See makes what v reaches (derivations, their inputs, sources, and what
// their passthru holds) visible in s.
func (s *Scope) See(v starlark.Value) {
	s.queue = append(s.queue, v)
}

func (s *Scope) lookup(h string) starlark.Value {
	if v, ok := s.madeHere(h); ok {
		return v
	}
	if s.modules == nil && len(s.parents) > 0 {
		for _, p := range s.parents {
			s.addModule(p)
		}
	}
	for _, m := range s.modules {
		if v, ok := m.madeHere(h); ok {
			return v
		}
	}
	return s.inValues(h)
}

// addModule adds p and the modules it loaded to s.modules, each once.
// A config loads a few modules: a look through the list beats a set.
func (s *Scope) addModule(p *Scope) {
	if p == s || slices.Contains(s.modules, p) {
		return
	}
	s.modules = append(s.modules, p)
	for _, q := range p.parents {
		s.addModule(q)
	}
}

// inValues indexes what the given values reach, breadth first, until h
// is found or everything is indexed. The values themselves, and the
// derivations a given dict or list holds (the system's packages), are
// indexed first: nearly every path a part mentions is one of them.
func (s *Scope) inValues(h string) starlark.Value {
	if !s.indexed {
		s.indexed = true
		n := 0
		for _, v := range s.queue {
			switch c := v.(type) {
			case *starlark.Dict:
				n += c.Len()
			case *starlark.List:
				n += c.Len()
			case starlark.Tuple:
				n += len(c)
			default:
				n++
			}
		}
		if n > fewMade {
			// Made at the size the direct values fill: the system's
			// dict of 10,000 packages grew it eleven times.
			s.reached = make(map[string]starlark.Value, n)
		} else {
			s.direct = make([]*Derivation, 0, n)
		}
		direct := func(v starlark.Value) {
			d, ok := v.(*Derivation)
			if !ok {
				return
			}
			if s.reached == nil {
				s.direct = append(s.direct, d)
				return
			}
			for _, p := range d.paths {
				if _, dup := s.reached[hashPart(p)]; !dup {
					s.reached[hashPart(p)] = d
				}
			}
		}
		for _, v := range s.queue {
			switch c := v.(type) {
			case *starlark.Dict:
				for _, e := range c.Entries() {
					direct(e)
				}
			case *starlark.List:
				for i := range c.Len() {
					direct(c.Index(i))
				}
			case starlark.Tuple:
				for _, e := range c {
					direct(e)
				}
			default:
				direct(v)
			}
		}
	}
	// The first given that has the path, as the index would keep.
	for _, d := range s.direct {
		for _, p := range d.paths {
			if hashPart(p) == h {
				return d
			}
		}
	}
	if v, ok := s.reached[h]; ok {
		return v
	}
	if len(s.queue) > 0 {
		if s.reached == nil {
			s.reached = map[string]starlark.Value{}
		}
		if s.visited == nil {
			s.visited = map[any]bool{}
		}
	}
	for len(s.queue) > 0 {
		v := s.queue[0]
		s.queue = s.queue[1:]
		Walk(v, s.visited, func(x starlark.Value) {
			switch x := x.(type) {
			case *Derivation:
				for _, p := range x.paths {
					if _, dup := s.reached[hashPart(p)]; !dup {
						s.reached[hashPart(p)] = x
					}
				}
				for _, in := range x.Drvs {
					s.queue = append(s.queue, in)
				}
				for _, in := range x.Srcs {
					s.queue = append(s.queue, in)
				}
				if x.Passthru != nil {
					s.queue = append(s.queue, x.Passthru)
				}
			case *Source:
				if _, dup := s.reached[hashPart(x.Path)]; !dup {
					s.reached[hashPart(x.Path)] = x
				}
			}
		})
		if v, ok := s.reached[h]; ok {
			return v
		}
	}
	return nil
}

// hashPart is the hash part of a store path made by this evaluation.
func hashPart(p string) string {
	name := p[strings.LastIndexByte(p, '/')+1:]
	return name[:min(len(name), storepath.HashLen)]
}

// Walk calls fn on v and, once each, on every value v holds through
// lists, tuples, dicts, sets and structs (not through derivations: fn
// decides where to go from them). seen records the containers visited.
func Walk(v starlark.Value, seen map[any]bool, fn func(starlark.Value)) {
	stack := []starlark.Value{v}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch c := x.(type) {
		case *starlark.List:
			if seen[c] {
				continue
			}
			seen[c] = true
			for i := range c.Len() {
				stack = append(stack, c.Index(i))
			}
		case starlark.Tuple:
			stack = append(stack, c...)
		case *starlark.Dict:
			if seen[c] {
				continue
			}
			seen[c] = true
			for k, e := range c.Entries() {
				stack = append(stack, k, e)
			}
		case *starlark.Set:
			if seen[c] {
				continue
			}
			seen[c] = true
			stack = append(stack, slices.Collect(starlark.Elements(c))...)
		case *starlarkstruct.Struct:
			if seen[c] {
				continue
			}
			seen[c] = true
			for _, n := range c.AttrNames() {
				f, _ := c.Attr(n)
				stack = append(stack, f)
			}
		case *Derivation:
			if seen[c] {
				continue
			}
			seen[c] = true
			fn(c)
		case *Source:
			if seen[c] {
				continue
			}
			seen[c] = true
			fn(c)
		}
	}
}
