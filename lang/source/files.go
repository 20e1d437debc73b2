package source

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nexisos/nexis/internal/durable"
)

// Files lists the .star and .toml files paths name, directories walked
// (hidden ones and testdata left out, and nexis.lock, which nexis
// writes).
func Files(paths []string) ([]string, error) {
	var files []string
	for _, a := range paths {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && p != a && (d.Name()[0] == '.' || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if ext := filepath.Ext(p); !d.IsDir() && (ext == ".star" || ext == ".toml") && d.Name() != "nexis.lock" {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// FormatFiles formats files in place (their modes kept, each replaced
// atomically), or with check changes nothing; either way it writes the
// name of every file that was not formatted to out, and returns how
// many there were.
func FormatFiles(files []string, check bool, out io.Writer) (int, error) {
	unformatted := 0
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			return unformatted, err
		}
		formatted, err := Format(p, src)
		if err != nil {
			return unformatted, err
		}
		if bytes.Equal(formatted, src) {
			continue
		}
		unformatted++
		if !check {
			st, err := os.Stat(p)
			if err != nil {
				return unformatted, err
			}
			if err := durable.WriteFile(p, formatted, st.Mode().Perm()); err != nil {
				return unformatted, err
			}
		}
		fmt.Fprintln(out, p)
	}
	return unformatted, nil
}

// Findings are what lint found, in the order of the files.
type Findings []Finding

// Lint checks files by their kind (.toml against the schema, the rest
// as Starlark).
func Lint(files []string) (Findings, error) {
	found := Findings{}
	for _, p := range files {
		var fs []Finding
		var err error
		if filepath.Ext(p) == ".toml" {
			fs, err = LintTOML(p)
		} else {
			var src []byte
			if src, err = os.ReadFile(p); err == nil {
				fs, err = LintStar(p, src)
			}
		}
		if err != nil {
			return nil, err
		}
		found = append(found, fs...)
	}
	return found, nil
}

// Print writes one finding a line.
func (fs Findings) Print(w io.Writer) {
	for _, f := range fs {
		fmt.Fprintln(w, f)
	}
}
