package lang

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// langImporters are the packages that may import lang: the commands,
// which evaluate and pass typed values on, the resolver that writes the
// lock, the REPL, and the tools that read the schema (lint, the
// generated reference). Everything else takes derivations and typed
// settings (docs/architecture.md), so what a config means is read in
// one place.
var langImporters = map[string]bool{
	"cmd/nexis":       true,
	"realise/resolve": true,
	"lang/repl":       true,
	"lang/source":     true, // fmt and lint: the schema names the keys default() may read
	"internal/docgen": true, // the option reference and nexis-config(5), rendered from the schema
	"bench/switch":    true, // a benchmark command: it evaluates examples/full
}

// TestOnlyCommandsImportLang fails when another package's non-test
// files import lang.
func TestOnlyCommandsImportLang(t *testing.T) {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	top := filepath.Dir(dir)
	fset := token.NewFileSet()
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != top && (strings.HasPrefix(n, ".") || n == "testdata" || n == "buildroot") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(top, filepath.Dir(p))
		pkg := filepath.ToSlash(rel)
		if pkg == "lang" || langImporters[pkg] {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, im := range f.Imports {
			if ip, _ := strconv.Unquote(im.Path.Value); ip == "github.com/nexisos/nexis/lang" {
				t.Errorf("%s imports lang: take derivations and typed settings from the caller instead", fset.Position(im.Pos()))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
