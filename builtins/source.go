package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/store/treehash"
)

// Source is a local file or directory that enters the store by content,
// the value of path("./x"). Its store path depends only on its content and
// name, never on where the config lives.
type Source struct {
	Name     string
	TreeHash string // canonical tree hash (store/treehash), hex
	Path     string // store path
	Display  string // path as written, relative to the config directory
	Abs      string // where it is on this machine: never hashed
}

var (
	_ starlark.HasAttrs   = (*Source)(nil)
	_ starlark.Comparable = (*Source)(nil)
)

// newSource hashes the resolved file or tree f. Its path is the one
// `nexis store add` gives the same tree under the same name.
func newSource(ctx *Context, name string, f File) (*Source, error) {
	tree, err := ctx.TreeHash(f)
	if err != nil {
		return nil, err
	}
	p, err := treehash.ContentPath(ctx.StoreDir, name, tree)
	if err != nil {
		return nil, err
	}
	return &Source{
		Name:     name,
		TreeHash: tree.Hex(),
		Path:     p.In(ctx.StoreDir),
		Display:  f.Display,
		Abs:      f.Abs,
	}, nil
}

func (s *Source) String() string        { return s.Path }
func (s *Source) Type() string          { return "source" }
func (s *Source) Freeze()               {}
func (s *Source) Truth() starlark.Bool  { return starlark.True }
func (s *Source) AttrNames() []string   { return []string{"hash", "name", "out", "src"} }
func (s *Source) Hash() (uint32, error) { return hashString(s.Path), nil }

func (s *Source) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	o := y.(*Source)
	switch op {
	case syntax.EQL:
		return s.Path == o.Path, nil
	case syntax.NEQ:
		return s.Path != o.Path, nil
	}
	return false, fmt.Errorf("sources support only == and !=")
}

func (s *Source) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(s.Name), nil
	case "hash":
		return starlark.String(s.TreeHash), nil
	case "out":
		return starlark.String(s.Path), nil
	case "src":
		return starlark.String(s.Display), nil
	}
	return nil, nil
}
