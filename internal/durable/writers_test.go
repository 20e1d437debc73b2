package durable

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writerCalls are the calls that replace or create entries by name: the
// ways a file would be written outside this package.
var writerCalls = map[string]map[string]bool{
	"os":                    {"WriteFile": true, "Rename": true, "Symlink": true},
	"golang.org/x/sys/unix": {"Rename": true, "Renameat": true, "Renameat2": true, "Symlink": true, "Symlinkat": true},
}

// allowedWriters are the packages (and the trees below a name ending in
// "/...") that may make those calls themselves, and why.
var allowedWriters = map[string]string{
	"internal/durable": "the writer itself",
	"store": "a store path is staged under .nexis/tmp, made durable as a whole (fsyncs or one syncfs) " +
		"and published by the WAL-synced registration; its rename into a bucket, the pool's links " +
		"and the trash are the store's crash protocol (store/store.go), which per-file writes would slow tenfold",
	"store/gc":              "moves collected paths to the trash in the store's crash order (store/gc/gc.go)",
	"store/archive":         "unpacks an archive into the store's staging area (see store)",
	"realise":               "the builtin builders write a build's output directory, which becomes durable when the store ingests it",
	"realise/unpack":        "unpacks sources into a build's scratch directory (see realise)",
	"bench/...":             "benchmarks: scratch trees, no state",
	"activate/activatetest": "a test harness: scratch files, no state",
	"store/cache/cachetest": "a test harness: server configs in a test's directory",
}

// TestDurableWritersOnly fails when a package outside allowedWriters
// writes a file by name itself: durable state is written through this
// package (atomic, fsynced, root-confined), and a new writer must either
// use it or be added above with its reason.
func TestDurableWritersOnly(t *testing.T) {
	top := moduleRoot(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != top && (strings.HasPrefix(n, ".") || n == "testdata" || n == "buildroot" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(top, p)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		if writerAllowed(pkg) {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		names := map[string]string{} // local name → import path
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			if writerCalls[ip] == nil {
				continue
			}
			name := path.Base(ip)
			if im.Name != nil {
				name = im.Name.Name
			}
			names[name] = ip
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if ip, ok := names[x.Name]; ok && writerCalls[ip][sel.Sel.Name] {
				t.Errorf("%s: %s.%s writes a file outside internal/durable: use durable.WriteFile, Write, WriteNew or a Root (or add the package to allowedWriters with the reason)", fset.Position(sel.Pos()), x.Name, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writerAllowed(pkg string) bool {
	if _, ok := allowedWriters[pkg]; ok {
		return true
	}
	for a := range allowedWriters {
		if tree, ok := strings.CutSuffix(a, "/..."); ok && (pkg == tree || strings.HasPrefix(pkg, tree+"/")) {
			return true
		}
	}
	return false
}

// moduleRoot is the directory of go.mod above this package.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}
