package source

import (
	"io/fs"
	"sort"
	"strings"

	"github.com/bazelbuild/buildtools/build"

	"github.com/nexisos/nexis/stdlib"
)

// FuncDoc is a public function of the stdlib with its docstring: what
// `:doc NAME` in the repl and docs/stdlib.md show.
type FuncDoc struct {
	Module    string // "build.star"
	Signature string // build_package(name, version, src = None, ...)
	Name      string
	Doc       string // "" when the function has none
}

// StdlibDocs lists the stdlib's public functions, by module and name.
func StdlibDocs() []FuncDoc {
	var out []FuncDoc
	mods, _ := fs.Glob(stdlib.FS, "*.star")
	for _, m := range mods {
		src, err := fs.ReadFile(stdlib.FS, m)
		if err != nil {
			continue
		}
		f, err := build.ParseDefault(m, src)
		if err != nil {
			continue
		}
		for _, stmt := range f.Stmt {
			d, ok := stmt.(*build.DefStmt)
			if !ok || strings.HasPrefix(d.Name, "_") {
				continue
			}
			params := make([]string, len(d.Params))
			for i, p := range d.Params {
				params[i] = build.FormatString(p)
			}
			fd := FuncDoc{Module: m, Name: d.Name, Signature: d.Name + "(" + strings.Join(params, ", ") + ")"}
			if len(d.Body) > 0 {
				if s, ok := d.Body[0].(*build.StringExpr); ok {
					fd.Doc = dedent(s.Value)
				}
			}
			if fd.Doc == "" {
				// Without a docstring, the comment above the def.
				var lines []string
				for _, c := range d.Comments.Before {
					lines = append(lines, strings.TrimSpace(strings.TrimPrefix(c.Token, "#")))
				}
				fd.Doc = strings.Join(lines, "\n")
			}
			out = append(out, fd)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Module != out[j].Module {
			return out[i].Module < out[j].Module
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// dedent removes the indentation a docstring's continuation lines share.
func dedent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	indent := -1
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i := 1; i < len(lines) && indent > 0; i++ {
		if len(lines[i]) >= indent {
			lines[i] = lines[i][indent:]
		}
	}
	return strings.Join(lines, "\n")
}
