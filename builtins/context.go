package builtins

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Context is what the builtins need from the evaluation that runs them:
// where the store is, how to find files named relative to the calling
// module, and every derivation and source made so far (so a string that
// mentions one of their paths can be turned into an input).
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

	known   map[string]starlark.Value // hash part → *Derivation or *Source
	sources map[string]*Source        // abs path + name → source
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
	if c.known == nil {
		c.known = map[string]starlark.Value{}
		c.sources = map[string]*Source{}
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

func (c *Context) remember(path string, v starlark.Value) {
	if p, _, err := storepath.Parse(c.StoreDir, path); err == nil {
		c.known[p.Hash] = v
	}
}

// lookup returns the derivation or source whose store path has hash h.
func (c *Context) lookup(h string) starlark.Value { return c.known[h] }
